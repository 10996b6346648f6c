"""The Attention page's "What kind of head?" tab: the figures of every head and the heuristic label they give.

The induction score needs one extra model run, over a fixed repeated random sequence: it is cached per
model like a trace (process-wide for the shared default model, in the session for the session's own models).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine import Trace
from engine.inspect.heads import (BROAD_MIN, FIRST_MIN, INDUCTION_MIN, PREVIOUS_MIN, SELF_MIN, HeadLabel, HeadStats,
                                  MissingType, head_stats, induction_half, induction_trace, label_heads,
                                  missing_types, stacked_patterns)

from ..models import ModelChoice
from ..plots import MIN_FONT_PX, fitted, plot_config
from ..server import model_work
from ..views.payload import per_trace
from ..patterns import head_figure, matrix_csv, outline, position_labels
from .state import PAGE, Pick

_SESSION_INDUCTION = PAGE.key("induction_traces")  # session key: {model key: Trace} for session models

# (column, title, HeadStats field, threshold of its label or None)
FIGURES = (
    ("previous", "previous token", "previous", PREVIOUS_MIN),
    ("self", "itself", "self", SELF_MIN),
    ("first", "first token", "first", FIRST_MIN),
    ("entropy", "entropy (share of max)", "entropy_norm", BROAD_MIN),
    ("induction", "induction score", "induction", INDUCTION_MIN),
)


def _patterns_only(trace: Trace) -> Trace:
    """The test sequence's trace keeps only what this page reads of it, the patterns (GPT-2's whole trace of it
    is about 100 MB, its patterns 12)."""
    return replace(trace, act={k: v for k, v in trace.act.items() if k.endswith("hook_pattern")},
                   logits=trace.logits[:, :0])


@st.cache_resource(max_entries=4, show_spinner="Measuring induction on a repeated random sequence…")
def _shared_induction(model_key: str, _choice: ModelChoice) -> Trace | None:
    try:
        with model_work():
            return _patterns_only(induction_trace(_choice.model, _choice.tokenizer))
    except ValueError:  # a context too short for two copies
        return None


def induction_trace_for(choice: ModelChoice) -> Trace | None:
    """The trace of the repeated random sequence through `choice` (None if its context is too short)."""
    if choice.shared:
        return _shared_induction(choice.key, choice)
    cache: dict[str, Trace | None] = st.session_state.setdefault(_SESSION_INDUCTION, {})
    if choice.key not in cache:
        try:
            cache.clear()  # one entry: only the model in use matters
            with model_work():
                cache[choice.key] = _patterns_only(induction_trace(choice.model, choice.tokenizer))
        except ValueError:
            cache[choice.key] = None
    return cache[choice.key]


def stats_for(trace: Trace, choice: ModelChoice) -> HeadStats:
    """Every head's figures on the user's text, plus the induction score of the model's heads (once per trace)."""
    rep = induction_trace_for(choice)

    def build() -> HeadStats:
        if rep is None:
            return head_stats(stacked_patterns(trace))
        return head_stats(stacked_patterns(trace), stacked_patterns(rep), induction_half(trace.config.block_size))
    return per_trace(trace, ("head_stats", choice.key, rep is None), build)


def head_labels(trace: Trace, choice: ModelChoice) -> dict[tuple[int, int], HeadLabel]:
    """The heuristic label of every head, by (layer, head)."""
    stats = stats_for(trace, choice)
    return per_trace(trace, ("head_labels", choice.key), lambda: {
        (h.layer, h.head): h for h in label_heads(stats, first_is_marker=trace.has_bos)})


def stats_table(stats: HeadStats, labels: dict[tuple[int, int], HeadLabel]) -> pd.DataFrame:
    """One row per head: its label, the figure behind it, and all the figures."""
    rows = []
    for (layer, head), lab in labels.items():
        row = {"layer": layer, "head": head, "label": lab.label}
        for column, _, field, _ in FIGURES:
            values = getattr(stats, field)
            row[column] = float("nan") if values is None else float(values[layer, head])
        row["entropy (bits)"] = float(stats.entropy_bits[layer, head])
        row["why"] = lab.reason
        rows.append(row)
    return pd.DataFrame(rows)


def stats_figure(stats: HeadStats, selected: tuple[int, int]) -> go.Figure:
    """One small layer × head grid per figure, each cell written out (cividis, 0 to 1)."""
    shown = [f for f in FIGURES if getattr(stats, f[2]) is not None]
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[f"{title}" for _, title, _, _ in shown],
                        horizontal_spacing=0.04)
    n_layer, n_head = stats.previous.shape
    write = n_layer * n_head <= 64
    shapes = []
    for i, (_, title, field, threshold) in enumerate(shown, start=1):
        z = getattr(stats, field).numpy()
        fig.add_trace(go.Heatmap(
            z=z, zmin=0, zmax=1, colorscale="Cividis", showscale=i == len(shown), xgap=2, ygap=2,
            text=np.vectorize(lambda v: f"{v:.2f}")(z) if write else None, texttemplate="%{text}" if write else None,
            textfont=dict(size=MIN_FONT_PX + 1),  # fixed: Plotly shrinks cell text to fit, down to about 9 px
            colorbar=dict(title=dict(text="share<br>(cividis)", side="top"), thickness=12),
            hovertemplate=f"layer %{{y}}, head %{{x}}<br>{title} %{{z:.3f}}"
                          f"<br>label threshold {threshold:.2f}<extra></extra>"), row=1, col=i)
        layer, head = selected
        axis = "" if i == 1 else str(i)
        shapes.append(outline(head - 0.5, head + 0.5, layer - 0.5, layer + 0.5, xref=f"x{axis}", yref=f"y{axis}"))
    fig.update_xaxes(title="head", dtick=1, showgrid=False, zeroline=False, range=[-0.5, n_head - 0.5],
                     constrain="domain")
    for i in range(1, len(shown) + 1):  # square cells: each grid's y follows its own x
        fig.update_yaxes(scaleanchor=f"x{'' if i == 1 else i}", row=1, col=i)
    fig.update_yaxes(dtick=1, showgrid=False, zeroline=False, range=[n_layer - 0.5, -0.5], constrain="domain",
                     showticklabels=False)
    fig.update_yaxes(title="layer", showticklabels=True, col=1)
    height = int(np.clip(120 + 160 * n_layer / max(n_head, 1), 260, 560))
    fig.update_layout(height=height, font=dict(size=14), margin=dict(l=10, r=10, t=60, b=10),
                      plot_bgcolor="white", shapes=shapes)
    return fig


# What a larger model shows for a type this one lacks (Olsson et al. 2022, "In-context Learning and Induction
# Heads": induction heads form in every model of two or more layers they trained, early in training).
LARGER = {
    "induction": "induction heads appear in models of two or more layers trained long enough (Olsson et al. "
                 "2022); GPT-2 small has several, in its middle layers",
    "previous token": "larger models usually have clear previous-token heads in their first layers",
    "self": "a head that mostly attends to its own token is common in early layers of larger models",
    "first token (sink)": "larger models often park spare attention on the first token (an attention sink)",
    "broad": "larger models usually have some heads that average over everything they see",
}


def missing_text(m: MissingType) -> str:
    """One line on a head type no head of this model reaches: the closest head, the rule, what larger show."""
    return (f"**No {m.label} head** in this model on this text: the highest figure is {m.best:.2f} (layer "
            f"{m.layer}, head {m.head}), and the rule needs {m.threshold:.2f}. For comparison, {LARGER[m.label]}.")


def head_types_section(trace: Trace, choice: ModelChoice, pick: Pick) -> None:
    """Every head's figures, its heuristic label, and for the chosen head its pattern on the test sequence."""
    stats = stats_for(trace, choice)
    labels = head_labels(trace, choice)
    st.markdown(
        "Some heads do one recognisable job. From each head's weights on your text, and for induction on a "
        "fixed repeated random sequence, five figures: how much weight goes to the **previous token**, to the "
        "token **itself**, to the **first token** (the start marker), how **spread out** it is (entropy as a "
        "share of the most possible: 1 = even over everything it can see), and its **induction score**.")
    st.info("The labels are heuristics: a head is named by the first rule it passes "
            f"(induction ≥ {INDUCTION_MIN:.0%}, previous token ≥ {PREVIOUS_MIN:.0%}, self ≥ {SELF_MIN:.0%}, "
            f"first token ≥ {FIRST_MIN:.0%}, entropy ≥ {BROAD_MIN:.0%} of max → broad), else “mixed”. "
            "Real heads often do several things, and the figures depend on the text.",
            icon=":material/rule:")
    missing = missing_types(stats, list(labels.values()))
    if missing:
        st.markdown("  \n".join(missing_text(m) for m in missing))
    st.plotly_chart(fitted(stats_figure(stats, (pick.layer, pick.head))), config=plot_config("attention-head-figures"),
                    key=PAGE.key("head_figures"))
    table = stats_table(stats, labels)
    # The figures fit the page's width at 1280 px (a projector); the long "why" column and the entropy in bits
    # are in the CSV, and "why" of the chosen head is written out below.
    small = st.column_config.ProgressColumn(format="%.2f", min_value=0.0, max_value=1.0, width="small")
    st.dataframe(table.drop(columns=["why", "entropy (bits)"]), hide_index=True, key=PAGE.key("head_table"),
                 column_config={"layer": st.column_config.NumberColumn(width="small"),
                                "head": st.column_config.NumberColumn(width="small"),
                                "previous": small, "self": small, "first": small, "entropy": small,
                                "induction": small})
    st.download_button("Download the table with every figure and the reasons (CSV)",
                       table.to_csv(index=False), file_name="attention-head-types.csv",
                       mime="text/csv", icon=":material/download:", key=PAGE.key("head_table_csv"))
    label = labels[(pick.layer, pick.head)]
    st.subheader(f"Layer {pick.layer}, head {pick.head}: {label.label}")
    st.markdown(label.reason + ".")
    rep = induction_trace_for(choice)
    if rep is None:
        st.caption("This model's context is too short to hold a repeated sequence, so induction is not measured.")
        return
    half = induction_half(trace.config.block_size)
    pattern = rep.pattern(pick.layer, pick.head)  # [q, k]
    figure, words = st.columns([2, 1], gap="medium")
    title = f"Layer {pick.layer}, head {pick.head} on the test sequence"
    figure.plotly_chart(fitted(head_figure(pattern, rep.tokens, title, clickable=False)),
                        config=plot_config(f"attention-induction-L{pick.layer}H{pick.head}"),
                        key=PAGE.key("induction_pattern"))
    words.markdown(f"The test sequence: the start marker, then {half} random tokens, then the same {half} again. "
                   "An induction head, reading the second copy, looks at the token that came *after* the "
                   "current token's first appearance: a diagonal stripe that starts at the second copy's first "
                   f"row, {half - 1} places left of the main diagonal. Its mean weight on that stripe is the "
                   f"induction score: here **{float(stats.induction[pick.layer, pick.head]):.2f}**.")
    words.download_button("Download this pattern (CSV)",
                          lambda: matrix_csv(pattern, position_labels(rep.tokens), position_labels(rep.tokens)),
                          file_name=f"attention-induction-L{pick.layer}H{pick.head}.csv", mime="text/csv",
                          on_click="ignore", icon=":material/download:")
