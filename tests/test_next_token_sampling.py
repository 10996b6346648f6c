"""The sampling lab's engine helpers (engine/generation/sampling_lab.py): the page's settings give transformers' warper
distributions, each removed token is blamed on the right filter, draws and runs repeat from their seeds, and a
run's steps are exactly what engine.generation.sampling.generate_steps draws.

Parity of the filters themselves on generic settings is in test_engine_sampling.py; this file adds the settings
the page offers (presets, slider ends) and the per-filter attribution the page draws.
"""
from __future__ import annotations

import math

import pytest
import torch
from test_engine_sampling import reference
from transformers.generation.logits_process import (MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

from engine import SamplingSettings, generate, generate_steps, sampling_stages
from engine.generation.sampling_lab import (FILTERS, GREEDY, PRESETS, RAW, Run, advance, draw, draw_generator,
                                            removed_by, step_seed, top_tokens)
from engine_fixtures import tiny_model
from ui.next_token.controls import ALL_PRESETS, MIN_PS, TEMPERATURES, TOP_PS, top_k_options

V = 64
PAGE_SETTINGS = [
    *PRESETS.values(), RAW,
    SamplingSettings(temperature=min(t for t in TEMPERATURES if t > 0)),  # the slider's ends
    SamplingSettings(temperature=max(TEMPERATURES)),
    SamplingSettings(top_k=1), SamplingSettings(top_p=min(TOP_PS)), SamplingSettings(min_p=max(MIN_PS)),
    SamplingSettings(temperature=10.0, top_k=1000, top_p=0.01, min_p=1.0),
    SamplingSettings(temperature=0.01, top_k=2, top_p=0.5, min_p=0.3),
]


def logits_rows(rows: int = 4, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("s", PAGE_SETTINGS, ids=str)
@pytest.mark.parametrize("scale", [3.0, 1e4])
def test_page_settings_match_transformers_warpers(s, scale):
    logits = logits_rows(scale=scale)
    warped = reference(logits, s)  # [rows, vocab]
    for row, survivors, want in zip(logits, torch.isfinite(warped), warped.softmax(-1)):
        stages = sampling_stages(row, s)
        assert torch.equal(stages.kept, survivors)
        torch.testing.assert_close(stages.probs_after, want, atol=1e-6, rtol=1e-5)
        assert torch.isfinite(stages.probs_after).all() and math.isfinite(stages.entropy_after)


def _warper_masks(row: torch.Tensor, s: SamplingSettings) -> dict[str, torch.Tensor]:
    """Tokens each transformers warper removes, applying them one after another as our filters do."""
    ids = torch.zeros(1, 1, dtype=torch.long)
    x = TemperatureLogitsWarper(s.temperature)(ids, row[None].clone())
    out = {"greedy": torch.zeros(V, dtype=torch.bool)}
    for name, on, warper in (("top-k", s.top_k > 0, lambda: TopKLogitsWarper(s.top_k)),
                             ("top-p", s.top_p < 1, lambda: TopPLogitsWarper(s.top_p)),
                             ("min-p", s.min_p > 0, lambda: MinPLogitsWarper(s.min_p))):
        y = warper()(ids, x.clone()) if on else x
        out[name] = (torch.isfinite(x) & ~torch.isfinite(y))[0]
        x = y
    return out


@pytest.mark.parametrize("s", PAGE_SETTINGS, ids=str)
def test_each_removed_token_is_blamed_on_the_warper_that_removed_it(s):
    row = logits_rows(rows=1, seed=1)[0]
    ours, theirs = removed_by(row, s), _warper_masks(row, s)
    for name in FILTERS:
        assert torch.equal(ours[name], theirs[name]), name
    blamed = torch.stack([ours[f] for f in FILTERS]).sum(0)  # [vocab]
    assert blamed.max() <= 1  # at most one filter per token
    assert torch.equal(blamed.bool(), ~sampling_stages(row, s).kept)


def test_greedy_removes_everything_but_the_top_token():
    row = logits_rows(rows=1, seed=2)[0]
    masks = removed_by(row, GREEDY)
    assert int(masks["greedy"].sum()) == V - 1 and not masks["greedy"][row.argmax()]
    assert not any(masks[f].any() for f in ("top-k", "top-p", "min-p"))


def test_every_preset_button_has_slider_values():
    for s in ALL_PRESETS.values():
        assert s.temperature in TEMPERATURES and s.top_p in TOP_PS and s.min_p in MIN_PS
        assert s.top_k in top_k_options(4096)
    assert top_k_options(50)[-1] <= 50  # a small vocabulary gets no impossible k


def test_top_tokens_lists_the_likeliest_and_sums_the_rest():
    row = logits_rows(rows=1, seed=3)[0]
    stages = sampling_stages(row, SamplingSettings(top_k=5))
    top = top_tokens(stages, 8)
    assert top.ids == stages.order[:8].tolist() and top.rank == list(range(1, 9))
    assert top.kept == [True] * 5 + [False] * 3 and top.n_kept == 5 and top.n_rest == V - 8
    assert sum(top.probs_before) + top.rest_before == pytest.approx(1.0, abs=1e-6)
    assert sum(top.probs_after) == pytest.approx(1.0, abs=1e-6) and top.rest_after == pytest.approx(0, abs=1e-6)
    last = int(stages.order[-1])
    with_drawn = top_tokens(stages, 8, include=last)
    assert with_drawn.ids[-1] == last and with_drawn.rank[-1] == V and with_drawn.n_rest == V - 9


def test_draws_repeat_with_their_seed_and_follow_the_probabilities():
    row = torch.tensor([2.0, 1.0, 0.5, -1.0, -3.0])
    s = SamplingSettings(temperature=1.0, top_k=3)
    stages = sampling_stages(row, s)
    a, b, c = draw(stages, s, 4000, seed=7), draw(stages, s, 4000, seed=7), draw(stages, s, 4000, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    freq = torch.bincount(a, minlength=5).float() / len(a)
    assert freq[3:].sum() == 0
    assert (freq - stages.probs_after).abs().max() < 4 * math.sqrt(0.25 / len(a))
    assert draw(stages, GREEDY, 50, seed=1).tolist() == [0] * 50


def test_one_draw_is_what_generate_steps_would_draw_with_that_seed():
    model = tiny_model(seed=0)
    s = SamplingSettings(temperature=1.5, top_p=0.95)
    for seed in range(8):
        step = next(generate_steps(model, [0, 5, 6], 1, s, draw_generator(seed)))
        assert int(draw(step.stages, s, 1, seed)[0]) == step.token_id


def test_a_run_is_generate_steps_one_seeded_step_at_a_time():
    model = tiny_model(seed=0)
    s = SamplingSettings(temperature=1.2, top_k=40)
    run = advance(model, Run("k", (0, 3, 4), seed=11), 6, s)
    ids = [0, 3, 4]
    for i, rec in enumerate(run.steps):
        step = next(generate_steps(model, ids, 1, s, draw_generator(step_seed(11, i))))
        assert rec.token_id == step.token_id and rec.seed == step_seed(11, i)
        assert rec.prob == pytest.approx(float(step.stages.probs_after[step.token_id]))
        assert rec.entropy_after == pytest.approx(step.stages.entropy_after)
        assert rec.top.ids[-1] == step.token_id or step.token_id in rec.top.ids
        ids.append(step.token_id)
    assert run.ids == ids


def test_undo_and_redo_give_the_same_tokens_and_greedy_matches_generate():
    model = tiny_model(seed=1)
    s = SamplingSettings(temperature=1.0)
    start = Run("k", (0, 9), seed=3)
    straight = advance(model, start, 12, s)
    wobbly = advance(model, advance(model, start, 8, s).undone(3), 7, s)
    assert wobbly.ids == straight.ids
    assert advance(model, start, 12, s, ).ids != advance(model, Run("k", (0, 9), seed=4), 12, s).ids
    greedy = advance(model, start, 10, GREEDY)
    assert greedy.ids[2:] == generate(model, [0, 9], 10, GREEDY)
    assert all(r.prob == 1.0 and r.rank == 1 for r in greedy.steps)
    assert start.undone().steps == () and straight.undone(100).steps == ()


def test_a_run_records_what_the_window_cut():
    model = tiny_model(seed=0)  # block_size 16
    run = advance(model, Run("k", tuple(range(1, 11)), seed=0), 12, SamplingSettings(temperature=0.9))
    cuts = [r.n_cut for r in run.steps]
    contexts = [r.n_context for r in run.steps]
    assert cuts == [max(0, 10 + i - 16) for i in range(12)]  # sequence length before step i, minus the window
    assert contexts == [min(16, 10 + i) for i in range(12)]
    assert all(r.settings.temperature == 0.9 for r in run.steps)
