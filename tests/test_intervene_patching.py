"""Activation patching (engine/intervene/patching.py) on our GPT, a GPT-2-family folder and every family that
runs in transformers: patching everything gives the clean run exactly, nothing the corrupted run exactly, and
every cell of both grids agrees with a reference computed one cell at a time, by a forward pass written out in
plain PyTorch (our GPT) or by transformers' own model with a plain PyTorch hook (the other folders)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from engine.intervene import price as price_module
from engine.intervene.patching import (HEADS, RESID, Pair, Patch, cell_patches, default_answers, logit_diff,
                                       make_pair, patched_run, patching_grid, price_grid, run_pair)
from engine.intervene.price import Refusal, check
from engine.model.hf import load_model
from engine_fixtures import TINY_HF, VOCAB, save_tiny_hf, tiny_model, tokenizer

CLEAN = "The cat sat on the bank and looked at the"  # the two words split alike under the tests' tiny tokenizer
CORRUPTED = "The dog sat on the bank and looked at the"
ATOL = 1e-4


def reference_logits(model, ids: list[int], resid: tuple[int, int, torch.Tensor] | None = None,
                     head: tuple[int, int, torch.Tensor] | None = None, record: dict | None = None) -> torch.Tensor:
    """Our GPT's forward pass written out in plain PyTorch from its weights, one sequence: logits [pos, vocab].
    resid (layer, position, value): the residual stream entering `layer` at `position` becomes value;
    head (layer, head, z [pos, d_head]): that head's output before the projection becomes z; `record` gets
    resid_pre and z of every layer."""
    cfg, tr = model.config, model.transformer
    T, d, H = len(ids), cfg.n_embd, cfg.n_head
    dh = d // H
    x = tr.wte.weight[ids] + tr.wpe.weight[:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for layer, block in enumerate(tr.h):
        if resid is not None and resid[0] == layer:
            x = x.clone()
            x[resid[1]] = resid[2]
        if record is not None:
            record[f"resid{layer}"] = x.clone()
        h = F.layer_norm(x, (d,), block.ln_1.weight, block.ln_1.bias, cfg.layer_norm_epsilon)
        q, k, v = (h @ block.attn.c_attn.weight + block.attn.c_attn.bias).split(d, dim=-1)
        q, k, v = (t.view(T, H, dh).transpose(0, 1) for t in (q, k, v))  # [head, pos, d_head]
        scores = (q @ k.transpose(1, 2) / math.sqrt(dh)).masked_fill(~causal, float("-inf"))
        z = (scores.softmax(-1) @ v).transpose(0, 1).clone()  # [pos, head, d_head]
        if head is not None and head[0] == layer:
            z[:, head[1]] = head[2]
        if record is not None:
            record[f"z{layer}"] = z.clone()
        x = x + z.reshape(T, d) @ block.attn.c_proj.weight + block.attn.c_proj.bias
        h = F.layer_norm(x, (d,), block.ln_2.weight, block.ln_2.bias, cfg.layer_norm_epsilon)
        x = x + F.gelu(h @ block.mlp.c_fc.weight + block.mlp.c_fc.bias, approximate="tanh") @ \
            block.mlp.c_proj.weight + block.mlp.c_proj.bias
    x = F.layer_norm(x, (d,), tr.ln_f.weight, tr.ln_f.bias, cfg.layer_norm_epsilon)
    return x @ tr.wte.weight.T


@pytest.fixture(scope="module")
def gpt():
    model = tiny_model(seed=3, block_size=32)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def pair(gpt) -> Pair:
    return make_pair(tokenizer(), CLEAN, CORRUPTED, gpt.config.block_size)


def test_the_pair_lines_up_and_differs_in_one_word(pair):
    assert len(pair.clean_ids) == len(pair.corrupted_ids)
    assert [pair.clean_tokens[i] for i in pair.differ] and pair.first_diff == pair.differ[0] > 0
    assert pair.clean_ids[:pair.first_diff] == pair.corrupted_ids[:pair.first_diff]


@pytest.mark.parametrize("clean, corrupted, words", [
    ("", "Tom went home.", "Both prompts need some text"),
    ("Tom went to the park.", "Tom went to the park.", "the same tokens"),
    ("Tom went to the river.", "Tom went to the qzxv.", "line up token for token"),
])
def test_pairs_that_cannot_be_patched_are_refused_in_a_sentence(clean, corrupted, words):
    with pytest.raises(Refusal, match=words) as e:
        make_pair(tokenizer(), clean, corrupted, 32)
    assert "\n" not in str(e.value)


def test_a_pair_longer_than_the_context_is_refused():
    with pytest.raises(Refusal, match="longer than the model's context"):
        make_pair(tokenizer(), "Tom ran. " * 20, "Sam ran. " * 20, 16)


def test_patching_everything_gives_the_clean_run_and_nothing_the_corrupted_run_exactly(gpt, pair):
    runs = run_pair(gpt, pair)
    clean, _ = patched_run(gpt, pair.clean_ids, [], runs.clean_act)
    everything = [Patch("blocks.0.hook_resid_pre")]  # every position, where the first layer starts
    patched, cache = patched_run(gpt, pair.corrupted_ids, everything, runs.clean_act)
    assert torch.equal(patched, clean)
    assert torch.equal(cache["blocks.0.hook_resid_pre"], runs.clean_act["blocks.0.hook_resid_pre"].float())
    nothing, _ = patched_run(gpt, pair.corrupted_ids, [], runs.clean_act)
    corrupted, _ = patched_run(gpt, pair.corrupted_ids, [Patch("blocks.0.hook_resid_pre", positions=())],
                               runs.clean_act)
    assert torch.equal(nothing, corrupted)
    assert torch.equal(nothing[-1], runs.corrupted_logits) or torch.allclose(nothing[-1], runs.corrupted_logits,
                                                                             atol=1e-6)


def test_both_grids_agree_with_a_forward_pass_written_out_by_hand(gpt, pair):
    runs = run_pair(gpt, pair)
    answers = default_answers(runs)
    recorded: dict[str, torch.Tensor] = {}
    clean = reference_logits(gpt, pair.clean_ids, record=recorded)
    corrupted = reference_logits(gpt, pair.corrupted_ids)
    torch.testing.assert_close(runs.clean_logits, clean[-1], atol=ATOL, rtol=0)
    resid = patching_grid(gpt, runs, RESID, answers)
    heads = patching_grid(gpt, runs, HEADS, answers)
    L, T, H = gpt.config.n_layer, len(pair), gpt.config.n_head
    assert resid.logit_diff.shape == (L, T) and heads.logit_diff.shape == (L, H)
    for layer in range(L):
        for p in range(T):
            ref = reference_logits(gpt, pair.corrupted_ids, resid=(layer, p, recorded[f"resid{layer}"][p]))
            assert abs(float(logit_diff(ref[-1], answers)) - float(resid.logit_diff[layer, p])) < ATOL, (layer, p)
        for h in range(H):
            ref = reference_logits(gpt, pair.corrupted_ids, head=(layer, h, recorded[f"z{layer}"][:, h]))
            assert abs(float(logit_diff(ref[-1], answers)) - float(heads.logit_diff[layer, h])) < ATOL, (layer, h)
    assert abs(resid.clean_diff - float(logit_diff(clean[-1], answers))) < ATOL
    assert abs(resid.corrupted_diff - float(logit_diff(corrupted[-1], answers))) < ATOL


def test_cells_the_prompts_share_are_the_corrupted_run_and_the_word_itself_recovers_everything(gpt, pair):
    runs = run_pair(gpt, pair)
    grid = patching_grid(gpt, runs, RESID)
    rec = grid.recovered
    p = pair.first_diff
    assert torch.equal(rec[:, :p], torch.zeros_like(rec[:, :p]))  # before the difference: nothing to copy
    others = [i for i in range(len(pair)) if i not in pair.differ]
    assert torch.equal(rec[0, others], torch.zeros(len(others)))  # layer 0 holds only each token's own embedding
    if pair.differ == [p]:  # one word apart: copying it in at the start makes the run clean
        assert abs(float(rec[0, p]) - 1) < 1e-4
    assert grid.computed < gpt.config.n_layer * len(pair)


def test_a_clicked_cell_is_one_patched_run_with_the_grid_value(gpt, pair):
    runs = run_pair(gpt, pair)
    grid = patching_grid(gpt, runs, HEADS)
    logits, cache = patched_run(gpt, pair.corrupted_ids, cell_patches(HEADS, 1, 0), runs.clean_act)
    assert abs(float(logit_diff(logits[-1], grid.answers)) - float(grid.logit_diff[1, 0])) < ATOL
    torch.testing.assert_close(cache["blocks.1.attn.hook_z"][:, 0], runs.clean_act["blocks.1.attn.hook_z"][:, 0])


def test_answers_both_prompts_agree_on_are_refused(gpt, pair):
    runs = run_pair(gpt, pair)
    token = int(runs.clean_logits.argmax())
    with pytest.raises(Refusal, match="nothing for a patch to recover"):
        patching_grid(gpt, runs, RESID, (token, token))


def test_a_grid_is_priced_before_it_runs_and_refused_over_the_budget(gpt, pair, monkeypatch):
    runs = run_pair(gpt, pair)
    price = price_grid(gpt.config, runs, RESID)
    assert price.forwards == gpt.config.n_layer * len(pair) and 0 < price.calls < price.forwards
    assert price.seconds > 0
    monkeypatch.setenv("GLASSBOX_INTERVENE_BUDGET_S", "0.000001")
    with pytest.raises(Refusal, match="forward passes") as e:
        check(price, "this patching grid")
    assert price_module.BUDGET_ENV in str(e.value) and "\n" not in str(e.value)


# --- the same grids on model folders, against transformers ---------------------------------------------------

# family -> (the layers of the transformers model, the module whose input is the heads' outputs side by side)
PEERS = {
    "gpt2": (lambda m: m.transformer.h, lambda layer: layer.attn.c_proj),
    "gpt_neo": (lambda m: m.transformer.h, lambda layer: layer.attn.attention.out_proj),
    "gpt_neox": (lambda m: m.gpt_neox.layers, lambda layer: layer.attention.dense),
    "llama": (lambda m: m.model.layers, lambda layer: layer.self_attn.o_proj),
    "qwen2": (lambda m: m.model.layers, lambda layer: layer.self_attn.o_proj),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("patching")
    out = {}
    for family in sorted(TINY_HF):
        out[family] = (root / family, save_tiny_hf(family, root / family, seed=1))
    torch.manual_seed(1)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                      bos_token_id=0, eos_token_id=0)).eval()
    gpt2.save_pretrained(str(root / "gpt2"))
    tokenizer().save_pretrained(str(root / "gpt2"))
    out["gpt2"] = (root / "gpt2", gpt2)
    return out


def _peer_run(hf, family: str, ids: list[int], resid=None, head=None, record=None) -> torch.Tensor:
    """transformers' own forward pass, patched by plain PyTorch hooks that live for this call only."""
    layers_of, heads_in = PEERS[family]
    layers = layers_of(hf)
    n_head = hf.config.num_attention_heads if hasattr(hf.config, "num_attention_heads") else hf.config.n_head
    handles = []
    for i, layer in enumerate(layers):
        def pre(_m, args, kwargs, i=i):
            x = args[0] if args else kwargs["hidden_states"]
            if record is not None:
                record[f"resid{i}"] = x[0].clone()
            if resid is not None and resid[0] == i:
                x = x.clone()
                x[0, resid[1]] = resid[2]
                return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
            return None

        def heads_pre(_m, args, i=i):
            z = args[0].view(*args[0].shape[:-1], n_head, -1)  # [1, pos, head, d_head]
            if record is not None:
                record[f"z{i}"] = z[0].clone()
            if head is not None and head[0] == i:
                z = z.clone()
                z[0, :, head[1]] = head[2]
                return (z.reshape(args[0].shape), *args[1:])
            return None
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(heads_in(layer).register_forward_pre_hook(heads_pre))
    try:
        with torch.no_grad():
            return hf(torch.tensor([ids])).logits[0, -1]
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("family", ["gpt2", *sorted(TINY_HF)])
def test_grids_on_model_folders_agree_with_transformers(folders, family):
    folder, hf = folders[family]
    model, tok = load_model(folder)
    hooks = _hooks(model)
    assert (type(model).__name__ == "GPT") == (family == "gpt2")  # a GPT-2 folder loads into our GPT
    pair = make_pair(tok, CLEAN, CORRUPTED, model.config.block_size)
    runs = run_pair(model, pair)
    answers = default_answers(runs)
    recorded: dict[str, torch.Tensor] = {}
    clean = _peer_run(hf, family, pair.clean_ids, record=recorded)
    torch.testing.assert_close(runs.clean_logits, clean, atol=ATOL, rtol=0)
    resid, heads = patching_grid(model, runs, RESID, answers), patching_grid(model, runs, HEADS, answers)
    L, H = model.config.n_layer, model.config.n_head
    for layer in range(L):
        for p in range(pair.first_diff - 1, len(pair)):
            ref = _peer_run(hf, family, pair.corrupted_ids, resid=(layer, p, recorded[f"resid{layer}"][p]))
            assert abs(float(logit_diff(ref, answers)) - float(resid.logit_diff[layer, p])) < ATOL, (layer, p)
        for h in range(H):
            ref = _peer_run(hf, family, pair.corrupted_ids, head=(layer, h, recorded[f"z{layer}"][:, h]))
            assert abs(float(logit_diff(ref, answers)) - float(heads.logit_diff[layer, h])) < ATOL, (layer, h)
    patched, _ = patched_run(model, pair.corrupted_ids, [Patch("blocks.0.hook_resid_pre")], runs.clean_act)
    reference, _ = patched_run(model, pair.clean_ids, [], runs.clean_act)
    assert torch.equal(patched, reference)  # everything patched: the clean run, exactly
    assert _hooks(model) == hooks  # nothing was left on the shared model


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
