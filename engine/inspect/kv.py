"""The key/value cache, looked at: what step-by-step generation keeps, what it costs, and why it is exact.

Generation runs the model once per new token (engine/generation/window.py). Attention at the new position
needs every earlier token's key and value in every layer, and those never change while the window holds
still: so `decode_step` keeps them (the cache) and computes only the new token's. This module shows that cache
on a real sequence:

- `replay`: the cache exactly as `ContextWindow` builds it (a prefill of the prompt, then one token per step),
  with what each step appended in every layer and head, and each cached step's logits checked against one
  full forward pass over the whole sequence (causal: its logits at position p are a full recompute of step p);
- `slid_view`: a step past the context: the window slides, every position moves, and the whole window runs
  again; beside it, what a cache that just dropped its oldest entry would have given instead;
- `bytes_per_token` and `past_bytes`: 2 x layers x KV heads x head size x bytes, and the tensors' real size;
- `time_per_token`: a measured time per new token with the cache and with a full recompute per token.

Every function only reads the model. A past is the caller's (our GPT's tuple of (k, v) per layer, or
transformers' `DynamicCache`, which `decode_step` fills in place).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

PREFILL = 1  # the step a prompt's positions were appended at: step 1 runs the whole prompt at once


def bytes_per_token(n_layer: int, n_kv_head: int, d_head: int, bytes_per_value: int) -> int:
    """What the cache holds per token: a key and a value (2) per layer per key/value head, each d_head numbers."""
    return 2 * n_layer * n_kv_head * d_head * bytes_per_value


def model_bytes_per_token(model) -> int:
    """`bytes_per_token` of a running model, at the precision of its weights (fp32 here)."""
    cfg = model.config
    return bytes_per_token(cfg.n_layer, cfg.n_kv_head, cfg.d_head, next(model.parameters()).element_size())


def past_layers(past) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (keys, values) [batch, kv_head, pos, d_head] of a past from either model class."""
    if isinstance(past, (tuple, list)):
        return [(k, v) for k, v in past]
    layers = getattr(past, "layers", None)
    if layers is None:
        raise TypeError(f"not a key/value cache Glassbox knows: {type(past).__name__}")
    return [(layer.keys, layer.values) for layer in layers]


def past_bytes(past) -> int:
    """Bytes the cache's tensors really hold."""
    return sum(t.numel() * t.element_size() for kv in past_layers(past) for t in kv)


def past_length(past) -> int:
    return past_layers(past)[0][0].shape[2]


def drop_oldest(past, n: int = 1):
    """A new past without its first `n` positions, of the same kind (the caller's past is left as it was)."""
    layers = [(k[:, :, n:].clone(), v[:, :, n:].clone()) for k, v in past_layers(past)]
    if isinstance(past, (tuple, list)):
        return tuple(layers)
    from transformers import DynamicCache  # only a transformers model hands out a DynamicCache
    return DynamicCache(ddp_cache_data=layers)


def tokens_run(n_prompt: int, step: int, block: int) -> int:
    """Tokens the model runs on for generation step `step` (1-based) of a prompt of n_prompt tokens, as
    ContextWindow does it: the prompt at step 1 (its last `block` tokens), one token while the sequence fits
    the context, the whole window once it has slid."""
    if step == PREFILL:
        return min(n_prompt, block)
    length = n_prompt + step - 1  # tokens before this step's draw
    return 1 if length <= block else block


@dataclass(frozen=True)
class Replay:
    """The cache as generation built it over `ids` (prompt + generated tokens that fit the context).

    Positions are token positions in `ids`; step s >= 2 appended position n_prompt + s - 2, step 1 the prompt.
    Positions from `start` on were run one at a time on the cache; those before it in one pass.
    """
    ids: tuple[int, ...]
    n_prompt: int
    start: int  # the first position run alone on the cache (n_prompt, unless older steps were run in one pass)
    key_norms: torch.Tensor  # [layer, kv_head, pos]: length of each cached key
    value_norms: torch.Tensor  # [layer, kv_head, pos]
    appended: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per position from start: (k, v) [layer, kv_head, d_head]
    last: tuple[torch.Tensor, torch.Tensor]  # the last position's (k, v) [layer, kv_head, d_head], however it ran
    cached_diff: tuple[float, ...]  # per position from start: max |cached logits - full forward's|
    same_top: tuple[bool, ...]  # per position from start: the same most likely token both ways
    bytes: int  # the cache's tensors at the end
    bytes_formula: int  # bytes_per_token x cached positions

    def step_of(self, pos: int) -> int:
        """The generation step that appended position `pos`."""
        return PREFILL if pos < self.n_prompt else pos - self.n_prompt + 2

    def position_of(self, step: int) -> int:
        """The position generation step `step` (>= 2) appended."""
        return self.n_prompt + step - 2

    def stepped(self, step: int) -> int | None:
        """Index into appended / cached_diff / same_top of generation step `step`, or None if that step is not
        among those run alone here (step 1, or older than `start`)."""
        pos = self.position_of(step)
        return pos - self.start if step > PREFILL and self.start <= pos < len(self.ids) else None


def _norms(past) -> tuple[torch.Tensor, torch.Tensor]:
    """([layer, kv_head, pos], same): the length of every cached key and value. A layer that keeps only its
    last positions (a sliding-window cache) is padded in front with nan: those positions are not held."""
    layers = past_layers(past)
    n = max(k.shape[2] for k, _ in layers)

    def lengths(t: torch.Tensor) -> torch.Tensor:  # [1, kv_head, pos, d_head] -> [kv_head, n]
        norms = t[0].float().norm(dim=-1).cpu()
        return torch.cat([torch.full((norms.shape[0], n - norms.shape[1]), float("nan")), norms], dim=1)
    return torch.stack([lengths(k) for k, _ in layers]), torch.stack([lengths(v) for _, v in layers])


def _last(past) -> tuple[torch.Tensor, torch.Tensor]:
    """The newest position's key and value in every layer: ([layer, kv_head, d_head], same)."""
    layers = past_layers(past)
    return (torch.stack([kv[0][0, :, -1] for kv in layers]).float().cpu(),
            torch.stack([kv[1][0, :, -1] for kv in layers]).float().cpu())


@torch.no_grad()
def full_logits(model, ids: list[int], start: int = 0) -> torch.Tensor:
    """[pos - start, vocab] float32 on the CPU: one plain forward pass over `ids`, no cache (the reference), read
    out from position `start` on (the output layer applied only there: a large vocabulary x a long text is big)."""
    device = next(model.parameters()).device
    hidden = model.final_hidden(torch.tensor([list(ids)], device=device))  # [1, pos, d_model], after the final norm
    return model.lm_head(hidden[:, start:])[0].float().cpu()


@torch.no_grad()
def replay(model, ids: list[int], n_prompt: int, start: int | None = None) -> Replay:
    """Build the cache as generation does over `ids` (at most block_size tokens): the first n_prompt tokens in
    one prefill, then each later token alone on the cache. Each cached step's logits are compared with one
    full forward pass over `ids` (the same numbers a recompute of every step would give). `start` (at least
    n_prompt) runs the tokens before it in the one prefill too, to bound the work on a long sequence."""
    ids = list(ids)
    start = n_prompt if start is None else start
    if not 1 <= n_prompt <= start <= len(ids) <= model.config.block_size:
        raise ValueError(f"need 1 <= prompt ({n_prompt}) <= start ({start}) <= tokens ({len(ids)}) <= context "
                         f"({model.config.block_size})")
    device = next(model.parameters()).device
    _, past = model.decode_step(torch.tensor([ids[:start]], device=device), None)
    reference = full_logits(model, ids, start)  # [pos - start, vocab]
    appended, diffs, same = [], [], []
    for pos in range(start, len(ids)):
        logits, past = model.decode_step(torch.tensor([[ids[pos]]], device=device), past)
        cached, full = logits[0, -1].float().cpu(), reference[pos - start]
        diffs.append(float((cached - full).abs().max()))
        same.append(int(cached.argmax()) == int(full.argmax()))
        appended.append(_last(past))
    k_norms, v_norms = _norms(past)
    return Replay(ids=tuple(ids), n_prompt=n_prompt, start=start, key_norms=k_norms, value_norms=v_norms,
                  appended=tuple(appended), last=_last(past), cached_diff=tuple(diffs), same_top=tuple(same), bytes=past_bytes(past),
                  bytes_formula=model_bytes_per_token(model) * len(ids))


@dataclass(frozen=True)
class Slid:
    """A step past the context: the window (`window` token ids) ran again as a whole."""
    window: tuple[int, ...]  # the last block_size tokens
    key_norms: torch.Tensor  # [layer, kv_head, pos] of the rebuilt cache
    value_norms: torch.Tensor
    stale_diff: float  # max |logits of a cache that dropped its oldest entry - the true window's|
    stale_same_top: bool  # whether that stale cache still picks the same most likely token
    stale_probs: tuple[float, float]  # the true top token's probability: (true window, stale cache)


@torch.no_grad()
def slid_view(model, ids: list[int]) -> Slid:
    """The step after `ids` once they exceed the context: the window `ids[-block:]` run again (what
    ContextWindow does), against the shortcut of keeping the previous window's cache minus its oldest entry and
    running only the new token at the last position. Needs len(ids) > block_size."""
    block = model.config.block_size
    if len(ids) <= block:
        raise ValueError(f"{len(ids)} tokens fit the context of {block}: the window has not slid")
    device = next(model.parameters()).device
    window = list(ids[-block:])
    logits, past = model.decode_step(torch.tensor([window], device=device), None)
    true = logits[0, -1].float().cpu()
    k_norms, v_norms = _norms(past)
    # The previous window (positions 0..block-1) as generation last cached it; drop its oldest entry and run the
    # new token at position block-1: every kept key sits one position off from where the true window has it,
    # and from layer 1 on still carries what the dropped token added to it.
    _, old = model.decode_step(torch.tensor([list(ids[-block - 1:-1])], device=device), None)
    positions = torch.tensor([[block - 1]], device=device)
    stale, _ = model.decode_step(torch.tensor([[window[-1]]], device=device), drop_oldest(old), positions)
    stale = stale[0, -1].float().cpu()
    top = int(true.argmax())
    return Slid(window=tuple(window), key_norms=k_norms, value_norms=v_norms,
                stale_diff=float((stale - true).abs().max()), stale_same_top=int(stale.argmax()) == top,
                stale_probs=(float(true.softmax(-1)[top]), float(stale.softmax(-1)[top])))


@dataclass(frozen=True)
class Timing:
    """Seconds per new token, measured here, greedy, from the same starting tokens both ways."""
    cached: tuple[float, ...]  # per new token, on the key/value cache
    recomputed: tuple[float, ...]  # per new token, one full forward pass over the whole context
    start_len: int  # tokens before the first new one

    @property
    def cached_mean(self) -> float:
        return sum(self.cached) / len(self.cached)

    @property
    def recomputed_mean(self) -> float:
        return sum(self.recomputed) / len(self.recomputed)


@torch.no_grad()
def time_per_token(model, ids: list[int], n_new: int, budget_s: float = 3.0) -> Timing:
    """Time `n_new` greedy tokens after `ids` (which must leave room in the context) with the cache, then the
    same tokens by a full forward pass over the growing context each; the recompute stops early when it has
    used `budget_s` (it is the slow one). Only the model's work is timed, not the choice of the token."""
    block = model.config.block_size
    n_new = min(n_new, block - len(ids))
    if n_new < 1 or not ids:
        raise ValueError(f"no room to generate: {len(ids)} tokens in a context of {block}")
    device = next(model.parameters()).device
    seq, cached, past = list(ids), [], None
    new = seq
    for _ in range(n_new):
        t0 = time.perf_counter()
        logits, past = model.decode_step(torch.tensor([new], device=device), past)
        token = int(logits[0, -1].argmax())  # .argmax reads the result: the step has finished
        cached.append(time.perf_counter() - t0)
        seq.append(token)
        new = [token]
    recomputed, spent = [], 0.0
    for i in range(n_new):
        t0 = time.perf_counter()
        logits, _ = model(torch.tensor([seq[:len(ids) + i]], device=device))
        int(logits[0, -1].argmax())
        recomputed.append(time.perf_counter() - t0)
        spent += recomputed[-1]
        if spent > budget_s:
            break
    # The first cached step is the prefill of the whole prompt: it costs what a recompute costs, and is timed.
    return Timing(cached=tuple(cached), recomputed=tuple(recomputed), start_len=len(ids))
