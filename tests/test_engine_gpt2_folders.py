"""The GPT-2 family exactly, on our GPT: folders that transformers itself saves, shaped like the Hub's gpt2 and
distilgpt2 (small sizes, random weights, offline), load through `load_pretrained` and compute what
transformers' `GPT2LMHeadModel` (eager attention) computes from the same folder: logits, every attention
pattern and every hidden state, to 1e-4; and greedy generation on the key/value cache writes the same tokens
as transformers' `generate`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from engine import GPTConfig, SamplingSettings, generate, load_pretrained, train_bpe
from engine_fixtures import TEXTS

VOCAB, CONTEXT = 1000, 64

# Fields the Hub's config.json files carry beside the shape (openai-community/gpt2, distilbert/distilgpt2),
# none of which changes the network.
HUB_GPT2 = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "resid_pdrop": 0.1,
    "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
    "summary_type": "cls_index", "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "torch_dtype": "float32", "transformers_version": "4.26.0.dev0", "use_cache": True,
}
HUB_DISTILGPT2 = HUB_GPT2 | {"_num_labels": 1, "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}

# Heads 16 or 4 wide: powers of 4, as every GPT-2 checkpoint's 64, so 1/sqrt(d_head) is exact and transformers'
# division of the scores equals our multiplication to the bit (with 8-wide heads they differ by ~4e-7).
SHAPES = {
    # name: (GPT2Config fields, Hub fields written into config.json over what transformers saved)
    "gpt2": (dict(n_layer=2, n_head=4, n_embd=64), {}),
    "gpt2-hub-config": (dict(n_layer=2, n_head=4, n_embd=64), HUB_GPT2),
    "distilgpt2": (dict(n_layer=6, n_head=12, n_embd=48), HUB_DISTILGPT2),
    # The same scores, computed in float32 under half precision (transformers' eager path takes it).
    "upcast-attention": (dict(n_layer=2, n_head=4, n_embd=64, reorder_and_upcast_attn=True), {}),
    # torch's fused tanh GELU, as our own models name it: the same curve to ~1e-7, run as that kernel.
    "gelu-pytorch-tanh": (dict(n_layer=2, n_head=4, n_embd=64, activation_function="gelu_pytorch_tanh"), {}),
}


@pytest.fixture(scope="module")
def tokenizer():
    """A GPT-2-style byte-level BPE (all 256 bytes, <|endoftext|>, merges) within the 1,000-token vocabulary."""
    return train_bpe(TEXTS, VOCAB)


def saved_by_transformers(folder: Path, fields: dict, hub: dict, tokenizer) -> Path:
    """A random GPT2LMHeadModel saved by transformers itself (safetensors), with the tokenizer beside it."""
    cfg = GPT2Config(n_positions=CONTEXT, vocab_size=VOCAB, **fields)  # activation_function: "gelu_new"
    assert cfg.activation_function == fields.get("activation_function", "gelu_new")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    # GPT-2's init leaves biases at 0, norms at 1 and attention nearly uniform: perturb every parameter so
    # biases, norms and sharp patterns are all compared.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or ".ln_f." in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2 if "c_attn" in name else 0.05)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file() and not (folder / "pytorch_model.bin").exists()
    if hub:
        path = folder / "config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | hub, indent=2))
    return folder


@pytest.fixture(scope="module", params=list(SHAPES))
def folder(request, tmp_path_factory, tokenizer) -> Path:
    fields, hub = SHAPES[request.param]
    return saved_by_transformers(tmp_path_factory.mktemp(request.param), fields, hub, tokenizer)


@pytest.fixture(scope="module")
def both(folder):
    ours, tok = load_pretrained(folder)
    theirs = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    assert isinstance(theirs, GPT2LMHeadModel)
    return ours, tok, theirs


@pytest.fixture(scope="module")
def outputs(both):
    ours, tok, theirs = both
    texts = (" ".join(TEXTS[:8]), " ".join(reversed(TEXTS[:8])))
    ids = torch.tensor([tok.encode(t)[:CONTEXT] for t in texts])
    assert ids.shape == (2, CONTEXT)  # the whole context
    logits, cache = ours.run_with_cache(ids)
    with torch.no_grad():
        ref = theirs(ids, output_attentions=True, output_hidden_states=True)
    return ids, logits, cache, ref


def test_the_config_reads_as_the_network_transformers_builds(folder, both):
    ours, _, theirs = both
    cfg = json.loads((folder / "config.json").read_text())
    assert GPTConfig.from_hf_dict(cfg) == ours.config
    c = theirs.config
    assert (ours.config.block_size, ours.config.vocab_size, ours.config.n_layer, ours.config.n_head,
            ours.config.n_embd) == (c.n_positions, c.vocab_size, c.n_layer, c.n_head, c.n_embd)
    assert ours.num_params() == theirs.num_parameters() == ours.config.n_params()


def test_logits_match(outputs):
    _, logits, _, ref = outputs
    torch.testing.assert_close(logits, ref.logits, atol=1e-4, rtol=1e-4)
    assert ref.logits.std() > 0.1  # the weights are not trivial


def test_logits_are_bit_exact(both, outputs):
    """GPT-2's gelu_new is computed with transformers' formula (torch's fused tanh GELU left 1.5e-5 in the
    logits), gelu_pytorch_tanh with the fused kernel both use: every logit equals transformers' exactly."""
    ours, _, _ = both
    _, logits, cache, ref = outputs
    assert float((logits - ref.logits).abs().max()) == 0.0
    assert ours.transformer.h[0].mlp.act.__name__ == ours.config.activation
    fused = torch.nn.functional.gelu(cache["blocks.0.mlp.hook_pre"], approximate="tanh")
    differs = not torch.equal(fused, cache["blocks.0.mlp.hook_post"])
    assert differs == (ours.config.activation == "gelu_new")  # the formula, not the kernel, for gelu_new


def test_every_attention_pattern_matches(both, outputs):
    ours, _, _ = both
    _, _, cache, ref = outputs
    assert len(ref.attentions) == ours.config.n_layer
    for layer, theirs in enumerate(ref.attentions):
        assert theirs.shape == (2, ours.config.n_head, CONTEXT, CONTEXT)
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], theirs, atol=1e-4, rtol=1e-4)
    assert max(float(a.max()) for a in ref.attentions) > 0.5  # sharp patterns, not near-uniform averages


def test_every_hidden_state_matches(both, outputs):
    ours, _, _ = both
    _, _, cache, ref = outputs
    n = ours.config.n_layer
    assert len(ref.hidden_states) == n + 1
    for layer in range(n):
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_pre"], ref.hidden_states[layer],
                                   atol=1e-4, rtol=1e-4)
    # transformers' last hidden state is taken after ln_f.
    torch.testing.assert_close(cache["ln_final.hook_normalized"], ref.hidden_states[n], atol=1e-4, rtol=1e-4)


def test_greedy_generation_on_the_cache_matches_transformers(both):
    ours, tok, theirs = both
    prompt = tok.encode("Once upon a time")
    n_new = CONTEXT - len(prompt)  # up to the end of the context
    mine = generate(ours, prompt, n_new, SamplingSettings(temperature=0))
    with torch.no_grad():
        out = theirs.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                              max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert mine == out[0, len(prompt):].tolist()
