"""engine.inspect.lens, engine.inspect.neurons and engine.inspect.params on tiny random GPTs and hand-made tensors."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine import GPT, GPTConfig, run_trace
from engine.inspect.lens import contributions, logit_lens, part_outputs, stage_names, stage_residuals, unembed
from engine.inspect.neurons import (NeuronAtlas, ReferenceSet, build_atlas, firing_fraction, generate_reference_texts,
                                    layer_strength, rank_neurons, tokenize_reference)
from engine.inspect.params import KNOWN_MODELS, compare, param_breakdown, part_totals
from engine_fixtures import VOCAB, tiny_model, tokenizer

TEXT = "Once upon a time, Tom liked to play with a red ball."


@pytest.fixture(scope="module")
def model() -> GPT:
    m = tiny_model(seed=3, block_size=32)
    # Random init leaves norms at 1 and biases at 0: perturb them so the final norm's bias and scale matter.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "ln_" in n:
                p.add_(0.3 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def trace(model):
    return run_trace(model, tokenizer(), TEXT)


# --- logit lens -----------------------------------------------------------------------------------------

def test_last_stage_is_the_models_logits_exactly(model, trace) -> None:
    last = stage_residuals(trace)[-1]
    assert torch.equal(unembed(model, last), trace.logits)  # bit for bit, not close
    lens = logit_lens(model, trace)
    top = trace.logits.softmax(-1).topk(lens.top_ids.shape[-1], dim=-1)
    assert torch.equal(lens.top_ids[-1], top.indices)
    assert torch.equal(lens.top_probs[-1], top.values)
    # The final prediction is the last stage's top token, with rank 0 there.
    assert torch.equal(lens.target_ids, trace.logits.argmax(-1))
    assert torch.equal(lens.target_probs[-1], top.values[:, 0])
    assert (lens.target_ranks[-1] == 0).all()


def test_stages_are_the_residual_stream_in_order(model, trace) -> None:
    names = stage_names(model.config.n_layer)
    assert names == ["embeddings", "after attention 0", "after MLP 0", "after attention 1", "after MLP 1"]
    stages = stage_residuals(trace)
    assert stages.shape == (len(names), len(trace), model.config.n_embd)
    torch.testing.assert_close(stages[0], trace.act["hook_embed"] + trace.act["hook_pos_embed"])
    torch.testing.assert_close(stages[1], stages[0] + trace.act["blocks.0.hook_attn_out"])
    torch.testing.assert_close(stages[2], stages[1] + trace.act["blocks.0.hook_mlp_out"])


def test_intermediate_stage_matches_a_hand_computed_lens(model, trace) -> None:
    resid = trace.act["blocks.0.hook_resid_mid"]  # [pos, d_model]
    ln = model.transformer.ln_f
    mean, var = resid.mean(-1, keepdim=True), resid.var(-1, unbiased=False, keepdim=True)
    by_hand = ((resid - mean) / (var + ln.eps).sqrt() * ln.weight + ln.bias) @ model.transformer.wte.weight.T
    torch.testing.assert_close(unembed(model, resid), by_hand.detach(), atol=1e-5, rtol=1e-5)
    lens = logit_lens(model, trace)
    probs = by_hand.detach().softmax(-1)
    target = lens.target_ids
    torch.testing.assert_close(lens.target_probs[1], probs.gather(-1, target[:, None])[:, 0])
    ranks = (probs > probs.gather(-1, target[:, None])).sum(-1)
    assert torch.equal(lens.target_ranks[1], ranks)


def test_lens_matches_transformers_hidden_states(model, trace) -> None:
    """Parity: transformers' hidden states after each block, put through its own ln_f and lm_head."""
    cfg = model.config
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                                    n_layer=cfg.n_layer, n_head=cfg.n_head, attn_implementation="eager")).eval()
    hf.load_state_dict(model.state_dict())
    with torch.no_grad():
        out = hf(torch.tensor([trace.ids]), output_hidden_states=True)
        theirs = [hf.lm_head(hf.transformer.ln_f(h))[0].softmax(-1) for h in out.hidden_states[:-1]]
    lens = logit_lens(model, trace)
    # hidden_states[i] is the stream entering block i: our "embeddings" and "after MLP i-1" stages.
    ours = [0] + [2 * i + 2 for i in range(cfg.n_layer - 1)]
    for h, s in zip(theirs, ours):
        torch.testing.assert_close(h.gather(-1, lens.target_ids[:, None])[:, 0], lens.target_probs[s],
                                   atol=1e-5, rtol=1e-4)


# --- residual contributions -----------------------------------------------------------------------------

def test_contributions_add_up_to_the_logit(model, trace) -> None:
    c = contributions(model, trace)
    n_parts = 2 + 2 * model.config.n_layer
    assert len(c.parts) == n_parts and c.direct.shape == c.norms.shape == (n_parts, len(trace))
    torch.testing.assert_close(c.direct.sum(0) + c.bias, c.target_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(c.target_logits, trace.logits.gather(-1, c.target_ids[:, None])[:, 0])
    torch.testing.assert_close(part_outputs(trace).sum(0), trace.act["blocks.1.hook_resid_post"])
    torch.testing.assert_close(c.norms[3], trace.act["blocks.0.hook_mlp_out"].norm(dim=-1))
    assert c.bias.abs().sum() > 0  # the perturbed final norm has a bias that matters


# --- neurons --------------------------------------------------------------------------------------------

def test_rank_neurons_on_a_hand_made_tensor() -> None:
    post = torch.tensor([[9.0, 0.0, 1.0, -0.1],  # position 0: a start marker with an outsized activation
                         [0.5, 2.0, 1.0, -0.1],
                         [0.1, -0.1, 1.5, 3.0]])  # [pos, d_mlp]
    idx, scores = rank_neurons(post, 4, "max")
    assert idx.tolist() == [0, 3, 1, 2] and scores.tolist() == [9.0, 3.0, 2.0, 1.5]
    idx, _ = rank_neurons(post, 2, "max", skip_first=True)
    assert idx.tolist() == [3, 1]
    idx, scores = rank_neurons(post, 4, "mean", skip_first=True)
    assert idx.tolist() == [3, 2, 1, 0]
    torch.testing.assert_close(scores, torch.tensor([1.45, 1.25, 0.95, 0.3]))
    assert rank_neurons(post, 99)[0].numel() == 4  # k larger than the layer: every neuron
    tied = torch.tensor([[1.0, 1.0, 2.0]])
    assert rank_neurons(tied, 3)[0].tolist() == [2, 0, 1]  # ties keep the lower index first
    with pytest.raises(ValueError):
        rank_neurons(post, 2, "median")


def test_firing_fraction_and_layer_strength(model, trace) -> None:
    post = torch.tensor([[1.0, 0.0, -0.1, 2.0], [0.0, 0.0, 0.0, 0.0]])
    assert firing_fraction(post).tolist() == [0.5, 0.0]
    for metric in ("out_norm", "firing", "mean"):
        s = layer_strength(trace, metric)
        assert s.shape == (model.config.n_layer, len(trace))
    torch.testing.assert_close(layer_strength(trace, "out_norm")[1], trace.act["blocks.1.hook_mlp_out"].norm(dim=-1))
    with pytest.raises(ValueError):
        layer_strength(trace, "loudness")


def _reference(docs: list[list[int]]) -> ReferenceSet:
    return ReferenceSet(prompts=("p",) * len(docs), texts=("t",) * len(docs), ids=tuple(map(tuple, docs)),
                        tokens=tuple(tuple(f"<{i}>" for i in d) for d in docs))


def test_atlas_finds_the_peaks_a_traced_run_sees(model) -> None:
    tok = tokenizer()
    docs = [[0] + tok.encode(t) for t in ("Tom was sad. The ball rolled under the bed.",
                                          "The sun was warm and the sky was blue.",
                                          "His friend the dog helped him.")]
    atlas = build_atlas(model, _reference(docs), k=2, batch=2, before=3, after=1)  # two batches, padding
    layer, d_mlp = 1, model.config.d_mlp
    per_doc = [model.run_with_cache(torch.tensor([d]))[1][f"blocks.{layer}.mlp.hook_post"][0, 1:] for d in docs]
    for n in (0, 7, d_mlp - 1):
        peaks = torch.tensor([float(p[:, n].max()) for p in per_doc])
        best = peaks.argsort(descending=True)[:2]
        assert atlas.top_doc[layer, n].tolist() == best.tolist()
        torch.testing.assert_close(atlas.top_values[layer, n], peaks[best])
        ex = atlas.examples(layer, n)[0]
        doc = int(best[0])
        assert ex.pos == int(per_doc[doc][:, n].argmax()) + 1 and ex.tokens[ex.peak] == f"<{docs[doc][ex.pos]}>"
        assert ex.acts[ex.peak] == pytest.approx(ex.value)
        assert len(ex.tokens) == len(ex.acts) <= 3 + 1 + 1 and "<0>" not in ex.tokens[:ex.peak]
    all_post = torch.cat([p for p in per_doc])  # [tokens, d_mlp], start markers left out
    torch.testing.assert_close(atlas.firing[layer], (all_post > 0).float().mean(0))


def test_atlas_in_two_passes_equals_one(model) -> None:
    """A model whose reference activations exceed the memory cap gets the same atlas from two passes."""
    tok = tokenizer()
    docs = [[0] + tok.encode(t) for t in ("Tom was sad. The ball rolled under the bed.",
                                          "The sun was warm and the sky was blue.", "His friend the dog helped him.")]
    one = build_atlas(model, _reference(docs), k=2, batch=2, before=3, after=1)
    two = build_atlas(model, _reference(docs), k=2, batch=2, before=3, after=1, max_bytes=0)
    for name in ("top_values", "top_doc", "top_pos", "firing"):
        assert torch.equal(getattr(one, name), getattr(two, name)), name
    torch.testing.assert_close(one.windows, two.windows, equal_nan=True, atol=0, rtol=0)


def test_atlas_windows_on_a_hand_made_model_output() -> None:
    """Windows are read around the peak and marked nan off the text (a one-document set, positions known)."""
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=16, vocab_size=VOCAB, n_layer=1, n_head=1, n_embd=8)).eval()
    atlas = build_atlas(m, _reference([[0, 5, 6, 7]]), k=1, before=4, after=2)
    assert isinstance(atlas, NeuronAtlas) and atlas.windows.shape == (1, 32, 1, 7)
    pos = int(atlas.top_pos[0, 0, 0])
    w = atlas.windows[0, 0, 0]
    assert w[4] == atlas.top_values[0, 0, 0]
    for off in range(-4, 3):
        assert torch.isnan(w[4 + off]) == (not 1 <= pos + off < 4)


def test_reference_texts_are_reproducible() -> None:
    tok = tokenizer()
    m = tiny_model(seed=1)
    prompts = ("Tom liked", "The sun")
    a = generate_reference_texts(m, tok, prompts, n_tokens=6, seed=5)
    assert a == generate_reference_texts(m, tok, prompts, n_tokens=6, seed=5)
    assert len(a) == 2 and a[0].startswith("Tom liked") and a[1].startswith("The sun")
    ref = tokenize_reference(a, tok, block_size=8, prompts=prompts)
    assert all(len(d) <= 8 and d[0] == 0 for d in ref.ids)
    assert ref.n_tokens == sum(len(d) - 1 for d in ref.ids)


# --- parameters -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [dict(), dict(n_layer=3, n_embd=24, n_head=3)])
def test_param_breakdown_sums_to_the_model(fields) -> None:
    m = tiny_model(**fields)
    groups = param_breakdown(m)
    assert sum(g.count for g in groups) == m.num_params() == m.config.n_params()
    totals = part_totals(groups)
    d, L = m.config.n_embd, m.config.n_layer
    assert totals["MLP"] == L * (d * 4 * d + 4 * d + 4 * d * d + d)
    assert totals["Attention"] == L * (d * 3 * d + 3 * d + d * d + d)
    assert totals["Embeddings"] == m.config.vocab_size * d + m.config.block_size * d
    assert totals["Final norm"] == 2 * d and "Other" not in totals and "Output layer" not in totals
    assert [g.layer for g in groups if g.part == "MLP"] == list(range(L))


def test_comparison_with_known_models() -> None:
    names = {m.name for m in KNOWN_MODELS}
    assert {"GPT-2 small", "GPT-2 XL", "GPT-3", "Llama 3 8B", "Llama 3 70B"} <= names
    gpt2 = next(m for m in KNOWN_MODELS if m.name == "GPT-2 small")
    # The GPT-2 small count is what the same architecture gives at GPT-2's size.
    assert gpt2.params == GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768).n_params()
    ratios = dict((m.name, r) for m, r in compare(1_000_000))
    assert ratios["GPT-3"] == 175_000
    with pytest.raises(ValueError):
        compare(0)


# --- batched generation with a key/value cache ----------------------------------------------------------

def test_batched_cached_generation_matches_the_plain_forward(model) -> None:
    from engine import SamplingSettings, generate
    from engine.generation.decode import generate_batch
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]]
    greedy = SamplingSettings(temperature=0)
    ours = generate_batch(model, prompts, 8, greedy)
    assert ours == [generate(model, p, 8, greedy) for p in prompts]  # the same tokens as one at a time
    # The logits themselves, with left padding and a cache: the prefill of the padded batch...
    width = 5
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    pad = torch.tensor([width - len(p) for p in prompts])
    cols = torch.arange(width)
    real = cols[None] >= pad[:, None]
    with torch.no_grad():
        logits, past = model.decode_step(ids, None, (cols[None] - pad[:, None]).clamp(min=0), real)
        for row, p in enumerate(prompts):
            alone, _ = model(torch.tensor([p]))
            torch.testing.assert_close(logits[row, pad[row]:], alone[0], atol=1e-5, rtol=1e-5)
        # ...and one cached step on top of it.
        nxt = torch.tensor([[11], [12], [13]])
        step, _ = model.decode_step(nxt, past, torch.tensor([[len(p)] for p in prompts]),
                                    torch.cat([real, torch.ones(3, 1, dtype=torch.bool)], 1))
        for row, p in enumerate(prompts):
            alone, _ = model(torch.tensor([p + [11 + row]]))
            torch.testing.assert_close(step[row, 0], alone[0, -1], atol=1e-5, rtol=1e-5)


def test_batched_generation_stops_and_respects_the_context(model) -> None:
    from engine import SamplingSettings
    from engine.generation.decode import generate_batch
    s = SamplingSettings(temperature=1.0)
    a = generate_batch(model, [[1, 2], [3]], 50, s, torch.Generator().manual_seed(0))
    assert a == generate_batch(model, [[1, 2], [3]], 50, s, torch.Generator().manual_seed(0))
    assert all(len(row) <= model.config.block_size - 2 for row in a)  # never past the context
    first = a[0][0]
    stopped = generate_batch(model, [[1, 2], [3]], 50, s, torch.Generator().manual_seed(0), stop_id=first)
    assert stopped[0] == []
    with pytest.raises(ValueError):
        generate_batch(model, [[]], 3, s)
