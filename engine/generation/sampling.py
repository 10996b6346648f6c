"""Sampling: pure functions from logits to logits, composed by `sample`.

Filters follow transformers' logits warpers (temperature, then top-k, top-p, min-p) so the same settings
give the same distribution; a test compares them. Every function takes logits of shape [..., vocab].
Temperature 0 means greedy decoding. The page draws each stage from `sampling_stages`, which calls the
same functions `sample` does.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .window import ContextWindow

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 10.0  # below MIN (and above 0) is clamped; 0 is greedy


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 = greedy; otherwise clamped to [0.01, 10]
    top_k: int = 0  # keep the k most likely tokens; 0 = off
    top_p: float = 1.0  # keep the smallest set with this much probability; 1 = off
    min_p: float = 0.0  # drop tokens below min_p x the top probability; 0 = off

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by T in float32 (T = 0 leaves them as they are: greedy picks the argmax)."""
    logits = logits.float()
    if temperature <= 0:
        return logits
    return logits / min(max(float(temperature), MIN_TEMPERATURE), MAX_TEMPERATURE)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set all but the k largest logits to -inf (ties with the k-th are kept, as transformers does)."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens whose probability adds up to p (at least one)."""
    if p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cum <= (1 - p)
    remove_sorted[..., -1:] = False  # the most likely token always stays
    remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Drop tokens whose probability is below min_p times the most likely token's."""
    if min_p <= 0.0:
        return logits
    probs = logits.softmax(dim=-1)
    remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
    top = logits.argmax(dim=-1, keepdim=True)
    remove = remove.scatter(-1, top, False)
    return logits.masked_fill(remove, float("-inf"))


def filter_logits(logits: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    """Temperature, then top-k, top-p and min-p: the logits a token is drawn from."""
    x = apply_temperature(logits, s.temperature)
    if s.greedy:
        return x.masked_fill(x < x.amax(dim=-1, keepdim=True), float("-inf"))
    return min_p_filter(top_p_filter(top_k_filter(x, s.top_k), s.top_p), s.min_p)


def sample(logits: torch.Tensor, s: SamplingSettings, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token id per row of `logits` ([..., vocab] -> [...])."""
    if s.greedy:
        return logits.argmax(dim=-1)
    probs = filter_logits(logits, s).softmax(dim=-1)
    flat = probs.reshape(-1, probs.size(-1))
    ids = torch.multinomial(flat, 1, generator=generator)
    return ids.reshape(probs.shape[:-1])


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of distributions over the last dimension (0 log 0 = 0). Never negative: a
    certain token gives 0.0, not -0.0, and a softmax rounding a probability to just over 1 gives 0 too."""
    logp = torch.where(probs > 0, probs.log2(), torch.zeros_like(probs))
    return (-(probs * logp).sum(dim=-1)).clamp(min=0.0) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class SamplingStages:
    """Every stage of turning one position's logits into a distribution, for drawing. All [vocab]."""
    logits: torch.Tensor  # raw logits from the model
    scaled: torch.Tensor  # logits / T (raw logits when greedy)
    kept: torch.Tensor  # bool: tokens that survive the filters
    probs_before: torch.Tensor  # softmax(scaled): the distribution before filtering (T = 0: its limit, one-hot)
    probs_after: torch.Tensor  # renormalised over the kept tokens: what is actually sampled from
    cumulative: torch.Tensor  # cumulative probs_before in descending order (what top-p reads)
    order: torch.Tensor  # token ids, most likely first (by logit: probabilities that underflow to 0 tie)
    entropy_before: float  # bits
    entropy_after: float  # bits


def sampling_stages(logits: torch.Tensor, s: SamplingSettings) -> SamplingStages:
    logits = logits.float().reshape(-1)
    scaled = apply_temperature(logits, s.temperature)
    filtered = filter_logits(logits, s)
    kept = torch.isfinite(filtered)
    after = filtered.softmax(dim=-1)
    # T = 0 is the limit of ever lower temperatures: softmax(logits / T) tends to the top token alone, as
    # T = 0.01 already shows. The logits are not divided (by zero), but the probabilities are that limit.
    before = after if s.greedy else scaled.softmax(dim=-1)
    # By the scaled logits, the same order as the probabilities where those are above 0, and still the
    # model's real order where a low temperature has rounded them all to 0 (sorting those would be noise).
    order = torch.argsort(scaled, descending=True, stable=True)
    return SamplingStages(
        logits=logits, scaled=scaled, kept=kept, probs_before=before, probs_after=after,
        cumulative=before[order].cumsum(dim=-1), order=order,
        entropy_before=float(entropy_bits(before)), entropy_after=float(entropy_bits(after)),
    )


@dataclass(frozen=True)
class Step:
    """One generation step: the context it saw, the distribution it drew from, what it drew."""
    context: list[int]  # the token ids fed to the model (at most block_size of them)
    stages: SamplingStages
    token_id: int
    prob: float  # probability of the chosen token under probs_after


@torch.no_grad()
def generate_steps(model, ids: list[int], n_new: int, s: SamplingSettings,
                   generator: torch.Generator | None = None) -> Iterator[Step]:
    """Generate `n_new` tokens one at a time, yielding each step. The context slides when it is full.

    On a key/value cache (engine/generation/window.py): while the sequence fits the context, each step runs
    the model on its one new token only. Once the context is full, each step slides the window, which moves
    every token to a new position, so the window is run again (one prefill of block_size tokens per step).
    The same tokens as recomputing the whole context every step, with logits equal to float rounding.
    """
    window = ContextWindow(model, ids)
    for _ in range(n_new):
        step = draw_step(window, s, generator)
        yield step
        window.append(step.token_id)


def draw_step(window: ContextWindow, s: SamplingSettings, generator: torch.Generator | None = None) -> Step:
    """The next step after `window`'s context: every sampling stage and the token drawn (not appended)."""
    context = window.context
    stages = sampling_stages(window.next_logits().cpu(), s)
    tok = int(stages.logits.argmax()) if s.greedy else int(
        torch.multinomial(stages.probs_after, 1, generator=generator))
    return Step(context, stages, tok, float(stages.probs_after[tok]))


def generate(model, ids: list[int], n_new: int, s: SamplingSettings,
             generator: torch.Generator | None = None, stop_id: int | None = None) -> list[int]:
    """The ids of `n_new` generated tokens (fewer if `stop_id` is drawn)."""
    out = []
    for step in generate_steps(model, ids, n_new, s, generator):
        if stop_id is not None and step.token_id == stop_id:
            break
        out.append(step.token_id)
    return out
