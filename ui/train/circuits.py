"""Circuits forming while it trains: on the time-lapse, each checkpoint's head-type scores (previous token,
first token, induction) and its loss on the induction test, with the built-in model's final scores beside them
(engine.inspect.circuits).

The scores are the Attention page's "What kind of head?" figures, measured on the checkpoint's own weights:
the previous-token and first-token shares on the run's fixed prompt (the trace kept with the checkpoint), the
induction score on the repeated random sequence. They are computed once per run and kept in the session (a
few numbers per checkpoint); the built-in model's once per process.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.inspect.circuits import Scores, first_induction, scores
from engine.inspect.heads import INDUCTION_MIN
from engine.train.runs import TrainingRun
from engine.train.runspec import PROBE_PROMPT

from ..cache import get_trace
from ..models import ModelChoice, default_model
from ..plots import fitted, plot_config
from ..server import model_work
from ..terms import define
from .state import PAGE

HISTORY = PAGE.key("circuits")  # session key: (run id, snapshots, [Scores]) of the run shown
FIGURES = (("induction", "induction score", "#D55E00"), ("previous", "previous-token share", "#0072B2"),
           ("first", "first-token share (sink)", "#009E73"))
LOSS_FIRST, LOSS_REPEAT = "#999999", "#CC79A7"


def run_history(run: TrainingRun) -> list[Scores]:
    """Every checkpoint's scores, computed once per run (and again only when it has more checkpoints)."""
    snaps = run.snapshots()
    kept = st.session_state.get(HISTORY)
    if kept and kept[0] == run.id and kept[1] == len(snaps):
        return kept[2]
    with st.spinner("Measuring every head at every checkpoint…"), model_work():
        history = [scores(run.model_at(s), run.tokenizer, s.probe, s.step) for s in snaps]
    st.session_state[HISTORY] = (run.id, len(snaps), history)
    return history


@st.cache_resource(max_entries=2, show_spinner="Measuring the built-in model's heads…")
def _builtin(model_key: str, _choice: ModelChoice, probe: str) -> Scores:
    trace = get_trace(probe, _choice)
    with model_work():
        return scores(_choice.model, _choice.tokenizer, trace)


def builtin_scores(probe: str = PROBE_PROMPT) -> tuple[ModelChoice, Scores]:
    """The built-in model's scores on the same prompt (its finished state: what a longer training reached)."""
    choice = default_model()
    return choice, _builtin(choice.key, choice, probe)


def history_figure(history: list[Scores], builtin: Scores, step: int) -> go.Figure:
    """Top: the best head's score of each type at every checkpoint, the built-in model's as dotted lines. Bottom:
    the loss on the induction test's first (random) and second (repeated) copy. The slider's step is marked."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.56, 0.44],
                        subplot_titles=("The strongest head of each kind", "Loss on the induction test"))
    steps = [s.step for s in history]
    for figure, name, colour in FIGURES:
        ys = [s.best(figure)[0] for s in history]
        hover = [f"step {s.step:,}: {y:.2f} (layer {s.best(figure)[1]}, head {s.best(figure)[2]})"
                 for s, y in zip(history, ys)]
        fig.add_trace(go.Scatter(x=steps, y=ys, name=name, mode="lines+markers", line=dict(color=colour, width=2),
                                 marker=dict(size=6), hovertext=hover, hoverinfo="text"), row=1, col=1)
        theirs = builtin.best(figure)[0]
        if not math.isnan(theirs):
            fig.add_trace(go.Scatter(x=[steps[0], steps[-1]], y=[theirs, theirs], mode="lines", showlegend=False,
                                     line=dict(color=colour, width=1.5, dash="dot"), hoverinfo="text",
                                     hovertext=f"the built-in model: {theirs:.2f}"), row=1, col=1)
    fig.add_hline(y=INDUCTION_MIN, line=dict(color="#D55E00", width=1, dash="dash"), row=1, col=1,
                  annotation_text=f"induction head ≥ {INDUCTION_MIN:.1f}", annotation_font_size=13,
                  annotation_position="bottom right")
    if history and history[0].loss_first is not None:
        for attr, name, colour in (("loss_first", "first copy (random)", LOSS_FIRST),
                                   ("loss_repeat", "second copy (a repeat)", LOSS_REPEAT)):
            fig.add_trace(go.Scatter(x=steps, y=[getattr(s, attr) for s in history], name=name, mode="lines+markers",
                                     line=dict(color=colour, width=2), marker=dict(size=6, symbol="square"),
                                     hovertemplate="step %{x}: %{y:.2f} nats<extra>" + name + "</extra>"),
                          row=2, col=1)
    fig.add_vline(x=step, line=dict(color="#333", width=1.5))
    fig.update_yaxes(title_text="share / score", range=[0, 1.02], gridcolor="#e5e5e5", row=1, col=1)
    fig.update_yaxes(title_text="nats", gridcolor="#e5e5e5", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text="training step", gridcolor="#e5e5e5", row=2, col=1)
    fig.update_annotations(font=dict(size=14))
    fig.update_layout(height=520, font=dict(size=14), plot_bgcolor="white", margin=dict(l=10, r=20, t=110, b=10),
                      legend=dict(orientation="h", x=0, y=1.2, font=dict(size=13)))
    return fig


def history_frame(history: list[Scores]) -> pd.DataFrame:
    rows = []
    for s in history:
        row = {"step": s.step}
        for figure, name, _ in FIGURES:
            score, layer, head = s.best(figure)
            row[f"best {name}"], row[f"{name}: layer"], row[f"{name}: head"] = score, layer, head
        row["loss, first copy"], row["loss, second copy"] = s.loss_first, s.loss_repeat
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(history: list[Scores], n_layer: int) -> str:
    """When an induction head appeared in the run, in words (or why none did)."""
    found = first_induction(history)
    if found is None:
        best = max(history, key=lambda s: s.best("induction")[0] if s.stats.induction is not None else -1)
        score, layer, head = best.best("induction")
        if math.isnan(score):
            return "This model's context is too short to hold the induction test, so it is not measured."
        why = (" A model with one layer cannot form one: an induction head reads what a previous-token head in "
               "an earlier layer wrote." if n_layer < 2 else " They form where copying from earlier in the text "
               "pays: longer training, a longer context and text that repeats itself (names, phrases) help.")
        return (f"No head reached the induction threshold ({INDUCTION_MIN:.1f}) in this run: the best was layer "
                f"{layer}, head {head} with {score:.2f} at step {best.step:,}." + why)
    before = history[history.index(found) - 1] if history.index(found) > 0 else None
    score, layer, head = found.best("induction")
    drop = ""
    if before is not None and before.loss_repeat is not None and found.loss_repeat is not None:
        drop = (f" Between those checkpoints the loss on the repeated half went from {before.loss_repeat:.2f} to "
                f"{found.loss_repeat:.2f} nats (the random half: {found.loss_first:.2f}).")
    when = f"between step {before.step:,} and step {found.step:,}" if before else f"by step {found.step:,}"
    return (f"An induction head appeared {when}: layer {layer}, head {head} scores {score:.2f} on the induction "
            f"test at step {found.step:,}." + drop)


VIEW = PAGE.key("circuits_view")  # the container of either view
CHART = PAGE.key("circuits_chart")  # either view's chart (never both on one run): the tour's step scrolls to it


def circuits_panel(run: TrainingRun, step: int) -> None:
    """The time-lapse's circuits: drawn under its slider, marking the slider's step."""
    with st.container(key=VIEW):
        _panel(run, step)


def _panel(run: TrainingRun, step: int) -> None:
    st.markdown("**Circuits forming**", help=define("induction head"))
    history = run_history(run)
    if len(history) < 2:
        return
    builtin_choice, builtin = builtin_scores(run.spec.probe)
    st.plotly_chart(fitted(history_figure(history, builtin, step)), key=CHART,
                    config=plot_config("glassbox-circuits"))
    st.markdown(verdict(history, run.spec.model.n_layer))
    score, layer, head = builtin.best("induction")
    st.caption(f"Each checkpoint's strongest head of each kind, as the Attention page's *What kind of head?* "
               f"measures it on these weights: the share of attention on the previous token and on the first token "
               f"over the prompt, and the induction score on a repeated random sequence. Dotted: the built-in model "
               f"({builtin_choice.name}, fully trained), whose best induction head is layer {layer}, head {head} at "
               f"{score:.2f}. Below, the loss on that sequence: nothing predicts its random first copy, and an "
               "induction head predicts the second by copying.")
    st.download_button("Every checkpoint (CSV)", history_frame(history).to_csv(index=False),
                       f"glassbox-circuits-{run.id}.csv", "text/csv", key=PAGE.key("circuits_csv"),
                       icon=":material/download:")


def builtin_figure(builtin: Scores, name: str) -> go.Figure:
    """The built-in model's heads, one small heatmap per kind: [layer x head], 0 to 1."""
    kinds = [(f, n) for f, n, _ in FIGURES if getattr(builtin.stats, f) is not None]
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=[n for _, n in kinds], horizontal_spacing=0.08)
    for col, (figure, title) in enumerate(kinds, start=1):
        z = getattr(builtin.stats, figure).numpy()
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=1, colorscale="Viridis", showscale=col == len(kinds),
                                 colorbar=dict(thickness=12), texttemplate="%{z:.2f}", textfont=dict(size=13),
                                 hovertemplate="layer %{y}, head %{x}: %{z:.2f}<extra>" + title + "</extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="head", dtick=1, row=1, col=col)
        fig.update_yaxes(title_text="layer" if col == 1 else None, dtick=1, autorange="reversed", row=1, col=col)
    fig.update_annotations(font=dict(size=14))
    n_layer = builtin.stats.previous.shape[0]
    fig.update_layout(title=dict(text=f"Every head of {name}, fully trained", font=dict(size=17)),
                      height=min(440, 170 + 40 * n_layer), font=dict(size=14), margin=dict(l=10, r=20, t=90, b=10))
    return fig


def preview() -> None:
    """Before a run: what the time-lapse will show, with the built-in model's heads for reference."""
    with st.container(key=VIEW):
        _preview()


def _preview() -> None:
    choice, builtin = builtin_scores()
    score, layer, head = builtin.best("induction")
    prev, p_layer, p_head = builtin.best("previous")
    ended = ("with an induction head: layer" if score >= INDUCTION_MIN else
             "without one: its best candidate is layer")
    st.markdown(f"After a run, the time-lapse measures every head at every checkpoint, so you can see the step "
                f"where an **induction head** forms, if it does. For reference, the built-in model "
                f"({choice.name}) ended its training {ended} {layer}, head {head} scoring {score:.2f} on the "
                f"induction test ({INDUCTION_MIN:.1f} or more counts); layer {p_layer}, head {p_head} puts "
                f"{prev:.0%} of its attention on the previous token.", help=define("induction head"))
    st.plotly_chart(fitted(builtin_figure(builtin, choice.name)), key=CHART,
                    config=plot_config("glassbox-circuits-builtin"))
    st.caption("The same figures as the Attention page's *What kind of head?*: the share of attention on the "
               "previous token and on the first token over the prompt “" + PROBE_PROMPT + "”, and the induction "
               "score on a repeated random sequence. Colour: viridis, 0 to 1.")
