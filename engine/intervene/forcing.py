"""Force a token and continue: at any step of generation, take another candidate than the one drawn and let
the model go on from there; the branches side by side.

A branch is the prompt plus the steps where a token was forced, {step: token id}. Every branch draws from its
own generator seeded the same way, and a forced step still draws (and discards) its random number, so before
the first forced step a branch is the original text token for token, and after it both use the same random
numbers at every step: where they differ is the model answering the forced token, not the dice.

What it shows: how much one token steers the rest. What it does not: which branch is "right"; a model
forced onto an unlikely token will still continue it as fluently as it can.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..generation.sampling import SamplingSettings, Step, draw_step
from ..generation.window import ContextWindow

MAX_STEPS = 64  # new tokens per branch


@dataclass(frozen=True)
class BranchStep:
    step: Step  # the context, every sampling stage, and the token this branch took
    drawn: int  # the token the draw chose (the branch took `step.token_id`, another where forced)

    @property
    def forced(self) -> bool:
        return self.step.token_id != self.drawn


@torch.no_grad()
def branch(model, ids: list[int], n_new: int, settings: SamplingSettings, seed: int,
           forced: Mapping[int, int] | None = None, stop_id: int | None = None) -> list[BranchStep]:
    """`n_new` steps after `ids` (fewer at `stop_id` or the end of the context), taking `forced[k]` at step k
    instead of the drawn token. Steps count from 0, the first new token."""
    forced = dict(forced or {})
    if any(k < 0 for k in forced) or any(not 0 <= t < model.config.vocab_size for t in forced.values()):
        raise ValueError("a forced step counts from 0 and names a token of the vocabulary")
    n_new = max(0, min(n_new, MAX_STEPS, model.config.block_size - len(ids)))
    generator = torch.Generator().manual_seed(seed)
    window = ContextWindow(model, ids)
    out: list[BranchStep] = []
    for k in range(n_new):
        step = draw_step(window, settings, generator)  # draws even when forced: the same random numbers after
        token = forced.get(k, step.token_id)
        taken = Step(step.context, step.stages, token, float(step.stages.probs_after[token]))
        out.append(BranchStep(taken, step.token_id))
        if stop_id is not None and token == stop_id:
            break
        window.append(token)
    return out


def candidates(step: Step, k: int = 8) -> list[tuple[int, float]]:
    """The step's k most likely tokens before any filter, with their probabilities: what a reader may force."""
    order = step.stages.order[:k]
    return [(int(t), float(step.stages.probs_before[t])) for t in order]
