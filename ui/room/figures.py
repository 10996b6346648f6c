"""The reveal's figure: the room's guesses and the model's probabilities, one bar pair per token on one axis.

Each token appears once (its display form, ␣ for a space), ordered by the model's probability; its room bar is
the share of the room that picked it (with the count on the bar), its model bar the model's probability. Colours
are Okabe-Ito, and the bars carry their numbers as text, so colour is never the only cue. Token text goes
through ui.text.plotly_text before it reaches Plotly.
"""
from __future__ import annotations

import plotly.graph_objects as go

from ..plots import MIN_FONT_PX, fitted
from ..text import plotly_text
from .game import Bar

ROOM, MODEL = "#D55E00", "#0072B2"  # Okabe-Ito vermilion and blue
MAX_BARS = 24  # tokens on the chart: the model's top ones and the room's guesses, most likely first
LABEL_CHARS = 14


def _label(bar: Bar, seen: set[str]) -> str:
    shown = bar.token if len(bar.token) <= LABEL_CHARS else bar.token[:LABEL_CHARS - 1] + "…"
    label = plotly_text(shown)
    if label in seen:  # two tokens that look alike (or shortened alike) stay two categories
        label = f"{label} ({bar.token_id})"
    seen.add(label)
    return label


def guesses_figure(bars: list[Bar], answers: int, height: int = 420) -> go.Figure:
    """Grouped bars: the room's share and the model's probability of each token."""
    bars = bars[:MAX_BARS]
    seen: set[str] = set()
    labels = [_label(b, seen) for b in bars]
    fig = go.Figure()
    room = f"the room ({answers} guess{'' if answers == 1 else 'es'})"
    fig.add_bar(x=labels, y=[100 * b.share for b in bars], name=room, marker_color=ROOM,
                text=[str(b.count) if b.count else "" for b in bars], textposition="outside",
                customdata=[[b.count, b.token_id] for b in bars],
                hovertemplate="%{x}: %{customdata[0]} guesses (%{y:.1f}% of the room)<extra></extra>")
    fig.add_bar(x=labels, y=[100 * b.prob for b in bars], name="the model", marker_color=MODEL,
                text=[f"{100 * b.prob:.1f}%" if b.prob >= 0.001 else "" for b in bars], textposition="outside",
                customdata=[[b.rank or 0] for b in bars],
                hovertemplate="%{x}: the model gives it %{y:.2f}% (rank %{customdata[0]})<extra></extra>")
    fig.update_layout(barmode="group", height=height, margin=dict(l=10, r=10, t=60, b=10),
                      font=dict(size=14), uniformtext=dict(minsize=MIN_FONT_PX, mode="show"),
                      legend=dict(orientation="h", y=1.12, x=0, font=dict(size=14)),
                      yaxis=dict(title="% of the room / probability (%)", rangemode="tozero",
                                 title_font=dict(size=13)),
                      xaxis=dict(type="category", tickfont=dict(size=14, family="ui-monospace, Menlo, monospace")))
    return fitted(fig)
