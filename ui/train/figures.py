"""Figure builders for the Train page: the loss curve and the next-token distribution, with the tables
behind them for CSV download. Pure functions of engine objects (no widgets), so the live view, the
time-lapse and the before/after comparison draw the same way. Attention patterns are drawn with the
Attention page's own builders (ui/patterns.py: viridis, 0 to 1, the masked future left blank).

Colours: Okabe-Ito blue and vermilion, distinguishable with every common colour-vision deficiency.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch

from engine import Trace, display_token
from engine.train.runs import RunStatus

from ..text import csv_text, plotly_text

TRAIN_COLOUR, HELDOUT_COLOUR = "#0072B2", "#D55E00"  # Okabe-Ito blue and vermillion
MAX_LINE_POINTS = 1500  # longer loss histories are thinned for drawing (the CSV keeps every step)
OFF_CHART = 2.5  # losses above this many times the uniform-guess loss are cut from the chart
FONT = dict(size=15)


def label(token: str, width: int = 12) -> str:
    """A token's display form, shortened and escaped: Plotly reads a few HTML tags in labels."""
    short = token if len(token) <= width else token[: width - 1] + "…"
    return plotly_text(short)


def loss_table(status: RunStatus) -> pd.DataFrame:
    """Every step's training loss, with the held-out loss where it was measured."""
    train = pd.DataFrame(status.losses, columns=["step", "training loss"])
    val = pd.DataFrame(status.val_losses, columns=["step", "held-out loss"])
    return train.merge(val, on="step", how="outer").sort_values("step").reset_index(drop=True)


def loss_figure(status: RunStatus, vocab_size: int, height: int = 360) -> go.Figure:
    """Training loss per step and held-out loss per evaluation, on a fixed 0..max_steps axis so the curve
    visibly grows; a dotted line marks the loss of guessing uniformly (ln vocabulary size)."""
    fig = go.Figure()
    losses = status.losses
    stride = max(1, math.ceil(len(losses) / MAX_LINE_POINTS))
    shown = losses[::stride] + (losses[-1:] if losses and (len(losses) - 1) % stride else ())
    if shown:
        fig.add_trace(go.Scatter(x=[s for s, _ in shown], y=[v for _, v in shown], mode="lines",
                                 name="training text", line=dict(color=TRAIN_COLOUR, width=1.5),
                                 hovertemplate="step %{x}: %{y:.3f}<extra>training</extra>"))
    if status.val_losses:
        fig.add_trace(go.Scatter(x=[s for s, _ in status.val_losses], y=[v for _, v in status.val_losses],
                                 mode="lines+markers", name="held-out text",
                                 line=dict(color=HELDOUT_COLOUR, width=2.5), marker=dict(symbol="diamond", size=8),
                                 hovertemplate="step %{x}: %{y:.3f}<extra>held-out</extra>"))
    uniform = math.log(max(2, vocab_size))
    top = max([v for _, v in status.losses] + [v for _, v in status.val_losses] + [0.0])
    if top > OFF_CHART * uniform:  # a diverging run: keep the interesting range in view, say what is cut
        fig.update_yaxes(range=[0, OFF_CHART * uniform])
        fig.add_annotation(text=f"the loss went off the chart, up to {top:.3g}", x=0.5, xref="paper", y=1,
                           yref="paper", showarrow=False, font=dict(color=HELDOUT_COLOUR))
    fig.add_hline(y=uniform, line=dict(color="#555", dash="dot", width=1),
                  annotation_text=f"guessing uniformly ({uniform:.2f})", annotation_position="top right")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT,
                      legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom"),
                      xaxis=dict(title="training step", range=[0, max(1, status.max_steps)]),
                      yaxis=dict(title="loss (nats per token)", rangemode="tozero"),
                      hovermode="x unified", uirevision="loss")  # keep the user's zoom across live updates
    return fig


def next_token_table(trace: Trace, tokenizer: Any, k: int = 10) -> pd.DataFrame:
    """The k most likely next tokens after the trace's last token, with their probabilities."""
    probs = trace.probs(-1)  # [vocab]
    top = torch.topk(probs, min(k, probs.numel()))
    return pd.DataFrame({"token": [display_token(tokenizer, int(i)) for i in top.indices],
                         "id": [int(i) for i in top.indices],
                         "probability": [float(p) for p in top.values]})


def next_token_csv(table: pd.DataFrame) -> str:
    """The table as CSV; a token starting with = + - @ gets a quote so spreadsheets do not run it."""
    return table.assign(token=table["token"].map(csv_text)).to_csv(index=False)


def next_token_figure(table: pd.DataFrame, title: str = "Next token", height: int = 360) -> go.Figure:
    """Horizontal bars, most likely first, each labelled with its probability."""
    labels = [f"{label(t, 16)}  " for t in table["token"]]
    fig = go.Figure(go.Bar(
        x=table["probability"], y=list(range(len(table))), orientation="h", marker_color=TRAIN_COLOUR,
        text=[f"{p:.1%}" for p in table["probability"]], textposition="outside", cliponaxis=False,
        hovertemplate="%{customdata}: %{x:.2%}<extra></extra>", customdata=labels))
    fig.update_layout(title=dict(text=title, font=dict(size=16)), height=height, font=FONT,
                      margin=dict(l=10, r=40, t=40, b=10),
                      xaxis=dict(title="probability", range=[0, 1.15], tickformat=".0%"),
                      yaxis=dict(tickvals=list(range(len(table))), ticktext=labels, autorange="reversed"))
    return fig


def duration(seconds: float | None) -> str:
    """'45 s', '3 min 10 s', '1 h 02 min'."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
