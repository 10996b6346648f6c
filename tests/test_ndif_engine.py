"""The NDIF request code, run by nnsight's own local execution on tiny random models, against the engine's own
Trace (GPT-2 on our GPT, Llama in transformers with Glassbox's recorder) and against transformers' eager
attention (GPT-J, which Glassbox does not run itself): patterns rebuilt from q and k (grouped-query heads,
Llama-3.1's rope scaling, GPT-J's partial rotary), the lens, logits, the top N and the residual, to 1e-4.
And what a request weighs before it is sent, and what an answer must be to be kept."""
from __future__ import annotations

import pytest
import torch

from engine import run_trace
from engine.inspect.lens import logit_lens
from engine.model.hf import load_model
from engine.remote import RemoteModel, RequestError, TraceRequest, run_here
from engine.remote.model import read_hf_config, read_tokenizer
from engine.remote.request import answer_bytes, longest_fitting, refusal
from engine.remote.selective import BadAnswer, NotRecorded, from_answer
from ndif_fake import write_tiny

TEXT = ("Once upon a time, there was a little cat named Tom. Tom liked to play with a red ball. "
        "One day the ball rolled under the bed.")  # past 16 tokens: where Llama-3.1's rope scaling matters
TOL = 1e-4


@pytest.fixture(scope="module", params=["gpt2", "llama", "gptj"])
def tiny(request, tmp_path_factory):
    """(family, folder, RemoteModel built from the folder's config and tokenizer, a local nnsight model)."""
    from nnsight.modeling.transformers import TransformersModel
    folder = tmp_path_factory.mktemp("ndif") / f"tiny--{request.param}"
    write_tiny(folder, request.param)
    remote = RemoteModel(f"tiny/{request.param}", None, read_hf_config(folder), read_tokenizer(folder))
    local = TransformersModel(str(folder), task="text-generation", tokenizer=read_tokenizer(folder))
    return request.param, folder, remote, local


def eager(folder, ids):
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)


def test_every_layer_s_rebuilt_pattern_equals_eager_attention(tiny):
    family, folder, remote, local = tiny
    ref = None
    for layer in range(remote.config.n_layer):
        sel = run_here(remote, local, TEXT, TraceRequest(layer=layer))
        ref = ref or eager(folder, sel.ids)
        pattern = sel.act[f"blocks.{layer}.attn.hook_pattern"]  # [head, q, k]
        assert pattern.shape == (remote.config.n_head, len(sel), len(sel))
        assert torch.allclose(pattern, ref.attentions[layer][0], atol=TOL), (family, layer)
        assert torch.allclose(pattern.sum(-1), torch.ones(pattern.shape[:2]), atol=1e-5)
        assert pattern.triu(1).abs().max() == 0, "the causal mask"


def test_the_selective_trace_equals_the_engine_s_trace(tiny):
    """Patterns, lens top-k and its final token's probability, whole logits, the top N and entropy, the residual."""
    family, folder, remote, local = tiny
    if family == "gptj":
        pytest.skip("Glassbox does not run GPT-J itself: its parity is with transformers (the test above)")
    model, tok = load_model(folder)
    trace = run_trace(model, tok, TEXT)
    at = (3, 17, len(trace) - 1)
    sel = run_here(remote, local, TEXT, TraceRequest(layer=1, lens_at=at, logits_at=at[:2], resid_at=at[:1]))
    assert sel.ids == trace.ids and sel.tokens == trace.tokens and sel.dtype == torch.float32
    assert torch.allclose(sel.pattern(1, 2), trace.pattern(1, 2), atol=TOL)
    for p in at[:2]:
        assert torch.allclose(sel.final_logits(p), trace.logits[p], atol=TOL)
    probs = trace.logits.softmax(-1)
    top = probs.topk(sel.request.top_n)
    assert torch.equal(sel.top_ids, top.indices.int()) and torch.allclose(sel.top_probs, top.values, atol=TOL)
    entropy = -(probs * probs.clamp_min(1e-30).log2()).sum(-1)
    assert torch.allclose(sel.entropy, entropy, atol=TOL)
    lens = logit_lens(model, trace)
    stages = [0] + [2 * i + 2 for i in range(trace.config.n_layer)]  # embeddings, then after each layer's MLP
    cols = list(at)
    assert torch.equal(sel.lens_ids, lens.top_ids[stages][:, cols].int())
    assert torch.allclose(sel.lens_probs, lens.top_probs[stages][:, cols], atol=TOL)
    assert torch.allclose(sel.lens_target, lens.target_probs[stages][:, cols], atol=TOL)
    resid = [trace.act["blocks.0.hook_resid_pre"][at[0]]]
    resid += [trace.act[f"blocks.{i}.hook_resid_post"][at[0]] for i in range(trace.config.n_layer)]
    assert torch.allclose(sel.resid[:, 0], torch.stack(resid), atol=TOL)


def test_what_was_not_recorded_is_asked_for_not_made_up(tiny):
    _, _, remote, local = tiny
    sel = run_here(remote, local, "The cat sat.", TraceRequest(layer=0, logits_at=(1,)))
    with pytest.raises(NotRecorded, match=r"TraceRequest\(layer=1\)"):
        sel.pattern(1, 0)
    with pytest.raises(NotRecorded, match=r"logits_at=\(2,\)"):
        sel.final_logits(2)
    with pytest.raises(NotRecorded):
        sel.lens_column(0)


def test_llama_s_rope_scaling_is_applied_exactly():
    """Rotating q and k by plain rope (the scaling ignored, as NDIF's own workshop tool does) gives other patterns
    past the original context; the job's, from the model's own rotary module, gives eager attention's."""
    import tempfile
    from pathlib import Path

    import transformers

    from engine.remote import kernels
    folder = Path(tempfile.mkdtemp()) / "tiny--llama"
    cfg = write_tiny(folder, "llama")
    theta = cfg.to_dict()["rope_parameters"]["rope_theta"]
    plain = transformers.LlamaConfig(**{**cfg.to_dict(), "rope_parameters": {"rope_type": "default",
                                                                             "rope_theta": theta}})
    rot = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(plain)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager").eval()
    ids = torch.arange(1, 41)[None]
    with torch.no_grad():
        out = hf(ids, output_attentions=True, output_hidden_states=True)
        attn = hf.model.layers[0].self_attn
        h = hf.model.layers[0].input_layernorm(out.hidden_states[0])
        q, k = kernels.split_heads(attn.q_proj(h), 8), kernels.split_heads(attn.k_proj(h), 8)
        cos, sin = rot(h, torch.arange(40)[None])
        unscaled = kernels.causal_pattern(kernels.rope_halves(q, cos, sin), kernels.rope_halves(k, cos, sin), 8 ** -0.5)
        cos, sin = hf.model.rotary_emb(h, torch.arange(40)[None])
        scaled = kernels.causal_pattern(kernels.rope_halves(q, cos, sin), kernels.rope_halves(k, cos, sin), 8 ** -0.5)
    assert torch.allclose(scaled, out.attentions[0][0], atol=TOL)
    assert (unscaled - out.attentions[0][0]).abs().max() > 1e-3, "the test must be able to tell them apart"


# --- what a request weighs --------------------------------------------------------------------------------

LLAMA_405B = dict(n_layer=126, n_head=128, d_model=16384, vocab=128256)


def test_one_layer_of_405b_at_256_tokens_is_over_16_mb_and_the_length_that_fits_is_said():
    req, cap = TraceRequest(layer=40), 16 << 20
    assert answer_bytes(req, 256, **LLAMA_405B) > cap
    fits = longest_fitting(req, cap, **LLAMA_405B)
    assert answer_bytes(req, fits, **LLAMA_405B) <= cap < answer_bytes(req, fits + 1, **LLAMA_405B)
    why = refusal(req, 256, cap, "meta-llama/Llama-3.1-405B", **LLAMA_405B)
    assert why.startswith("At these 256 tokens, one layer's 128 heads of meta-llama/Llama-3.1-405B would come back")
    assert f"shorten the text to about {fits - 1:,} tokens" in why and "\n" not in why
    assert refusal(TraceRequest(lens_at=(255,), logits_at=(255,)), 256, cap, "x", **LLAMA_405B) is None


def test_a_request_for_what_does_not_exist_is_one_sentence():
    for req, match in ((TraceRequest(layer=9), "layers 0 to 1"), (TraceRequest(lens_at=(30,)), "positions 0 to 9"),
                       (TraceRequest(logits_at=tuple(range(9))), "at most 8 positions"),
                       (TraceRequest(top_n=0), "top_n must be")):
        with pytest.raises(RequestError, match=match):
            req.check(n_layer=2, n_pos=10, vocab=320)


def test_an_answer_that_is_not_what_was_asked_is_refused(tiny):
    _, _, remote, local = tiny
    req = TraceRequest(layer=0)
    sel = run_here(remote, local, "The cat sat.", req)
    good = {"pattern": sel.act["blocks.0.attn.hook_pattern"], "top_ids": sel.top_ids, "top_probs": sel.top_probs,
            "entropy": sel.entropy}
    kw = dict(text=sel.text, ids=sel.ids, tokens=sel.tokens, offsets=sel.offsets, config=sel.config, request=req,
              seconds=0.1, where="test")
    assert from_answer(dict(good), **kw).pattern(0, 0).shape == (len(sel), len(sel))
    for bad in ({**good, "pattern": good["pattern"][:, :2]}, {k: v for k, v in good.items() if k != "entropy"},
                {**good, "top_ids": good["top_ids"].float()},
                {**good, "top_ids": good["top_ids"] + remote.config.vocab_size}):
        with pytest.raises(BadAnswer):
            from_answer(bad, **kw)
