"""The sampling lab's pure helpers: presets, which filter removed which token, the top of a distribution,
N draws from one distribution, and step-by-step generation that can be undone and replayed.

Everything here is built on engine.generation.sampling (`sampling_stages`, `draw_step`, the step of
`generate_steps`, and the filters), so what the page shows is what generation does. Step i of a run draws
with its own generator seeded from (seed, i): undoing a step and drawing again gives the same token, and a
run repeats exactly from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .sampling import (SamplingSettings, SamplingStages, apply_temperature, draw_step, min_p_filter, top_k_filter,
                       top_p_filter)
from .window import ContextWindow

PRESETS: dict[str, SamplingSettings] = {
    # Low temperature plus a nucleus: the likeliest few tokens, almost always the same answer.
    "precise": SamplingSettings(temperature=0.3, top_k=0, top_p=0.9, min_p=0.1),
    # Close to the model's own distribution, with the long tail of unlikely tokens cut away.
    "balanced": SamplingSettings(temperature=0.8, top_k=0, top_p=0.95, min_p=0.05),
    # Flatter than the model; min-p still drops tokens far below the best one, which keeps text readable.
    "creative": SamplingSettings(temperature=1.3, top_k=0, top_p=1.0, min_p=0.02),
}
RAW = SamplingSettings()  # T = 1, no filters: exactly the model's distribution
GREEDY = SamplingSettings(temperature=0.0)

FILTERS = ("greedy", "top-k", "top-p", "min-p")  # in the order filter_logits applies them


def removed_by(logits: torch.Tensor, s: SamplingSettings) -> dict[str, torch.Tensor]:
    """For each filter, a bool mask [vocab] of the tokens it removed (each token is counted at the first
    filter that removes it). Applies engine.generation.sampling's filters in filter_logits' order."""
    x = apply_temperature(logits.float().reshape(-1), s.temperature)  # [vocab]
    none = torch.zeros_like(x, dtype=torch.bool)
    if s.greedy:
        return {"greedy": x < x.max(), "top-k": none, "top-p": none, "min-p": none}
    after_k = top_k_filter(x, s.top_k)
    after_p = top_p_filter(after_k, s.top_p)
    after_min = min_p_filter(after_p, s.min_p)
    alive_k, alive_p, alive_min = torch.isfinite(after_k), torch.isfinite(after_p), torch.isfinite(after_min)
    return {"greedy": none, "top-k": ~alive_k, "top-p": alive_k & ~alive_p, "min-p": alive_p & ~alive_min}


def blame(masks: dict[str, torch.Tensor], ids: list[int]) -> list[str | None]:
    """For each token id, the filter that removed it (None if it survived), from `removed_by`'s masks."""
    return [next((f for f in FILTERS if masks[f][t]), None) for t in ids]


@dataclass(frozen=True)
class TopTokens:
    """The most likely tokens of one distribution (by probability before filtering), and the rest in one sum."""
    ids: list[int]
    probs_before: list[float]  # softmax(logits / T)
    probs_after: list[float]  # what is sampled from (0 for removed tokens)
    kept: list[bool]
    rank: list[int]  # 1 = the most likely token
    rest_before: float  # probability of every token not listed, before filtering
    rest_after: float  # ... and after
    n_rest: int  # how many tokens are not listed
    n_kept: int  # tokens that survive the filters, listed or not
    n_zero: int = 0  # tokens whose probability before the filters is 0 in float32 (too small to show; not listed)


def top_tokens(stages: SamplingStages, k: int, include: int | None = None) -> TopTokens:
    """The k most likely tokens, plus `include` (e.g. the drawn token) if it is not among them.

    Only tokens with a probability above 0 are listed (the most likely always is): at a low temperature most
    probabilities underflow to exactly 0, and the order among them is noise; `n_zero` says how many."""
    nonzero = int((stages.probs_before > 0).sum())
    order = stages.order[:max(1, min(k, nonzero))].tolist()
    rank_of = {tok: i + 1 for i, tok in enumerate(order)}
    if include is not None and include not in rank_of:
        rank_of[include] = int((stages.probs_before > stages.probs_before[include]).sum()) + 1
        order.append(include)
    idx = torch.tensor(order)
    before, after = stages.probs_before[idx], stages.probs_after[idx]
    return TopTokens(
        ids=order, probs_before=before.tolist(), probs_after=after.tolist(), kept=stages.kept[idx].tolist(),
        rank=[rank_of[t] for t in order],
        rest_before=max(0.0, 1.0 - float(before.sum())), rest_after=max(0.0, 1.0 - float(after.sum())),
        n_rest=stages.logits.numel() - len(order), n_kept=int(stages.kept.sum()),
        n_zero=stages.logits.numel() - nonzero,
    )


def draw_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2**63))


def draw(stages: SamplingStages, s: SamplingSettings, n: int, seed: int) -> torch.Tensor:
    """N independent draws [n] from one distribution, as generate_steps draws: greedy takes the argmax, else
    one multinomial draw from probs_after per sample, seeded so the same seed gives the same draws."""
    if s.greedy:
        return stages.logits.argmax().repeat(n)
    return torch.multinomial(stages.probs_after, n, replacement=True, generator=draw_generator(seed))


def step_seed(seed: int, index: int) -> int:
    """The seed of step `index` of a run started with `seed` (distinct for every step, same every time)."""
    return (int(seed) * 1_000_003 + index) % (2**63)


@dataclass(frozen=True)
class StepRecord:
    """One generation step, kept small: a run of hundreds of steps stays a few hundred KB per session."""
    token_id: int
    prob: float  # under the distribution it was drawn from
    prob_before: float  # before the filters (at this temperature)
    rank: int  # 1 = the model's most likely token
    settings: SamplingSettings
    seed: int  # the seed this step drew with
    n_context: int  # tokens the model saw
    n_cut: int  # tokens of the sequence outside the model's window at this step
    entropy_before: float  # bits
    entropy_after: float  # bits
    top: TopTokens  # the candidates, for drawing the step


@dataclass(frozen=True)
class Run:
    """A generation run: the prompt's ids and the steps taken so far. Immutable: every change is a new Run."""
    key: str  # what the run belongs to (model and prompt); a different key means a fresh run
    prompt_ids: tuple[int, ...]
    seed: int
    steps: tuple[StepRecord, ...] = ()

    @property
    def ids(self) -> list[int]:
        return [*self.prompt_ids, *(r.token_id for r in self.steps)]

    def undone(self, n: int = 1) -> Run:
        return replace(self, steps=self.steps[:max(0, len(self.steps) - n)])


def advance(model, run: Run, n: int, s: SamplingSettings, top_k_shown: int = 12) -> Run:
    """`run` with n more steps, each a step of engine.generation.sampling.generate_steps with its own seeded
    generator; the n steps share one key/value cache (engine/generation/window.py)."""
    block = model.config.block_size
    ids, steps = run.ids, list(run.steps)
    window = ContextWindow(model, ids)
    for _ in range(n):
        seed = step_seed(run.seed, len(steps))
        step = draw_step(window, s, draw_generator(seed))
        st = step.stages
        steps.append(StepRecord(
            token_id=step.token_id, prob=step.prob, prob_before=float(st.probs_before[step.token_id]),
            rank=int((st.probs_before > st.probs_before[step.token_id]).sum()) + 1, settings=s, seed=seed,
            n_context=len(step.context), n_cut=max(0, len(ids) - block), entropy_before=st.entropy_before,
            entropy_after=st.entropy_after, top=top_tokens(st, top_k_shown, include=step.token_id),
        ))
        ids.append(step.token_id)
        window.append(step.token_id)
    return replace(run, steps=tuple(steps))
