"""The Attention page's "All heads" and "Compare" tabs: every head at once, the chosen one large with its
line view, and one head on two prompts side by side. All drawn from cached traces: nothing here runs the
model except for a new prompt B.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st
import torch

from engine import Trace
from engine.inspect.heads import stacked_patterns
from engine.inspect.word_context import align_tokens, aligned_difference

from ..cache import get_trace
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..state import MAX_CHARS
from ..text import md
from ..patterns import (LINE_LABELS, difference_figure, head_figure, line_view_figure, matrix_csv, overview_figure,
                      overview_side, patterns_csv, position_labels)
from .heads import head_labels
from .state import PAGE, Pick, choose, head_click_args, overview_click_args, remembered

# A second prompt that differs from the first in one word, for the Compare tab's first visit.
SWAPS = (("fox", "dog"), ("dog", "cat"), ("cat", "dog"), ("girl", "boy"), ("boy", "girl"), ("little", "big"),
         ("big", "little"), ("red", "blue"), ("happy", "sad"), ("he", "she"), ("she", "he"))
TOP_KEYS = 8  # rows of the "looks at most" table


def head_title(pick: Pick) -> str:
    return f"Layer {pick.layer}, head {pick.head}"


def architecture_notes(cfg, pick: Pick) -> list[str]:
    """What this model's architecture means for the head on screen: shared keys, a local window, no scale."""
    out = []
    if cfg.n_kv_head < cfg.n_head:
        others = [h for h in cfg.shares_keys_with(pick.head) if h != pick.head]
        out.append(f"Grouped-query attention: head {pick.head} reads the same keys and values as head"
                   f"{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} of this layer; its queries, and "
                   "so its pattern, are its own.")
    if pick.layer in cfg.local_layers:
        out.append(f"Layer {pick.layer} is a local attention layer: each token sees only the last "
                   f"{cfg.local_window} tokens (itself included), so weights further back are zero.")
    return out


def heads_section(trace: Trace, choice: ModelChoice, pick: Pick) -> None:
    """The overview of every head (click picks one), the chosen head large, and its line view."""
    patterns = stacked_patterns(trace)  # [layer, head, q, k]
    n_layer, n_head, n, _ = patterns.shape
    overview, detail = st.columns([1, 1.7], gap="medium")
    with overview:
        st.plotly_chart(fitted(overview_figure(patterns, (pick.layer, pick.head))),
                        config=plot_config("attention-all-heads"), **overview_click_args(PAGE.key("overview")))
        side = overview_side(n, n_layer * n_head)
        note = "" if side == n else (f" This text has {n} tokens, so each tile shows {side}×{side} blocks, each "
                                     "the mean of the weights it covers; the large view shows every token.")
        st.caption("Each tile is one head; click a tile to open it on the right. In a tile, row = the token "
                   "looking (query), column = the token looked at "
                   "(key), colour = attention weight on viridis from 0 (dark purple) to 1 (yellow). Blank "
                   "cells are future tokens, which the causal mask hides." + note)
        st.download_button("Download every head's weights (CSV)", lambda: patterns_csv(patterns, trace.tokens),
                           file_name="attention-all-heads.csv", mime="text/csv", on_click="ignore",
                           icon=":material/download:")
    label = head_labels(trace, choice).get((pick.layer, pick.head))
    with detail:
        pattern = patterns[pick.layer, pick.head]  # [q, k]
        title = head_title(pick) + (f" · {label.label}" if label and label.label != "mixed" else "")
        st.plotly_chart(fitted(head_figure(pattern, trace.tokens, title, query=pick.query, x_most=20)),
                        config=plot_config(f"attention-L{pick.layer}H{pick.head}"),
                        **head_click_args(PAGE.key("detail")))
        if label:
            st.caption(f"Heuristic label: **{label.label}**. {label.reason}. "
                       "See *What kind of head?* for every figure behind the labels.")
        st.caption("Each row sums to 1: it is how the query token shares its attention among itself and the "
                   "tokens before it. Hover a cell for the exact weight; click a row to pick its query token.")
        for line in architecture_notes(trace.config, pick):
            st.caption(line)
        st.download_button("Download this head's weights (CSV)",
                           _csv_of(pattern, trace.tokens),
                           file_name=f"attention-L{pick.layer}H{pick.head}.csv", mime="text/csv",
                           on_click="ignore", icon=":material/download:")
    st.subheader(f"What “{md(trace.tokens[pick.query])}” looks at")
    lines, top = st.columns([2, 1], gap="medium")
    with lines:
        st.plotly_chart(fitted(line_view_figure(pattern[pick.query], trace.tokens, pick.query,
                                                f"{head_title(pick)}, query {pick.query}")),
                        config=plot_config(f"attention-lines-L{pick.layer}H{pick.head}-q{pick.query}"),
                        key=PAGE.key("lines"))
    with top:
        st.markdown("As in BertViz's line view: the query token (orange, left) looks at every token up to "
                    "itself (right). Thicker, darker lines carry more weight; the weights add up to 100%.")
        row = pattern[pick.query, :pick.query + 1]  # [keys]
        order = row.argsort(descending=True)[:TOP_KEYS].tolist()
        st.dataframe(pd.DataFrame({"position": order, "token": [trace.tokens[j] for j in order],
                                   "weight": [float(row[j]) for j in order]}),
                     hide_index=True, key=PAGE.key("top_keys"),
                     column_config={"position": st.column_config.NumberColumn(width="small"),
                                    "token": st.column_config.TextColumn(width="small"),
                                    "weight": st.column_config.NumberColumn(format="%.3f", width="small")})
        if pick.query + 1 > LINE_LABELS:
            st.caption(f"With this many tokens, the lines go to the {LINE_LABELS // 2} with the most weight (and "
                       "the query itself), in text order with their positions; the last row adds up the rest.")


def _csv_of(pattern: torch.Tensor, tokens: Sequence[str]) -> Callable[[], str]:
    """A download's deferred data: the CSV is only made when the button is clicked."""
    return lambda: matrix_csv(pattern, position_labels(tokens), position_labels(tokens))


def variant(text: str) -> str:
    """`text` with one word swapped (fox -> dog, ...), or with ' again' added when no word can be swapped."""
    for old, new in SWAPS:
        if re.search(rf"\b{old}\b", text):
            return re.sub(rf"\b{old}\b", new, text, count=1)
    return text + " again"


def _use_prompt_a(text: str) -> None:
    choose("compare_text", text)


def compare_section(trace: Trace, choice: ModelChoice, pick: Pick) -> None:
    """One head on two prompts side by side, and the difference where their tokens line up."""
    st.markdown("Prompt **A** is your text above. Type a prompt **B**, e.g. the same text with one word "
                "changed, to see how the chosen head reacts.")
    box, reset = st.columns([5, 1], vertical_alignment="bottom")
    text_b = box.text_input("Prompt B", max_chars=MAX_CHARS, **remembered("compare_text", variant(trace.text)))
    reset.button("Copy prompt A", on_click=_use_prompt_a, args=(trace.text,), width="stretch",
                 help="Start prompt B from your text, then edit it.")
    if not text_b.strip():
        st.info("Type a prompt B to compare.", icon=":material/keyboard:")
        return
    trace_b = get_trace(text_b, choice)
    if trace_b.ids == trace.ids:
        st.info("The prompts are the same: the head's weights are identical, so there is no difference to show. "
                "Change a word of prompt B.", icon=":material/compare:")
        return
    title = head_title(pick)
    pa = trace.act[f"blocks.{pick.layer}.attn.hook_pattern"][pick.head]  # [q, k]
    pb = trace_b.act[f"blocks.{pick.layer}.attn.hook_pattern"][pick.head]  # [q, k]
    for col, name, t, p in zip(st.columns(2), "AB", (trace, trace_b), (pa, pb)):
        with col:
            st.plotly_chart(fitted(head_figure(p, t.tokens, f"{name} · {title}", clickable=False, x_most=10)),
                            config=plot_config(f"compare-{name}-L{pick.layer}H{pick.head}"),
                            key=PAGE.key(f"compare_{name}"))
            st.download_button(f"Download {name}'s weights (CSV)", _csv_of(p, t.tokens),
                               file_name=f"compare-{name}-L{pick.layer}H{pick.head}.csv", mime="text/csv",
                               on_click="ignore", icon=":material/download:", key=PAGE.key(f"compare_csv_{name}"))
    alignment = align_tokens(trace.ids, trace_b.ids)
    shared = len(alignment) - int(trace.has_bos and trace_b.has_bos)  # the start marker always lines up
    if shared < 1:
        st.info("The two prompts share no tokens, so there is nothing to line up.", icon=":material/compare:")
        return
    diff = aligned_difference(pa, pb, alignment)  # [n, n]
    tokens = [trace.tokens[i] for i in alignment.a]
    st.plotly_chart(fitted(difference_figure(diff, tokens, alignment.a,
                                             f"A minus B on the {len(alignment)} tokens both prompts share")),
                    config=plot_config(f"compare-difference-L{pick.layer}H{pick.head}"))
    z = diff.numpy().copy()
    z[np.triu_indices_from(z, k=1)] = 0
    q, k = np.unravel_index(np.abs(z).argmax(), z.shape)
    st.caption(f"Blue: the head puts more weight there in A; red: more in B (RdBu centred on 0: blue "
               "positive, red negative, as on every page). "
               f"{len(alignment)} of A's {len(trace)} tokens line up with B's {len(trace_b)} (the same "
               "tokens in the same order, as a diff finds them); the rest are left out. Largest difference: "
               f"query “{md(tokens[q])}” → key “{md(tokens[k])}”, {float(z[q, k]):+.3f}.")
    st.download_button("Download the difference (CSV)",
                       lambda: matrix_csv(diff, [f"{p} {t}" for p, t in zip(alignment.a, tokens)],
                                          [f"{p} {t}" for p, t in zip(alignment.a, tokens)]),
                       file_name=f"attention-difference-L{pick.layer}H{pick.head}.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:")
