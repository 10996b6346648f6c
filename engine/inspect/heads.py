"""What kind of head is this? Statistics of attention patterns, and a heuristic name for each head.

Every statistic is a pure function of attention patterns shaped [..., query_pos, key_pos] (rows sum to 1,
zero above the diagonal), so a test can check it on a hand-made pattern whose answer is known. Leading
dimensions (layer, head, batch) pass through: a [layer, head, q, k] stack gives [layer, head] scores.

Query position 0 is left out of every average: it can only look at itself, so it says nothing about a head.

The induction score is measured on a sequence of random tokens repeated twice: a head that, at the second
copy of a token, looks at the token that followed its first copy is doing induction ("A B ... A -> look at
B"), as in Olsson et al. 2022 and TransformerLens's `induction_score`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model.gpt import GPT
from ..model.tokenizer import display_token, start_id
from ..model.trace import Trace, trace_ids

INDUCTION_HALF = 50  # random tokens per copy (TransformerLens uses 50); fewer if the context is short
INDUCTION_SEED = 0  # the same random sequence on every machine, so the scores are reproducible

# Thresholds of the heuristic labels, checked in this order (the first that holds names the head).
INDUCTION_MIN = 0.3  # induction score: mean weight on "the token after my earlier copy"
PREVIOUS_MIN = 0.5  # share of weight on the previous token
SELF_MIN = 0.5  # share of weight on the token itself
FIRST_MIN = 0.5  # share of weight on the first token (the start marker, when there is one)
BROAD_MIN = 0.75  # entropy as a fraction of the most a row can have (1 = perfectly even)


def _check(pattern: torch.Tensor) -> torch.Tensor:
    if pattern.dim() < 2 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"expected a pattern [..., pos, pos], got shape {tuple(pattern.shape)}")
    return pattern.float()


def row_entropy(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [..., q]: the entropy of each query's weights, in bits (0 log 0 counts as 0)."""
    p = _check(pattern)
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)


def max_entropy(n_pos: int) -> torch.Tensor:
    """[q]: the most entropy query q can have, log2(q + 1) bits: even weight on all q + 1 tokens it sees."""
    return torch.log2(torch.arange(1, n_pos + 1, dtype=torch.float32))


def mean_entropy(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [...]: mean entropy in bits over queries 1.. (nan for a one-token pattern)."""
    return row_entropy(pattern)[..., 1:].mean(-1)


def normalized_entropy(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [...]: mean over queries 1.. of entropy / max entropy. 1 = even weights, 0 = one token."""
    p = _check(pattern)
    return (row_entropy(p)[..., 1:] / max_entropy(p.shape[-1])[1:]).mean(-1)


def diagonal_share(pattern: torch.Tensor, back: int) -> torch.Tensor:
    """[..., q, k] -> [...]: mean weight a query puts on the token `back` positions before it (0 = itself),
    over queries 1.. that have such a token."""
    p = _check(pattern)
    start = max(back, 1)
    if start >= p.shape[-1]:
        return torch.full(p.shape[:-2], float("nan"))
    return p.diagonal(offset=-back, dim1=-2, dim2=-1)[..., start - back:].mean(-1)


def previous_token_share(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [...]: mean weight on the token just before the query. A pure previous-token head: 1."""
    return diagonal_share(pattern, 1)


def self_share(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [...]: mean weight a query puts on itself (queries 1..). An identity pattern: 1."""
    return diagonal_share(pattern, 0)


def first_token_share(pattern: torch.Tensor) -> torch.Tensor:
    """[..., q, k] -> [...]: mean weight on position 0 (queries 1..)."""
    p = _check(pattern)
    if p.shape[-1] < 2:
        return torch.full(p.shape[:-2], float("nan"))
    return p[..., 1:, 0].mean(-1)


def induction_score(pattern: torch.Tensor, period: int, start: int = 1) -> torch.Tensor:
    """[..., q, k] -> [...]: mean weight on "the token after my earlier copy", for a sequence where the tokens
    from `start` on repeat every `period` positions (token at p equals token at p - period).

    A query q in the second copy has its earlier copy at q - period; the token after that is q - period + 1.
    """
    p = _check(pattern)
    first_query = start + period
    if period < 2 or first_query >= p.shape[-1]:
        raise ValueError(f"a {p.shape[-1]}-token pattern holds no repeat of period {period} from {start}")
    return p.diagonal(offset=1 - period, dim1=-2, dim2=-1)[..., first_query - (period - 1):].mean(-1)


def repeated_random_ids(vocab_size: int, half: int, seed: int = INDUCTION_SEED, bos_id: int | None = None,
                        exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """[bos] + r + r: `half` random token ids (none of `exclude`, no repeats inside r), written twice."""
    allowed = torch.tensor([i for i in range(vocab_size) if i not in exclude and i != bos_id])
    if len(allowed) < half:
        raise ValueError(f"the vocabulary has only {len(allowed)} usable tokens, {half} needed")
    gen = torch.Generator().manual_seed(seed)
    r = allowed[torch.randperm(len(allowed), generator=gen)[:half]].tolist()
    return ([bos_id] if bos_id is not None else []) + r + r


def induction_half(block_size: int) -> int:
    """Tokens per copy that fit the context with a start marker: at most INDUCTION_HALF."""
    return min(INDUCTION_HALF, (block_size - 1) // 2)


def induction_trace(model: GPT, tokenizer, seed: int = INDUCTION_SEED) -> Trace:
    """A recorded forward pass over [<|endoftext|>] + r + r, r random tokens (see `repeated_random_ids`).

    Raises ValueError when the context is too short to hold two copies of at least two tokens.
    """
    cfg = model.config
    half = induction_half(cfg.block_size)
    if half < 2:
        raise ValueError(f"a context of {cfg.block_size} tokens is too short to measure induction")
    # Special tokens and lone bytes or control characters (shown as <0xE6>, <U+0002>) stay out, so the
    # sequence reads as words and pieces of words; which tokens does not matter for the score.
    # A model's table may have more rows than its tokenizer has tokens (Qwen pads to a round number): only
    # real tokens are drawn.
    usable = min(cfg.vocab_size, len(tokenizer))
    shown = {i: display_token(tokenizer, i) for i in range(usable)}
    odd = {i for i, text in shown.items() if "<0x" in text or "<U+" in text}
    ids = repeated_random_ids(usable, half, seed, bos_id=start_id(tokenizer),
                              exclude=set(tokenizer.all_special_ids) | odd)
    return trace_ids(model, tokenizer, ids, has_bos=True)


def stacked_patterns(trace: Trace) -> torch.Tensor:
    """[layer, head, q, k]: every head's attention pattern in one tensor."""
    return torch.stack([trace.act[f"blocks.{i}.attn.hook_pattern"] for i in range(trace.config.n_layer)])


@dataclass(frozen=True)
class HeadStats:
    """Per-head figures, each a [layer, head] tensor. Shares are fractions of one query's weight (0..1)."""
    entropy_bits: torch.Tensor  # mean entropy of a row, in bits
    entropy_norm: torch.Tensor  # entropy / the most a row can have: 1 = even spread, 0 = one token
    previous: torch.Tensor  # mean weight on the previous token
    first: torch.Tensor  # mean weight on position 0
    self: torch.Tensor  # mean weight on the query's own token
    induction: torch.Tensor | None  # induction score on the repeated random sequence (None: not measured)


def head_stats(patterns: torch.Tensor, induction_patterns: torch.Tensor | None = None,
               induction_period: int | None = None) -> HeadStats:
    """Figures for every head from `patterns` [layer, head, q, k] of one text, and the induction score from
    `induction_patterns` (the same heads on a repeated random sequence of period `induction_period`)."""
    induction = None
    if induction_patterns is not None and induction_period is not None:
        induction = induction_score(induction_patterns, induction_period)
    return HeadStats(entropy_bits=mean_entropy(patterns), entropy_norm=normalized_entropy(patterns),
                     previous=previous_token_share(patterns), first=first_token_share(patterns),
                     self=self_share(patterns), induction=induction)


@dataclass(frozen=True)
class HeadLabel:
    layer: int
    head: int
    label: str  # "induction", "previous token", "self", "first token (sink)", "broad" or "mixed"
    reason: str  # the figure behind the label, in words, with the threshold it passed


def _pct(x: float) -> str:
    return f"{x:.0%}"


def label_head(stats: HeadStats, layer: int, head: int, first_is_marker: bool = True) -> HeadLabel:
    """A heuristic name for one head: the first of these rules that holds, else "mixed"."""
    def value(t: torch.Tensor | None) -> float:
        return float("nan") if t is None else float(t[layer, head])

    ind, prev, own, first, broad = (value(stats.induction), value(stats.previous), value(stats.self),
                                    value(stats.first), value(stats.entropy_norm))
    first_name = "the start marker" if first_is_marker else "the first token"
    rules = (
        ("induction", ind >= INDUCTION_MIN,
         f"On a repeated random sequence, {_pct(ind)} of its weight goes to the token after the earlier copy "
         f"(≥ {_pct(INDUCTION_MIN)})"),
        ("previous token", prev >= PREVIOUS_MIN, f"{_pct(prev)} of its weight is on the previous token "
                                                 f"(≥ {_pct(PREVIOUS_MIN)})"),
        ("self", own >= SELF_MIN, f"{_pct(own)} of its weight is on the token itself (≥ {_pct(SELF_MIN)})"),
        ("first token (sink)", first >= FIRST_MIN,
         f"{_pct(first)} of its weight is on {first_name}, a resting place when nothing else matters "
         f"(≥ {_pct(FIRST_MIN)})"),
        ("broad", broad >= BROAD_MIN, f"Its weights are spread out: entropy {_pct(broad)} of the most possible "
                                      f"(≥ {_pct(BROAD_MIN)})"),
    )
    for label, holds, reason in rules:
        if holds:  # nan compares False, so an unmeasured figure never names a head
            return HeadLabel(layer, head, label, reason)
    return HeadLabel(layer, head, "mixed", "No single pattern dominates: previous "
                     f"{_pct(prev)}, self {_pct(own)}, first {_pct(first)}, entropy {_pct(broad)} of max"
                     + ("" if math.isnan(ind) else f", induction {_pct(ind)}"))


def label_heads(stats: HeadStats, first_is_marker: bool = True) -> list[HeadLabel]:
    """`label_head` for every head, layer by layer."""
    n_layer, n_head = stats.previous.shape
    return [label_head(stats, layer, head, first_is_marker) for layer in range(n_layer) for head in range(n_head)]


@dataclass(frozen=True)
class MissingType:
    """A head type no head of the model reaches, with the closest head and how close it came."""
    label: str  # as in HeadLabel.label
    best: float  # the highest figure any head has for it
    layer: int  # ... and where
    head: int
    threshold: float  # what the rule needs


def missing_types(stats: HeadStats, labels: list[HeadLabel]) -> list[MissingType]:
    """The head types no head is labelled with (an unmeasured figure, induction on a short context, is not
    counted as missing: it is not known)."""
    figures = (("induction", stats.induction, INDUCTION_MIN), ("previous token", stats.previous, PREVIOUS_MIN),
               ("self", stats.self, SELF_MIN), ("first token (sink)", stats.first, FIRST_MIN),
               ("broad", stats.entropy_norm, BROAD_MIN))
    found = {h.label for h in labels}
    missing = []
    for label, values, threshold in figures:
        if label in found or values is None:
            continue
        flat = int(values.argmax())
        layer, head = divmod(flat, values.shape[1])
        missing.append(MissingType(label, float(values.max()), layer, head, threshold))
    return missing
