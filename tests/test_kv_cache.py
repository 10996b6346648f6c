"""The key/value cache, looked at (engine/inspect/kv.py): the bytes formula against the tensors' real size, the
cached step's logits against a full recompute (our GPT and a transformers Llama with grouped-query heads), the
tokens each generation step runs against ContextWindow's own calls, the slid window, and the published configs."""
from __future__ import annotations

import pytest
import torch

from engine import SamplingSettings
from engine.generation.sampling_lab import Run, advance
from engine.inspect.kv import (bytes_per_token, drop_oldest, model_bytes_per_token, past_bytes, past_layers, replay,
                               slid_view, time_per_token, tokens_run)
from engine.inspect.kv_shapes import PUBLISHED, published, shape_from_config, shape_of
from engine.model.hf import load_model
from engine_fixtures import save_tiny_hf, tiny_model

GREEDY = SamplingSettings(temperature=0)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    save_tiny_hf("llama", folder)  # 2 layers, 4 query heads sharing 2 key/value heads
    model, _ = load_model(folder)
    return model


def ids(n: int, seed: int = 0, vocab: int = 300) -> list[int]:
    return torch.randint(1, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("which", ["gpt", "llama"])
def test_the_bytes_formula_is_the_tensors_real_size(which, llama):
    model = tiny_model() if which == "gpt" else llama
    cfg = model.config
    _, past = model.decode_step(torch.tensor([ids(11)]))
    real = sum(t.numel() * t.element_size() for k, v in past_layers(past) for t in (k, v))
    assert past_bytes(past) == real == bytes_per_token(cfg.n_layer, cfg.n_kv_head, cfg.d_head, 4) * 11
    assert model_bytes_per_token(model) * 11 == real
    k, _ = past_layers(past)[0]
    assert k.shape == (1, cfg.n_kv_head, 11, cfg.d_head)  # stored per key/value head, not per query head
    if which == "llama":  # grouped-query attention: half the heads' worth, as the formula with n_kv_head says
        assert cfg.n_kv_head * 2 == cfg.n_head
        assert real * 2 == bytes_per_token(cfg.n_layer, cfg.n_head, cfg.d_head, 4) * 11


@pytest.mark.parametrize("which", ["gpt", "llama"])
def test_every_cached_step_equals_a_full_recompute(which, llama):
    model = tiny_model() if which == "gpt" else llama
    seq = ids(model.config.block_size if which == "gpt" else 20, seed=1)
    r = replay(model, seq, n_prompt=5)
    assert len(r.cached_diff) == len(seq) - 5 and all(r.same_top)
    assert max(r.cached_diff) < 1e-4
    assert r.bytes == r.bytes_formula == model_bytes_per_token(model) * len(seq)
    # Independently of the one-pass reference: each prefix through a fresh forward pass of its own.
    device_ids = torch.tensor([seq])
    for pos in (5, 9, len(seq) - 1):
        fresh = model(device_ids[:, :pos + 1])[0][0, -1]
        _, past = model.decode_step(device_ids[:, :pos])
        cached, _ = model.decode_step(device_ids[:, pos:pos + 1], past)
        assert torch.allclose(cached[0, -1], fresh, atol=1e-4)
    assert r.step_of(4) == 1 and r.step_of(5) == 2 and r.position_of(2) == 5 and r.stepped(2) == 0


def test_a_replay_that_starts_later_checks_only_its_steps():
    model = tiny_model()
    seq = ids(16, seed=2)
    r = replay(model, seq, n_prompt=3, start=12)
    assert len(r.cached_diff) == 4 and r.stepped(2) is None and r.stepped(r.step_of(12)) == 0
    with pytest.raises(ValueError):
        replay(model, seq, n_prompt=3, start=2)
    with pytest.raises(ValueError):
        replay(model, ids(17), n_prompt=3)  # longer than the context of 16


class Counting:
    """A model that records how many tokens each decode_step call runs (ContextWindow's calls, counted)."""

    def __init__(self, model):
        self.model, self.config, self.calls = model, model.config, []

    def parameters(self):
        return self.model.parameters()

    def decode_step(self, ids, past=None, *args, **kwargs):
        self.calls.append(ids.shape[1])
        return self.model.decode_step(ids, past, *args, **kwargs)


def test_tokens_run_per_step_is_what_generation_really_runs():
    model = Counting(tiny_model())  # a context of 16 tokens
    prompt = tuple(ids(5, seed=3))
    run = advance(model, Run("k", prompt, seed=0), 20, GREEDY)  # well past the window
    assert len(run.steps) == 20
    block = model.config.block_size
    assert model.calls == [tokens_run(len(prompt), s, block) for s in range(1, 21)]
    assert model.calls[:2] == [5, 1] and model.calls[-1] == block


def test_past_the_window_the_whole_window_runs_again_and_a_shortcut_would_be_wrong():
    model = tiny_model()
    seq = ids(20, seed=4)
    s = slid_view(model, seq)
    assert s.window == tuple(seq[-16:])
    assert s.key_norms.shape == (2, 2, 16)
    assert s.stale_diff > 1e-4  # keys at old positions, carrying the dropped token: not the true window
    with pytest.raises(ValueError):
        slid_view(model, seq[:16])


@pytest.mark.parametrize("which", ["gpt", "llama"])
def test_dropping_the_oldest_entry_leaves_the_callers_past(which, llama):
    model = tiny_model() if which == "gpt" else llama
    _, past = model.decode_step(torch.tensor([ids(8)]))
    before = [k.clone() for k, _ in past_layers(past)]
    shorter = drop_oldest(past)
    assert [k.shape[2] for k, _ in past_layers(shorter)] == [7] * model.config.n_layer
    assert all(torch.equal(a, k) for a, (k, _) in zip(before, past_layers(past)))
    assert type(shorter) is type(past)


def test_time_per_token_measures_both_ways():
    model = tiny_model()
    t = time_per_token(model, ids(4), 6)
    assert len(t.cached) == 6 and 1 <= len(t.recomputed) <= 6 and t.start_len == 4
    assert all(x > 0 for x in t.cached + t.recomputed)
    with pytest.raises(ValueError):
        time_per_token(model, ids(16), 4)  # no room left in the context


def test_published_configs_give_the_published_cache_sizes():
    shapes = {s.name: s for s in published()}
    assert shapes["GPT-2 small"].per_token() == 2 * 12 * 12 * 64 * 2 == 36_864
    assert shapes["Llama 2 7B"].per_token() == 2 * 32 * 32 * 128 * 2 == 524_288
    assert shapes["Llama 3.1 8B"].per_token() == 2 * 32 * 8 * 128 * 2 == 131_072
    assert shapes["Llama 3.1 8B"].groups == 4 and shapes["Llama 3.1 8B"].full() == 16 * 2**30
    assert shapes["SmolLM2-135M"].n_kv_head == 3 and shapes["SmolLM2-135M"].d_head == 64
    assert all(source.startswith("huggingface.co/") for _, source in PUBLISHED.values())


def test_a_running_models_shape_is_its_configs(llama):
    assert shape_of("x", llama.config).per_token(4) == model_bytes_per_token(llama)
    config, source = PUBLISHED["GPT-2 small"]
    assert shape_from_config("GPT-2 small", config, source).context == 1024
