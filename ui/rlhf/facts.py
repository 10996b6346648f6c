"""What the Pre-training vs RLHF page can measure for the tour to quote (ui.view.Fact): the base and instruct
pair on this server (or the one to add), and how many tokens, special ones among them, the instruct model's chat
template makes of the section's prompt. Read from the tokenizer alone: no model is loaded to say it.
"""
from __future__ import annotations

from ..view import FOUND, Context
from .base_vs_instruct import pair_facts
from .state import PAGE


@PAGE.fact("base_instruct", ("base", "instruct", "tokens", "special"))
def base_instruct(ctx: Context) -> dict[str, object]:
    values = pair_facts()
    return {FOUND: values.pop("found"), **values}
