"""What an intervention costs before it runs, and the server's budget for it.

A patching grid is one forward pass per cell (a 12-layer x 64-position grid is 768 of them), and leave-one-out
attribution one per input token: priced from the model's shape alone, with the same deliberately slow CPU as a
trace's estimate (engine/model/cost.py), so the estimate errs long. Over GLASSBOX_INTERVENE_BUDGET_S the page
refuses it in one sentence with the price and what would fit.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import settings
from ..model.cost import ATTENTION_S_PER_VALUE, FLOPS_PER_S, LAYER_S
from ..model.families.base import GATED_MLP

BUDGET_ENV = settings.env_name("intervene_budget_s")


class Refusal(ValueError):
    """An intervention that is not run here; the message says why in one plain sentence."""


@dataclass(frozen=True)
class Price:
    forwards: int  # forward passes it stands for (one per grid cell, per left-out token, ...)
    calls: int  # model calls it makes (batched: far fewer than forwards)
    flops: int  # floating-point operations, 2 per multiply-add
    seconds: float  # a generous estimate on a slow CPU

    def __add__(self, other: "Price") -> "Price":
        return Price(self.forwards + other.forwards, self.calls + other.calls, self.flops + other.flops,
                     self.seconds + other.seconds)


def token_layer_flops(cfg) -> int:
    """Operations one token costs in one layer, without attention over the context: q, k, v, the output
    projection and the MLP's matmuls (a gated MLP has three)."""
    d, d_q, d_kv = cfg.n_embd, cfg.n_head * cfg.d_head, cfg.n_kv_head * cfg.d_head
    widths = 3 if cfg.mlp == GATED_MLP else 2
    return 2 * (d * d_q + 2 * d * d_kv + d_q * d + widths * d * cfg.d_mlp)


def forward_price(cfg, rows: int, new: int, context: int, logit_rows: int | None = None, forwards: int = 0,
                  layers: int | None = None) -> Price:
    """One model call on `rows` rows of `new` tokens each, seeing `context` tokens in all (past included), with
    the vocabulary's logits at `logit_rows` positions (default: every new token of every row), through `layers`
    layers (default: all)."""
    L, tokens = cfg.n_layer if layers is None else layers, rows * new
    logit_rows = tokens if logit_rows is None else logit_rows
    attention = rows * L * cfg.n_head * new * context  # scores and pattern values
    flops = tokens * L * token_layer_flops(cfg) + 2 * 2 * attention * cfg.d_head + 2 * logit_rows * cfg.n_embd * \
        cfg.vocab_size
    seconds = flops / FLOPS_PER_S + attention * ATTENTION_S_PER_VALUE + L * LAYER_S
    return Price(forwards=forwards, calls=1, flops=flops, seconds=seconds)


def nothing() -> Price:
    return Price(0, 0, 0, 0.0)


def seconds_text(s: float) -> str:
    if s < 1:
        return "under a second"
    if s < 90:
        return f"about {s:.0f} s"
    return f"about {s / 60:.0f} min"


def budget_s() -> float:
    return settings.current().intervene_budget_s


def check(price: Price, what: str, shorter: str = "a shorter text") -> None:
    """Refusal (one sentence: the price, the budget, what would fit) when `price` is over the budget."""
    budget = budget_s()
    if price.seconds > budget:
        raise Refusal(f"{what[:1].upper()}{what[1:]} is {price.forwards:,} forward passes, "
                      f"{seconds_text(price.seconds)} on a slow server CPU, over this server's {budget:g} s for one "
                      f"intervention ({BUDGET_ENV}): try {shorter}.")
