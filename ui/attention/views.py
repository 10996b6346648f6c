"""The Attention page's "All heads" and "Compare" tabs: every head at once, the chosen one large with its
line view, and one head on two prompts side by side. All drawn from cached traces: nothing here runs the
model except for a new prompt B.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
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
from ..patterns import difference_figure, head_figure, matrix_csv, overview_side, patterns_csv, position_labels
from ..views import show_heads
from .heads import head_labels
from .state import PAGE, PICKER_HELP, Pick, choose, pick_applier, remembered

# A second prompt that differs from the first in one word, for the Compare tab's first visit.
SWAPS = (("fox", "dog"), ("dog", "cat"), ("cat", "dog"), ("girl", "boy"), ("boy", "girl"), ("little", "big"),
         ("big", "little"), ("red", "blue"), ("happy", "sad"), ("he", "she"), ("she", "he"))


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
    """The overview of every head, the chosen head large and its line view, drawn in the browser from the
    patterns sent once (ui/views): picking a head or a query there costs the server nothing but the report."""
    patterns = stacked_patterns(trace)  # [layer, head, q, k]
    n_layer, n_head, n, _ = patterns.shape
    labels = head_labels(trace, choice)
    notes = {f"{layer},{head}": lines for layer in range(n_layer) for head in range(n_head)
             if (lines := architecture_notes(trace.config, Pick(layer, head, 0)))}
    show_heads(trace, PAGE.key("view"), {"layer": pick.layer, "head": pick.head, "query": pick.query},
               [(lab.label, lab.reason) for lab in (labels[(layer, head)] for layer in range(n_layer)
                                                     for head in range(n_head))],
               notes, PICKER_HELP, pick_applier(trace))
    side = overview_side(n, n_layer * n_head)
    note = "" if side == n else (f" This text has {n} tokens, so each tile shows {side}×{side} blocks, each "
                                 "the mean of the weights it covers; the large view shows every token.")
    st.caption("All heads: each tile is one head; click a tile (or Tab to it, move with the arrow keys, press Enter) "
               "to open it. In a tile, row = the token looking (query), column = the token looked at (key), "
               "colour = attention weight on viridis from 0 (dark purple) to 1 (yellow). Blank cells are future "
               "tokens, which the causal mask hides. In the large view each row sums to 1: it is how the query token "
               "shares its attention among itself and the tokens before it. Hover a cell for the exact weight; "
               "click a row to pick its query token." + note)
    st.download_button("Download every head's weights (CSV)", lambda: patterns_csv(patterns, trace.tokens),
                       file_name="attention-all-heads.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:")


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
