"""The Attention page's "Context changes meaning" tab: one word in two sentences, layer by layer.

At the token embedding the same token has the same vector in both sentences (cosine similarity 1.0). Each
layer's attention mixes in the words around it, so the two vectors drift apart as far as the model treats
the word differently. Next to that: what the chosen head makes the word look at in each sentence.
"""
from __future__ import annotations

import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from engine import Trace
from engine.inspect.word_context import cosine_by_layer, residual_stages, shared_words, word_positions
from engine.model.arch import LEARNED

from ..cache import get_trace
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..state import MAX_CHARS
from ..text import csv_text, md, plotly_text
from ..patterns import MONO, short, tick_step
from .state import OWN, PAGE, PAIRS, Pick, choose, kept_value, remembered

def _fill_pair() -> None:
    name = kept_value("pair")
    if name in PAIRS:
        a, b, word = PAIRS[name]
        choose("sentence_a", a)
        choose("sentence_b", b)
        choose("word", word)


def _own_pair() -> None:
    choose("pair", OWN)  # an edited pair is the user's own


def cosine_figure(cosines: list[float], labels: list[str], word: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=labels, y=cosines, mode="lines+markers+text", line=dict(color="#0072B2", width=3),
                               marker=dict(size=10), text=[f"{c:.2f}" for c in cosines], textposition="top center",
                               hovertemplate="%{x}: cosine similarity %{y:.4f}<extra></extra>"))
    low = min(0.0, min(cosines) - 0.1)
    fig.update_yaxes(title="cosine similarity", range=[low, 1.12], gridcolor="#e5e5e5", zeroline=True,
                     zerolinecolor="#888")
    fig.update_xaxes(title="where in the model", type="category")
    fig.update_layout(title=dict(text=f"How alike “{plotly_text(word)}” is in the two sentences, layer by layer",
                                 font=dict(size=16)), height=380, font=dict(size=14), plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=50, b=10), dragmode=False)
    return fig


def attention_bars(weights: torch.Tensor, tokens: list[str], query: int, title: str) -> go.Figure:
    """What one query looks at: its weights over every token up to itself."""
    n = query + 1
    labels = [f"{i} {plotly_text(short(t))}" for i, t in enumerate(tokens[:n])]
    w = weights[:n].tolist()
    fig = go.Figure(go.Bar(x=labels, y=w, marker_color=["#D55E00" if i == query else "#0072B2" for i in range(n)],
                           text=[f"{v:.0%}" if v >= 0.01 else "" for v in w], textposition="outside",
                           cliponaxis=False, hovertemplate="%{x}: weight %{y:.4f}<extra></extra>"))
    step = tick_step(n)
    fig.update_xaxes(type="category", tickangle=-45 if n > 4 else 0, tickfont=dict(family=MONO, size=13),
                     tickmode="array", tickvals=labels[::step], ticktext=labels[::step])
    fig.update_yaxes(title="weight", range=[0, 1.12], dtick=0.25, tickformat=".0%", gridcolor="#e5e5e5")
    fig.update_layout(title=dict(text=title, font=dict(size=15)), height=360, font=dict(size=14),
                      plot_bgcolor="white", margin=dict(l=10, r=10, t=50, b=10), dragmode=False)
    return fig


def _sentence_traces(choice: ModelChoice) -> tuple[Trace, Trace] | None:
    pairs = [*PAIRS, OWN]
    st.selectbox("A word with two meanings", pairs, **remembered("pair", pairs[0], pairs, then=_fill_pair))
    if kept_value("sentence_a") is None:
        _fill_pair()
    a_col, b_col = st.columns(2)
    a_col.text_input("Sentence A", max_chars=MAX_CHARS, **remembered("sentence_a", "", then=_own_pair))
    b_col.text_input("Sentence B", max_chars=MAX_CHARS, **remembered("sentence_b", "", then=_own_pair))
    a, b = kept_value("sentence_a", ""), kept_value("sentence_b", "")
    if not a.strip() or not b.strip():
        st.info("Type two sentences that share a word.", icon=":material/keyboard:")
        return None
    return get_trace(a, choice), get_trace(b, choice)


def context_section(trace: Trace, choice: ModelChoice, pick: Pick) -> None:
    """Cosine similarity of a shared word across layers, and what the chosen head makes it look at."""
    st.markdown("The same word can mean different things: *bank* by a river is not *bank* for money. The model "
                "starts both from the same vector (the token's embedding); attention then mixes in the words "
                "around it. Pick a pair or type your own, then a word they share.")
    traces = _sentence_traces(choice)
    if traces is None:
        return
    ta, tb = traces
    common = shared_words(ta.text, tb.text)
    if not common:
        st.info("The two sentences share no word. Use the same word in both.", icon=":material/join:")
        return
    word = st.selectbox("Shared word", common, **remembered("word", common[0], common))
    pos_a, pos_b = word_positions(ta, word), word_positions(tb, word)
    if not pos_a or not pos_b:
        st.info(f"“{md(word)}” falls outside what the model reads of one of the sentences.",
                icon=":material/info:")
        return
    pa, pb = pos_a[0], pos_b[0]
    slug = re.sub(r"[^\w-]", "_", word)[:40]  # the word, safe in a file name
    stages = residual_stages(ta.config.n_layer)
    cosines = cosine_by_layer(ta, pa, tb, pb)
    st.plotly_chart(fitted(cosine_figure(cosines, [label for label, _ in stages], word)),
                    config=plot_config(f"context-{slug}-cosine"), key=PAGE.key("cosine"))
    moved = cosines[0] - cosines[1]
    position = (f"*+ position* adds the position embedding: {cosines[1]:.2f} here, "
                + ("a change from position alone, not context. " if abs(moved) >= 0.005 else
                   "no visible change: " + ("the word sits at the same position in both. " if pa == pb else
                                            "this model's position vectors are small beside its token's. "))
                if ta.config.positions == LEARNED else
                "this model has no position table (its positions act inside attention), so *+ position* "
                "changes nothing. ")
    notes = [f"Read at the word's last token: **{md(ta.tokens[pa])}** (position {pa} in A) and "
             f"**{md(tb.tokens[pb])}** (position {pb} in B). 1.0 means the same direction; lower means the "
             f"model now represents the word differently in the two sentences. {position}"
             f"Every change after it comes from the layers ({cosines[-1]:.2f} after the last): attention mixing "
             "in the other words, then the MLP."]
    if ta.ids[pa] != tb.ids[pb]:
        notes.append("The word is a different token in each sentence (e.g. capitalised, or without a leading "
                     "space), so the vectors differ already at the embedding.")
    if len(pos_a) > 1 or len(pos_b) > 1:
        notes.append("The word appears more than once; this uses its first appearance in each sentence.")
    st.caption("  \n".join(notes))
    st.download_button("Download the similarities (CSV)",
                       pd.DataFrame({"stage": [csv_text(label) for label, _ in stages],
                                     "hook": [h for _, h in stages], "cosine": cosines}).to_csv(index=False),
                       file_name=f"context-{slug}-cosine.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:")

    st.markdown(f"**What “{md(word)}” looks at** with layer {pick.layer}, head {pick.head} (pick another above):")
    left, right = st.columns(2)
    rows = []
    for col, t, p, name in ((left, ta, pa, "A"), (right, tb, pb, "B")):
        with col:
            row = t.act[f"blocks.{pick.layer}.attn.hook_pattern"][pick.head, p]  # [pos]
            st.plotly_chart(fitted(attention_bars(row, t.tokens, p, f"Sentence {name}")),
                            config=plot_config(f"context-{slug}-{name}-L{pick.layer}H{pick.head}"),
                            key=PAGE.key(f"context_bars_{name}"))
            rows += [(name, j, csv_text(t.tokens[j]), float(row[j])) for j in range(p + 1)]
    st.download_button("Download both rows of weights (CSV)",
                       pd.DataFrame(rows, columns=["sentence", "key_pos", "key_token", "weight"]).to_csv(index=False),
                       file_name=f"context-{slug}-L{pick.layer}H{pick.head}.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key=PAGE.key("context_rows_csv"))
