"""The model itself: the explicit attention path agrees with the fused one (nanochat
tests/test_attention_fallback.py), the causal mask holds, nothing is stored on modules, the config validates."""
from __future__ import annotations

import dataclasses
import math
import threading

import pytest
import torch

from engine import GPT, GPTConfig, run_trace
from engine_fixtures import VOCAB, tiny_config, tiny_model, tokenizer


@pytest.fixture(scope="module")
def model() -> GPT:
    return tiny_model(seed=1)


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- the explicit attention path equals the fused kernel ---------------------------------------------------

@pytest.mark.parametrize("batch,length", [(1, 1), (1, 7), (3, 16)])
def test_explicit_path_equals_fused_path(model, batch, length):
    idx = random_ids(batch, length)
    with torch.no_grad():
        fused, loss = model(idx)
    explicit, cache = model.run_with_cache(idx)
    assert loss is None
    assert fused.shape == explicit.shape == (batch, length, VOCAB)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


def test_explicit_attention_equals_fused_attention_layer_by_layer(model):
    # Feed each block's own ln_1 input to its attention without a cache (fused kernel) and compare with the
    # attention output the explicit path recorded: the two agree inside every layer, not only at the end.
    idx = random_ids(2, 16, seed=3)
    _, cache = model.run_with_cache(idx)
    with torch.no_grad():
        for i, block in enumerate(model.transformer.h):
            fused = block.attn(block.ln_1(cache[f"blocks.{i}.hook_resid_pre"]))
            torch.testing.assert_close(cache[f"blocks.{i}.hook_attn_out"], fused, atol=1e-6, rtol=1e-5)


def test_attention_is_not_uniform_so_the_comparison_means_something(model):
    _, cache = model.run_with_cache(random_ids(1, 16, seed=4))
    pattern = cache["blocks.0.attn.hook_pattern"][0, :, -1]  # [head, key_pos] of the last query
    assert (pattern.max(-1).values - pattern.min(-1).values).min() > 1e-4


# --- the causal mask ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("changed", [0, 5, 15])
def test_a_later_token_never_changes_earlier_logits(model, changed):
    idx = random_ids(1, 16, seed=5)
    other = idx.clone()
    other[0, changed] = (other[0, changed] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(other)
    a_explicit, _ = model.run_with_cache(idx)
    b_explicit, _ = model.run_with_cache(other)
    assert torch.equal(a[:, :changed], b[:, :changed])
    assert torch.equal(a_explicit[:, :changed], b_explicit[:, :changed])
    assert not torch.allclose(a[:, changed], b[:, changed])  # the changed position itself does move


def test_scores_are_minus_infinity_above_the_diagonal_and_finite_below(model):
    T = 9
    _, cache = model.run_with_cache(random_ids(2, T, seed=6))
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    for layer in range(model.config.n_layer):
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"]  # [batch, head, q, k]
        assert scores.shape == (2, model.config.n_head, T, T)
        assert torch.isneginf(scores[..., future]).all()
        assert torch.isfinite(scores[..., ~future]).all()


def test_pattern_rows_sum_to_one_and_are_zero_above_the_diagonal(model):
    T = 12
    _, cache = model.run_with_cache(random_ids(2, T, seed=7))
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    for layer in range(model.config.n_layer):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        torch.testing.assert_close(pattern.sum(-1), torch.ones(2, model.config.n_head, T))
        assert (pattern[..., future] == 0).all()
        assert (pattern >= 0).all()
        assert torch.equal(pattern[..., 0, 0], torch.ones(2, model.config.n_head))  # the first token sees itself


def test_scores_are_scaled_dot_products(model):
    # hook_attn_scores is q.k / sqrt(d_head), the number the page shows before the softmax.
    _, cache = model.run_with_cache(random_ids(1, 6, seed=8))
    q, k = cache["blocks.1.attn.hook_q"][0], cache["blocks.1.attn.hook_k"][0]  # [pos, head, d_head]
    scores = cache["blocks.1.attn.hook_attn_scores"][0]  # [head, q, k]
    expected = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(model.config.d_head)
    lower = torch.ones(6, 6, dtype=torch.bool).tril()
    torch.testing.assert_close(scores[:, lower], expected[:, lower])


# --- nothing is stored on the model --------------------------------------------------------------------------

def module_state(model: GPT) -> dict[str, set[str]]:
    return {name: set(vars(m)) for name, m in model.named_modules()}


def test_run_with_cache_stores_nothing_on_modules(model):
    before = module_state(model)
    buffers = dict(model.named_buffers())
    _, first = model.run_with_cache(random_ids(1, 5, seed=9))
    kept = {k: v.clone() for k, v in first.items()}
    _, second = model.run_with_cache(random_ids(1, 11, seed=10))
    assert module_state(model) == before
    assert dict(model.named_buffers()).keys() == buffers.keys()
    assert first is not second
    assert all(torch.equal(first[k], kept[k]) for k in kept)  # a later call leaves an earlier cache alone
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_two_threads_tracing_at_once_get_the_serial_results(model):
    tok = tokenizer()
    texts = ["Tom was sad.", "Once upon a time, there was a little cat named Tom. The end."]
    serial = [run_trace(model, tok, t) for t in texts]
    results: dict[int, list] = {0: [], 1: []}
    start = threading.Barrier(2)

    def work(i: int) -> None:
        start.wait()
        for _ in range(15):
            results[i].append(run_trace(model, tok, texts[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, expected in enumerate(serial):
        assert len(results[i]) == 15
        for got in results[i]:
            assert got.ids == expected.ids
            assert got.act.keys() == expected.act.keys()
            torch.testing.assert_close(got.logits, expected.logits, atol=1e-6, rtol=0)
            for name, value in expected.act.items():
                torch.testing.assert_close(got.act[name], value, atol=1e-6, rtol=0)


# --- training loss ---------------------------------------------------------------------------------------

def test_loss_at_init_is_about_ln_vocab(model):
    idx, targets = random_ids(4, 16, seed=11), random_ids(4, 16, seed=12)
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 16, VOCAB)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert abs(loss.item() - math.log(VOCAB)) < 0.1  # near-uniform predictions at init


def test_loss_ignores_targets_of_minus_one_and_has_finite_gradients():
    model = tiny_model(seed=2).train()
    idx, targets = random_ids(2, 8, seed=13), random_ids(2, 8, seed=14)
    masked = targets.clone()
    masked[:, 4:] = -1
    logits, loss = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, VOCAB), targets[:, :4].reshape(-1))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_training_mode_without_dropout_gives_the_eval_logits():
    model = tiny_model(seed=2)
    idx = random_ids(1, 10, seed=15)
    with torch.no_grad():
        eval_logits, _ = model(idx)
        train_logits, _ = model.train()(idx)
    torch.testing.assert_close(train_logits, eval_logits)


def test_attention_dropout_defaults_to_dropout_and_can_be_set_apart():
    assert tiny_config(dropout=0.2).attn_dropout == 0.2
    cfg = tiny_config(dropout=0.1, attn_dropout=0.0)
    hf = cfg.to_hf_dict()
    assert (hf["resid_pdrop"], hf["embd_pdrop"], hf["attn_pdrop"]) == (0.1, 0.1, 0.0)
    # A checkpoint resumed from its config.json keeps training with the dropout it was started with.
    assert GPTConfig.from_hf_dict(hf).dropout == 0.1


def test_residual_dropout_alone_changes_training_logits_but_not_attention():
    model = GPT(tiny_config(dropout=0.5, attn_dropout=0.0))
    assert model.transformer.h[0].attn.dropout == 0.0
    assert model.transformer.h[0].drop.p == 0.5 and model.transformer.drop.p == 0.5
    idx = random_ids(1, 10, seed=15)
    with torch.no_grad():
        eval_logits, _ = model.eval()(idx)
        train_logits, _ = model.train()(idx)
    assert not torch.allclose(train_logits, eval_logits)


# --- the context -----------------------------------------------------------------------------------------

def test_context_overflow_raises_a_clear_value_error(model):
    block = model.config.block_size
    too_long = random_ids(1, block + 1)
    with pytest.raises(ValueError, match=rf"{block + 1} tokens exceed the context of {block}"):
        model(too_long)
    with pytest.raises(ValueError, match="exceed the context"):
        model.run_with_cache(too_long)
    with torch.no_grad():
        logits, _ = model(random_ids(1, block))  # exactly the context is fine
    assert logits.shape == (1, block, VOCAB)


def test_weights_are_tied_and_named_as_gpt2(model):
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.num_params() == model.config.n_params()
    names = set(model.state_dict())
    for expected in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                     "transformer.h.1.attn.c_attn.weight", "transformer.h.1.attn.c_proj.bias",
                     "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight",
                     "transformer.ln_f.bias", "lm_head.weight"):
        assert expected in names
    assert model.transformer.h[0].attn.c_attn.weight.shape == (32, 96)  # Conv1D stores [in, out]


# --- the config ------------------------------------------------------------------------------------------

def test_config_is_frozen_and_hashable():
    cfg = tiny_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_layer = 3
    assert cfg == tiny_config() and hash(cfg) == hash(tiny_config())
    assert {cfg: "a", tiny_config(): "b"} == {cfg: "b"}  # usable as a cache key
    assert tiny_config(n_layer=3) != cfg
    assert cfg.d_head == 16 and cfg.d_mlp == 128


@pytest.mark.parametrize("bad,message", [
    (dict(n_embd=30, n_head=4), r"n_embd \(30\) must be divisible by n_head \(4\)"),
    (dict(n_head=0), "n_head must be at least 1"),
    (dict(n_layer=0), "n_layer must be at least 1"),
    (dict(block_size=-1), "block_size must be at least 1"),
    (dict(vocab_size=0), "vocab_size must be at least 1"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
    (dict(attn_dropout=1.0), r"attn_dropout must be in \[0, 1\)"),
])
def test_config_validates(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**bad)


def test_config_round_trips_through_a_gpt2_config_dict():
    cfg = tiny_config(layer_norm_epsilon=1e-6, bos_token_id=3, eos_token_id=3, dropout=0.1, attn_dropout=0.0)
    assert GPTConfig.from_hf_dict(cfg.to_hf_dict()) == cfg
    with pytest.raises(ValueError, match="model_type"):
        GPTConfig.from_hf_dict(cfg.to_hf_dict() | {"model_type": "llama"})
    with pytest.raises(ValueError, match="activation_function"):
        GPTConfig.from_hf_dict(cfg.to_hf_dict() | {"activation_function": "relu"})
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        GPTConfig.from_hf_dict(cfg.to_hf_dict() | {"tie_word_embeddings": False})
