"""Generation on a key/value cache (GPT.decode_step, engine/generation/window.py and decode.py).

- `GPT.decode_step` computes what the full forward computes, for a prefill, chunks and single tokens, with
  left padding; it never changes the model or the caller's past; positions past the context are refused.
- `generate_steps` gives the same tokens as the old loop that recomputed the whole context for every token
  (kept below as the reference), greedy and seeded, with logits equal to the full forward to 1e-5 at every
  step, for a prompt that fits and one that slides; once the window slides it re-runs it once per step.
- Generation uses only the contract: a stand-in model class around transformers' `GPT2LMHeadModel`, offering
  `decode_step` on transformers' own cache and nothing else of ours, generates through every path, and its
  left-padded batches compute what each prompt computes alone.
"""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

from engine import GPT, GPTConfig, SamplingSettings, generate, generate_steps, sampling_stages
from engine.generation.decode import generate_batch
from engine.generation.sampling_lab import Run, advance
from engine.inspect.surprise import score_tokens
from engine_fixtures import VOCAB, tiny_model

BLOCK = 16  # tiny_model's context
GREEDY = SamplingSettings(temperature=0)
SAMPLED = SamplingSettings(temperature=1.3, top_k=50, top_p=0.95)


def random_ids(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, VOCAB, (batch, n), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def full_logits(model, ids: list[int]) -> torch.Tensor:
    """The reference: one plain forward over the whole context, the logits after its last token. [vocab]"""
    return model(torch.tensor([ids]))[0][0, -1]


@torch.no_grad()
def recompute_steps(model, ids: list[int], n_new: int, s: SamplingSettings, generator=None):
    """The old generate_steps, which ran the whole context for every new token: (token ids, logits per step)."""
    ids, out, logits = list(ids), [], []
    for _ in range(n_new):
        row = full_logits(model, ids[-model.config.block_size:])
        stages = sampling_stages(row, s)
        tok = int(stages.logits.argmax()) if s.greedy else int(
            torch.multinomial(stages.probs_after, 1, generator=generator))
        out.append(tok)
        logits.append(row)
        ids.append(tok)
    return out, logits


# --- GPT.decode_step -------------------------------------------------------------------------------------------

def test_decode_step_in_pieces_equals_the_full_forward():
    model = tiny_model(seed=0)
    ids = random_ids(2, BLOCK)
    with torch.no_grad():
        full, _ = model(ids)
    torch.testing.assert_close(model.decode_step(ids)[0], full, atol=0, rtol=0)  # a prefill is the forward
    first, past = model.decode_step(ids[:, :5])
    pieces = [first]
    for lo, hi in ((5, 9), (9, 10), (10, 11), (11, BLOCK)):  # a chunk, single tokens, the rest
        logits, past = model.decode_step(ids[:, lo:hi], past)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert len(past) == model.config.n_layer and past[0][0].shape == (2, 2, BLOCK, 16)


def test_decode_step_with_left_padding_computes_each_row_alone():
    model = tiny_model(seed=1)
    rows = [random_ids(1, n, seed=n)[0].tolist() for n in (3, 7, 5)]
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    pad = torch.tensor([width - len(r) for r in rows])
    cols = torch.arange(width)
    real = cols[None] >= pad[:, None]
    positions = (cols[None] - pad[:, None]).clamp(min=0)
    logits, past = model.decode_step(ids, None, positions, real)
    assert torch.isfinite(logits).all()  # padding queries see themselves: no empty softmax row, no NaN
    nxt = torch.tensor([[11, 12], [13, 14], [15, 16]])  # two new tokens per row, causal between them
    step, _ = model.decode_step(nxt, past, torch.stack([torch.tensor([len(r), len(r) + 1]) for r in rows]),
                                torch.cat([real, torch.ones(3, 2, dtype=torch.bool)], 1))
    with torch.no_grad():
        for i, r in enumerate(rows):
            alone, _ = model(torch.tensor([r + nxt[i].tolist()]))
            torch.testing.assert_close(logits[i, pad[i]:], alone[0, :len(r)], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(step[i], alone[0, len(r):], atol=1e-5, rtol=1e-5)


def test_decode_step_changes_neither_the_model_nor_the_callers_past():
    model = tiny_model(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attrs = set(vars(model)) | {k for m in model.modules() for k in vars(m)}
    ids = random_ids(1, 8)
    _, past = model.decode_step(ids[:, :6])
    kept = [(k.clone(), v.clone()) for k, v in past]
    a, _ = model.decode_step(ids[:, 6:7], past)
    b, _ = model.decode_step(ids[:, 7:8], past)  # another branch from the same past
    for (k, v), (k0, v0) in zip(past, kept):
        assert torch.equal(k, k0) and torch.equal(v, v0)
    torch.testing.assert_close(b[0, -1], full_logits(model, ids[0, :6].tolist() + [int(ids[0, 7])]),
                               atol=1e-5, rtol=1e-5)
    assert not torch.equal(a, b)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert set(vars(model)) | {k for m in model.modules() for k in vars(m)} == attrs


def test_two_sessions_decoding_at_once_on_one_model_do_not_interfere():
    model = tiny_model(seed=0)
    prompts = {"a": [1, 2, 3], "b": [9, 8, 7, 6, 5]}
    alone = {k: generate(model, p, 10, SAMPLED, torch.Generator().manual_seed(3)) for k, p in prompts.items()}
    got: dict[str, list[int]] = {}

    def session(key: str) -> None:
        got[key] = generate(model, prompts[key], 10, SAMPLED, torch.Generator().manual_seed(3))

    threads = [threading.Thread(target=session, args=(k,)) for k in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone


def test_positions_past_the_context_are_refused():
    model = tiny_model(seed=0)
    with pytest.raises(ValueError, match="context of 16"):
        model.decode_step(torch.tensor([[1]]), positions=torch.tensor([[BLOCK]]))
    with pytest.raises(ValueError, match="context of 16"):
        model.decode_step(torch.tensor([[1]]), positions=torch.tensor([[-1]]))
    _, past = model.decode_step(random_ids(1, BLOCK))
    with pytest.raises(ValueError, match="past the context of 16"):
        model.decode_step(torch.tensor([[1]]), past)  # default positions continue at 16
    with pytest.raises(ValueError, match="past the context of 16"):
        model.decode_step(random_ids(1, BLOCK + 1))
    with pytest.raises(ValueError, match="key_mask"):
        model.decode_step(torch.tensor([[1, 2]]), key_mask=torch.ones(1, 3, dtype=torch.bool))


# --- generate_steps against the old recompute loop ----------------------------------------------------------

@pytest.mark.parametrize("n_prompt,n_new", [(4, 9), (BLOCK - 3, 10), (BLOCK + 5, 4)],
                         ids=["fits", "slides", "starts-full"])
@pytest.mark.parametrize("s", [GREEDY, SAMPLED], ids=["greedy", "seeded"])
def test_cached_generation_matches_recomputing_the_context(n_prompt, n_new, s):
    model = tiny_model(seed=2)
    prompt = random_ids(1, n_prompt, seed=n_prompt)[0].tolist()
    want, want_logits = recompute_steps(model, prompt, n_new, s, torch.Generator().manual_seed(5))
    steps = list(generate_steps(model, prompt, n_new, s, torch.Generator().manual_seed(5)))
    assert [st.token_id for st in steps] == want
    ids = list(prompt)
    for step, ref in zip(steps, want_logits):
        assert step.context == ids[-BLOCK:]
        torch.testing.assert_close(step.stages.logits, ref, atol=1e-5, rtol=1e-5)
        ids.append(step.token_id)
    if n_prompt + n_new > BLOCK:
        assert len(steps[-1].context) == BLOCK  # the window did slide


def counting(model, calls: list[int]):
    """`model` seen through the contract alone, recording how many new tokens each decode_step call ran."""
    def decode_step(ids, past=None, positions=None, key_mask=None):
        calls.append(ids.shape[1])
        return model.decode_step(ids, past, positions, key_mask)
    return SimpleNamespace(decode_step=decode_step, config=model.config, parameters=model.parameters)


def test_one_token_per_step_until_the_window_slides_then_one_prefill_per_step():
    model, calls = tiny_model(seed=0), []
    list(generate_steps(counting(model, calls), list(range(1, BLOCK - 2)), 8, GREEDY))
    assert calls == [BLOCK - 3, 1, 1, 1, BLOCK, BLOCK, BLOCK, BLOCK]
    calls.clear()
    advance(counting(model, calls), Run("k", (0, 3, 4), seed=1), 5, SAMPLED)  # the page's Run button
    assert calls == [3, 1, 1, 1, 1]


# --- a second model class, through the contract only ---------------------------------------------------------

class GPT2StandIn:
    """A model class that is not ours: transformers' GPT2LMHeadModel behind the generation contract, on
    transformers' own cache, with position ids and an attention mask for left padding. It has nothing else
    (no `transformer`, no `forward`, not callable), so generation that reached past the contract would fail."""

    def __init__(self, hf: GPT2LMHeadModel):
        self._hf = hf
        self.config = SimpleNamespace(block_size=hf.config.n_positions, vocab_size=hf.config.vocab_size)

    def parameters(self):
        return self._hf.parameters()

    @torch.no_grad()
    def decode_step(self, ids, past=None, positions=None, key_mask=None):
        B, T = ids.shape
        n_past = 0 if past is None else past[0][0].size(2)
        if positions is None:
            positions = torch.arange(n_past, n_past + T).expand(B, T)
        if int(positions.max()) >= self.config.block_size:
            raise ValueError(f"positions past the context of {self.config.block_size}")
        mask = torch.ones(B, n_past + T, dtype=torch.long) if key_mask is None else key_mask.long()
        # The past handed out is a tuple of tensors; a fresh DynamicCache around it each call, so the
        # caller's past is never written to (transformers' cache grows in place).
        cache = DynamicCache(ddp_cache_data=past) if past is not None else DynamicCache()
        out = self._hf(input_ids=ids, cache=cache, position_ids=positions, attention_mask=mask, use_cache=True)
        return out.logits, tuple((layer.keys, layer.values) for layer in out.cache.layers)


@pytest.fixture(scope="module")
def pair() -> tuple[GPT2StandIn, GPT]:
    """The stand-in and our GPT on the same random weights (perturbed so patterns are sharp)."""
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2 if "c_attn" in name else 0.1)
    ours = GPT(GPTConfig(block_size=32, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=32))
    ours.load_state_dict(hf.state_dict())
    return GPT2StandIn(hf), ours.eval()


def recording(model, log: list):
    """`model` through the contract, keeping every call's (ids, positions, key_mask, logits)."""
    def decode_step(ids, past=None, positions=None, key_mask=None):
        logits, new_past = model.decode_step(ids, past, positions, key_mask)
        log.append((ids, positions, key_mask, logits))
        return logits, new_past
    return SimpleNamespace(decode_step=decode_step, config=model.config, parameters=model.parameters)


@pytest.mark.parametrize("s", [GREEDY, SAMPLED], ids=["greedy", "seeded"])
def test_a_left_padded_batch_on_the_stand_in_computes_each_prompt_alone(pair, s):
    standin, ours = pair
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11, 12]]
    log: list = []
    out = generate_batch(recording(standin, log), prompts, 10, s, torch.Generator().manual_seed(7))
    assert log[0][2] is not None and not bool(log[0][2].all())  # it was padded and masked
    # Every step's logits for every row are what the row alone, unpadded, gets from one full pass.
    for step, (_, _, _, logits) in enumerate(log):
        for row, p in enumerate(prompts):
            alone, _ = standin.decode_step(torch.tensor([p + out[row][:step]]))
            torch.testing.assert_close(logits[row, -1], alone[0, -1], atol=1e-5, rtol=1e-5)
    # Our GPT on the same weights draws the same tokens from the same generator.
    assert out == generate_batch(ours, prompts, 10, s, torch.Generator().manual_seed(7))
    if s.greedy:
        assert out == [generate_batch(standin, [p], 10, s)[0] for p in prompts]


def test_every_generation_path_runs_on_the_stand_in(pair):
    standin, ours = pair
    prompt = [1, 5, 9, 13, 17]
    # 40 new tokens: the 32-token window slides, so the stand-in's cache is dropped and refilled too.
    mine = [st.token_id for st in generate_steps(ours, prompt, 40, SAMPLED, torch.Generator().manual_seed(1))]
    theirs = [st.token_id for st in generate_steps(standin, prompt, 40, SAMPLED, torch.Generator().manual_seed(1))]
    assert mine == theirs
    assert generate(standin, prompt, 12, GREEDY) == generate(ours, prompt, 12, GREEDY)
    run = Run("k", tuple(prompt), seed=4)
    assert advance(standin, run, 6, SAMPLED).ids == advance(ours, run, 6, SAMPLED).ids
    ids = random_ids(1, 50, seed=9)[0].tolist()
    torch.testing.assert_close(score_tokens(standin, ids).nll, score_tokens(ours, ids).nll, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="exceeds the context"):
        generate_batch(standin, [list(range(1, 34))], 3, GREEDY)
