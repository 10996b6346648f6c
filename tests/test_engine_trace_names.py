"""Every activation a Trace records, pinned by name and shape for a 2-layer model (TransformerLens
tests/integration/test_cache_hook_names.py). Renaming one breaks the pages that read it: change both."""
from __future__ import annotations

import pytest
import torch

from engine import hook_names, run_trace, trace_ids
from engine_fixtures import VOCAB, tiny_model, tokenizer

EXPECTED_NAMES = [
    "hook_embed",
    "hook_pos_embed",
    "blocks.0.hook_resid_pre",
    "blocks.0.attn.hook_q",
    "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_attn_scores",
    "blocks.0.attn.hook_pattern",
    "blocks.0.attn.hook_z",
    "blocks.0.hook_attn_out",
    "blocks.0.hook_resid_mid",
    "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_post",
    "blocks.0.hook_mlp_out",
    "blocks.0.hook_resid_post",
    "blocks.1.hook_resid_pre",
    "blocks.1.attn.hook_q",
    "blocks.1.attn.hook_k",
    "blocks.1.attn.hook_v",
    "blocks.1.attn.hook_attn_scores",
    "blocks.1.attn.hook_pattern",
    "blocks.1.attn.hook_z",
    "blocks.1.hook_attn_out",
    "blocks.1.hook_resid_mid",
    "blocks.1.mlp.hook_pre",
    "blocks.1.mlp.hook_post",
    "blocks.1.hook_mlp_out",
    "blocks.1.hook_resid_post",
    "ln_final.hook_normalized",
]

# Shapes in a Trace (batch dropped), with pos = P, d_model = 32, head = 2, d_head = 16, d_mlp = 128.
P = "P"
EXPECTED_SHAPES = {
    "hook_embed": (P, 32),
    "hook_pos_embed": (P, 32),
    "ln_final.hook_normalized": (P, 32),
} | {
    f"blocks.{i}.{name}": shape
    for i in range(2)
    for name, shape in {
        "hook_resid_pre": (P, 32), "hook_resid_mid": (P, 32), "hook_resid_post": (P, 32),
        "attn.hook_q": (P, 2, 16), "attn.hook_k": (P, 2, 16), "attn.hook_v": (P, 2, 16), "attn.hook_z": (P, 2, 16),
        "attn.hook_attn_scores": (2, P, P), "attn.hook_pattern": (2, P, P),
        "hook_attn_out": (P, 32), "hook_mlp_out": (P, 32),
        "mlp.hook_pre": (P, 128), "mlp.hook_post": (P, 128),
    }.items()
}


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def trace(model):
    return run_trace(model, tokenizer(), "Tom liked to play.\nThe end.")


def test_hook_names_are_pinned():
    assert hook_names(2) == EXPECTED_NAMES
    assert len(set(EXPECTED_NAMES)) == len(EXPECTED_NAMES) == 29


def test_trace_records_exactly_the_pinned_names_in_forward_order(trace):
    assert list(trace.act) == EXPECTED_NAMES


def test_run_with_cache_records_the_same_names(model):
    _, cache = model.run_with_cache(torch.tensor([[1, 2, 3]]))
    assert list(cache) == EXPECTED_NAMES


@pytest.mark.parametrize("n_layer", [1, 3])
def test_hook_names_match_the_cache_for_other_depths(n_layer):
    m = tiny_model(n_layer=n_layer)
    _, cache = m.run_with_cache(torch.tensor([[1, 2]]))
    assert list(cache) == hook_names(n_layer)
    assert len(cache) == 3 + 13 * n_layer


def test_shapes_drop_the_batch_dimension(trace):
    pos = len(trace)
    assert pos > 3
    for name, shape in EXPECTED_SHAPES.items():
        expected = tuple(pos if d == P else d for d in shape)
        assert tuple(trace.act[name].shape) == expected, name


def test_trace_tensors_are_float32_on_the_cpu(trace):
    assert trace.logits.shape == (len(trace), VOCAB)
    for name, value in [("logits", trace.logits), *trace.act.items()]:
        assert value.dtype == torch.float32 and value.device.type == "cpu", name


def test_trace_fields_line_up(trace):
    tok = tokenizer()
    n = len(trace)
    assert len(trace.ids) == len(trace.tokens) == len(trace.offsets) == n
    assert trace.has_bos and trace.ids[0] == tok.convert_tokens_to_ids("<|endoftext|>") and trace.offsets[0] == (0, 0)
    assert trace.n_dropped == 0
    assert trace.text == "Tom liked to play.\nThe end."
    assert trace.pattern(1, 0).shape == (n, n)
    torch.testing.assert_close(trace.probs(-1).sum(), torch.tensor(1.0))
    torch.testing.assert_close(trace.probs(2), trace.logits[2].softmax(-1))


def test_trace_equals_the_batched_cache(model, trace):
    logits, cache = model.run_with_cache(torch.tensor([trace.ids]))
    torch.testing.assert_close(trace.logits, logits[0])
    for name in EXPECTED_NAMES:
        torch.testing.assert_close(trace.act[name], cache[name][0])


def test_long_text_keeps_the_last_tokens_after_the_start_marker(model):
    tok = tokenizer()
    text = "Once upon a time, there was a little cat named Tom. Tom liked to play with a red ball."
    all_ids = tok(text, add_special_tokens=False)["input_ids"]
    block = model.config.block_size
    assert len(all_ids) > block
    t = run_trace(model, tok, text)
    assert len(t) == block
    assert t.ids[1:] == all_ids[-(block - 1):]
    assert t.n_dropped == len(all_ids) - (block - 1)
    no_bos = run_trace(model, tok, text, bos=False)
    assert no_bos.ids == all_ids[-block:] and not no_bos.has_bos


def test_empty_text_is_refused(model):
    with pytest.raises(ValueError, match="no text to run"):
        run_trace(model, tokenizer(), "")
    with pytest.raises(ValueError, match="no text to run"):
        run_trace(model, tokenizer(), "", bos=False)
    with pytest.raises(ValueError, match="no text to run"):
        trace_ids(model, tokenizer(), [])


def test_trace_ids_fills_display_fields(model):
    t = trace_ids(model, tokenizer(), [0, 84, 111])
    assert t.tokens[0] == "<|endoftext|>" and len(t.tokens) == 3
    assert t.offsets == [(0, 0)] * 3
    with pytest.raises(ValueError, match="exceed the context"):
        trace_ids(model, tokenizer(), [1] * (model.config.block_size + 1))
