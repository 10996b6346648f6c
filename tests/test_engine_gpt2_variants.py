"""GPT-2 configs Glassbox's own GPT does not implement (another activation_function, scale_attn_by_inverse_layer_idx,
scale_attn_weights off, untied output embeddings, n_inner other than 4 x n_embd) run inside transformers, as the
GPT-2 family's twin (engine/model/families/gpt2.py): each, built tiny with random weights and saved by
transformers itself, is offered by the picker's checks, loads through the app's loader, and records logits,
every attention pattern and every hidden state as transformers' own eager forward computes them."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import ACT2FN

from engine import GPT, run_trace
from engine.generation.sampling import SamplingSettings, generate
from engine.inspect.attention_steps import weight_steps
from engine.model.arch import Model, ModelConfig, differences
from engine.model.families import FAMILIES
from engine.model.hf import HFModel, load_model
from engine.model.sources import check_folder
from engine.model.trace import hook_names
from engine_fixtures import TEXTS, VOCAB, tokenizer

TEXT = " ".join(TEXTS[:2])
ATOL = 1e-5
SHAPE = dict(n_positions=32, n_embd=32, n_layer=3, n_head=4, vocab_size=VOCAB, bos_token_id=0, eos_token_id=0)
# name: (GPT2Config fields beyond the shape, words the sidebar's "How it differs from GPT-2" says)
VARIANTS = {
    "gelu": (dict(activation_function="gelu"), "MLP nonlinearity: gelu"),
    "relu": (dict(activation_function="relu"), "MLP nonlinearity: relu"),
    "silu": (dict(activation_function="silu"), "MLP nonlinearity: silu"),
    "inverse-layer-scale": (dict(scale_attn_by_inverse_layer_idx=True), "layer L also divides q.k by L + 1"),
    "inverse-layer-scale-upcast": (dict(scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True),
                                   "layer L also divides q.k by L + 1"),
    "no-attention-scale": (dict(scale_attn_weights=False), "No 1/sqrt(d_head) scale"),
    "untied": (dict(tie_word_embeddings=False), "Untied unembedding"),
    "narrow-mlp": (dict(n_inner=48), "MLP width: 48 neurons per layer"),
}


def save_variant(folder, fields: dict) -> GPT2LMHeadModel:
    """A random GPT2LMHeadModel with `fields`, every parameter perturbed (biases, norms, sharp patterns),
    saved by transformers (safetensors) with the tiny tokenizer; returns it in eval mode, eager attention."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**SHAPE, **fields))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1 + 0.2 * torch.randn_like(p) if ".ln_" in name else 0.2 * torch.randn_like(p))
    model.save_pretrained(folder)
    tokenizer().save_pretrained(folder)
    model.config._attn_implementation = "eager"
    return model.eval()


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt2-variants")
    return {name: (root / name, save_variant(root / name, fields)) for name, (fields, _) in VARIANTS.items()}


@pytest.fixture(scope="module")
def loaded(variants):
    return {name: load_model(folder) for name, (folder, _) in variants.items()}


@pytest.mark.parametrize("name", VARIANTS)
def test_the_picker_offers_it_and_the_loader_runs_it_in_transformers(variants, loaded, name):
    folder, reference = variants[name]
    facts = check_folder(folder)  # what the picker lists as loadable
    assert facts.family == "gpt2" and facts.n_params == reference.num_parameters()
    config = json.loads((folder / "config.json").read_text())
    assert FAMILIES["gpt2"].runner(config) is FAMILIES["gpt2"].twin
    model, _ = loaded[name]
    assert isinstance(model, HFModel) and not isinstance(model, GPT) and model.family == "gpt2"
    assert isinstance(model, Model) and isinstance(model.config, ModelConfig)
    assert model.num_params() == reference.num_parameters()
    assert any(VARIANTS[name][1] in line for line in differences(model.config)), differences(model.config)


@pytest.mark.parametrize("name", VARIANTS)
def test_trace_agrees_with_transformers_eager(variants, loaded, name):
    model, tok = loaded[name]
    trace = run_trace(model, tok, TEXT)
    assert set(hook_names(3)) <= set(trace.act)
    with torch.no_grad():
        out = variants[name][1](torch.tensor([trace.ids]), output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(trace.logits, out.logits[0], atol=ATOL, rtol=0)
    for layer in range(3):
        torch.testing.assert_close(trace.act[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0],
                                   atol=ATOL, rtol=0)
        torch.testing.assert_close(trace.act[f"blocks.{layer}.hook_resid_pre"], out.hidden_states[layer][0],
                                   atol=ATOL, rtol=0)
    torch.testing.assert_close(trace.act["ln_final.hook_normalized"], out.hidden_states[-1][0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_recorded_steps_fit_together(loaded, name):
    """Scores are q.k times the layer's own scale; the MLP's neurons are its activation of hook_pre."""
    model, tok = loaded[name]
    trace = run_trace(model, tok, TEXT)
    cfg = model.config
    for layer in range(3):
        s = weight_steps(trace, layer, 1, len(trace) - 1)
        torch.testing.assert_close(s.dots * cfg.layer_scale(layer), s.scores, atol=1e-4, rtol=1e-5)
        pre, post = trace.act[f"blocks.{layer}.mlp.hook_pre"], trace.act[f"blocks.{layer}.mlp.hook_post"]
        assert pre.shape[-1] == post.shape[-1] == cfg.d_mlp
        torch.testing.assert_close(ACT2FN[cfg.activation](pre), post, atol=1e-5, rtol=0)
    if cfg.scale_by_layer:
        assert cfg.layer_scale(2) == pytest.approx(cfg.scale / 3)


@pytest.mark.parametrize("name", ["relu", "untied", "inverse-layer-scale"])
def test_it_generates_what_transformers_generates(variants, loaded, name):
    """Greedy, on the key/value cache (decode_step), the same tokens as transformers' own generate."""
    model, tok = loaded[name]
    ids = [0] + tok.encode("Once upon a time")
    ours = generate(model, ids, 10, SamplingSettings(temperature=0.0))
    with torch.no_grad():
        # attention_mask: the start marker is id 0, which is also pad_token_id (else generate masks it out)
        theirs = variants[name][1].generate(torch.tensor([ids]), attention_mask=torch.ones_like(torch.tensor([ids])),
                                            max_new_tokens=10, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert ours == theirs[0, len(ids):].tolist()


def test_a_config_our_gpt_runs_still_loads_into_our_gpt(tmp_path):
    save_variant(tmp_path, dict(activation_function="gelu_new", reorder_and_upcast_attn=True))
    model, _ = load_model(tmp_path)
    assert isinstance(model, GPT)
