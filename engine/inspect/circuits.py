"""Circuits forming while a model trains: every head's type scores at a checkpoint, and the induction test's loss.

At each checkpoint of a training run (engine/train/runs.py keeps the weights and the trace of a fixed prompt),
the same figures the Attention page's "What kind of head?" tab shows (engine/inspect/heads.py): each head's
share of attention on the previous token and on the first token (the sink) over the prompt, and its induction
score on a repeated random sequence; plus the model's loss on that sequence. Its first copy is random, so
nothing predicts it; the second copy is predictable by anyone who can look back and copy: when an induction
head forms, the loss on the second copy drops far below the first's, together with the score (the "phase
change" of Olsson et al. 2022, "In-context learning and induction heads").

Pure functions of a model and a trace: nothing is changed, and the scores equal the Attention page's for the
same weights and text (a test says so).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.trace import Trace
from .heads import INDUCTION_MIN, HeadStats, head_stats, induction_half, induction_trace, stacked_patterns


@dataclass(frozen=True)
class Scores:
    """One model's head types and its loss on the induction test (a checkpoint of a run, or a finished model)."""
    step: int  # training step (-1: not a checkpoint)
    stats: HeadStats  # [layer, head] each: previous, first (the sink), induction, ...
    loss_first: float | None  # mean loss on the repeated sequence's first copy (random: nothing predicts it)
    loss_repeat: float | None  # ... on its second copy (an induction head predicts it)

    def best(self, figure: str) -> tuple[float, int, int]:
        """(score, layer, head) of the head with the highest `figure` ("previous", "first", "induction");
        nan when the figure was not measured."""
        values = getattr(self.stats, figure)
        if values is None:
            return float("nan"), -1, -1
        flat = int(values.flatten().argmax())
        layer, head = divmod(flat, values.shape[1])
        return float(values[layer, head]), layer, head

    @property
    def has_induction_head(self) -> bool:
        score, _, _ = self.best("induction")
        return score >= INDUCTION_MIN


def repeat_losses(trace: Trace, half: int) -> tuple[float, float]:
    """(first copy, second copy): mean cross-entropy of the next token over each copy of a [bos] + r + r trace.
    The first token of each copy is left out: nothing before it says what it is (its predecessor is the start
    marker, or the end of the first copy)."""
    logits = trace.logits  # [pos, vocab]
    ids = torch.tensor(trace.ids)
    # Predictions made at p predict the token at p + 1: first copy p = 1..half-1, second copy p = half+1..2*half-1.
    first = F.cross_entropy(logits[1:half], ids[2:half + 1])
    second = F.cross_entropy(logits[half + 1:2 * half], ids[half + 2:2 * half + 1])
    return float(first), float(second)


@torch.no_grad()
def scores(model, tokenizer, probe: Trace, step: int = -1) -> Scores:
    """The head types of `model` on the trace `probe` (of its own weights) and on the repeated random sequence,
    as the Attention page computes them, and its loss on that sequence."""
    half = induction_half(model.config.block_size)
    try:
        rep = induction_trace(model, tokenizer)
    except ValueError:  # a context too short for two copies: no induction score
        return Scores(step, head_stats(stacked_patterns(probe)), None, None)
    stats = head_stats(stacked_patterns(probe), stacked_patterns(rep), half)
    first, second = repeat_losses(rep, half)
    return Scores(step, stats, first, second)


def first_induction(history: list[Scores]) -> Scores | None:
    """The first checkpoint at which some head passes the induction threshold (None: none did)."""
    return next((s for s in history if s.has_induction_head), None)
