"""engine/inspect/embeddings.py on hand-made tables where the answer is known, and against a real traced forward pass:
the rows the page shows are exactly what the first block receives."""
from __future__ import annotations

import math

import pytest
import torch

from engine import run_trace
from engine.inspect.embeddings import (cosine_matrix, model_input, nearest_neighbours, pca_2d, position_table,
                                       sample_positions, token_table)
from engine_fixtures import tiny_model, tokenizer


def test_cosine_matrix_known_values() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    sims = cosine_matrix(a)
    assert sims.shape == (5, 5)
    assert sims[0, 1] == pytest.approx(0.0)
    assert sims[0, 2] == pytest.approx(-1.0)
    assert sims[0, 3] == pytest.approx(1 / math.sqrt(2))
    assert torch.allclose(sims[:4, :4].diagonal(), torch.ones(4))
    assert torch.all(sims[4] == 0)  # a zero row is similar to nothing, and no NaN


def test_nearest_neighbours_order_and_exclusions() -> None:
    table = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])
    near = nearest_neighbours(table, 0, k=3)
    assert [i for i, _ in near] == [4, 1, 2]  # row 4 points exactly the same way, whatever its length
    assert near[0][1] == pytest.approx(1.0)
    assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    assert [i for i, _ in nearest_neighbours(table, 0, k=2, exclude=(4,))] == [1, 2]
    assert len(nearest_neighbours(table, 0, k=50)) == 4  # never more than the other rows
    with pytest.raises(ValueError):
        nearest_neighbours(table, 9)


def test_pca_finds_the_main_direction() -> None:
    torch.manual_seed(0)
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    t = torch.linspace(-5, 5, 200)[:, None]
    table = t * direction + 0.01 * torch.randn(200, 3) + torch.tensor([10.0, -2.0, 1.0])  # offset: PCA centres
    pca = pca_2d(table)
    assert pca.coords.shape == (200, 2)
    assert pca.explained[0] > 0.99
    assert torch.allclose(pca.axes[0], direction, atol=1e-2)  # sign fixed: largest loading positive
    assert torch.allclose(pca.coords[:, 0], t[:, 0], atol=0.05)
    assert pca.coords[:, 0].mean().abs() < 1e-4


def test_pca_matches_torch_lowrank_up_to_sign() -> None:
    torch.manual_seed(1)
    scales = torch.cat([torch.tensor([10.0, 5.0]), torch.linspace(0.5, 0.1, 14)])  # two clear main axes
    table = torch.randn(300, 16) @ torch.diag(scales)
    pca = pca_2d(table)
    _, _, v = torch.pca_lowrank(table, q=4, center=True, niter=10)
    ref = (table - table.mean(0)) @ v[:, :2]
    for j in range(2):
        assert torch.allclose(pca.coords[:, j].abs(), ref[:, j].abs(), atol=1e-2)
    assert pca_2d(table).coords.equal(pca.coords)  # deterministic


def test_pca_of_a_one_dimensional_table() -> None:
    pca = pca_2d(torch.arange(5.0)[:, None])
    assert pca.coords.shape == (5, 2)
    assert torch.all(pca.coords[:, 1] == 0)
    assert pca.explained == pytest.approx((1.0, 0.0))


def test_model_input_is_what_the_first_block_receives() -> None:
    model, tok = tiny_model(), tokenizer()
    text = "Tom liked to play with a red ball. 🍕"
    mi = model_input(model, tok, text)
    trace = run_trace(model, tok, text)
    assert mi.encoding.ids == trace.ids
    assert torch.allclose(mi.token, trace.act["hook_embed"], atol=1e-6)
    assert torch.allclose(mi.position, trace.act["hook_pos_embed"], atol=1e-6)
    assert torch.allclose(mi.total, trace.act["blocks.0.hook_resid_pre"], atol=1e-6)


def test_model_input_cuts_a_long_text_like_a_trace() -> None:
    model, tok = tiny_model(), tokenizer()  # context of 16 tokens
    text = "One day, the ball rolled under the bed and Tom was sad. " * 3
    mi = model_input(model, tok, text)
    trace = run_trace(model, tok, text)
    assert len(mi.encoding) == model.config.block_size
    assert mi.n_dropped == trace.n_dropped > 0
    assert torch.allclose(mi.total, trace.act["blocks.0.hook_resid_pre"], atol=1e-6)


def test_tables_are_copies() -> None:
    model = tiny_model()
    table = token_table(model)
    table.zero_()
    position_table(model).zero_()
    assert model.transformer.wte.weight.abs().sum() > 0 and model.transformer.wpe.weight.abs().sum() > 0


def test_sample_positions() -> None:
    assert sample_positions(5, 10) == [0, 1, 2, 3, 4]
    picked = sample_positions(1024, 320)
    assert picked[0] == 0 and picked[-1] == 1023 and len(picked) <= 320
    assert picked == sorted(set(picked))
    assert sample_positions(10, 1) == [0]
