"""What the Next token page can measure for the tour to quote (ui.view.Fact): what N draws from one
distribution give, whether the text fits the model's window, and what the key/value cache holds and costs.

The draws are the page's own: the same engine function, settings, position, seed and N as its histogram.
"""
from __future__ import annotations

from collections import Counter

import streamlit as st

from engine import encode, sampling_stages
from engine.generation.sampling_lab import draw

from ..cache import get_trace
from ..state import MAX_CHARS
from ..view import FOUND, Context, Unusable, spoken
from .generation import VIEW, current_run
from .kv_cache import fact_values
from .state import HIST, PAGE, POSITION_TEXT, current_settings


@PAGE.fact("draws", ("n", "seed", "distinct", "top", "top_share"))
def draws(ctx: Context) -> dict[str, object]:
    hist = st.session_state.get(HIST)
    if not hist:
        raise Unusable("no draws have been made")
    trace = get_trace(ctx.text[:MAX_CHARS], ctx.choice)
    # The page's position: the end of a text it has not shown yet (ui.next_token.lab.position_picker).
    pos = PAGE.kept("position") if st.session_state.get(POSITION_TEXT) == trace.text else None
    pos = pos if isinstance(pos, int) and 0 <= pos < len(trace) else len(trace) - 1
    s = current_settings()
    drawn = draw(sampling_stages(trace.logits[pos], s), s, hist["n"], hist["seed"]).tolist()
    (top, count), = Counter(drawn).most_common(1)
    return {FOUND: len(set(drawn)) > 1, "n": f"{hist['n']:,}", "seed": hist["seed"],
            "distinct": f"{len(set(drawn)):,}", "top": spoken(ctx.choice.tokenizer, top),
            "top_share": f"{count / len(drawn):.0%}"}


@PAGE.fact("window", ("tokens", "context", "cut"))
def window(ctx: Context) -> dict[str, object]:
    """The text's length in tokens against the model's context window (the page's surprise section)."""
    n = len(encode(ctx.choice.tokenizer, ctx.text[:MAX_CHARS]))
    block = ctx.choice.model.config.block_size
    cut = max(0, n - (block - 1))  # the start marker takes one place, as the page counts
    return {FOUND: cut > 0, "tokens": f"{n:,}", "context": f"{block:,}", "cut": f"{cut:,}"}


@PAGE.fact("kv_cache", ("per_token", "positions", "cached", "layers", "kv_heads", "heads", "gpt2", "llama2", "llama3",
                        "groups", "llama3_kv"))
def kv_cache(ctx: Context) -> dict[str, object]:
    """The key/value cache under step-by-step generation, as its section draws it for the step shown."""
    choice = ctx.choice
    run = current_run(choice, ctx.text[:MAX_CHARS])
    values = fact_values(choice, run, st.session_state.get(VIEW))
    cfg = choice.model.config
    return {FOUND: cfg.n_kv_head == cfg.n_head, **values}
