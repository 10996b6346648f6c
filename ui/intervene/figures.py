"""Figures of the Intervene page: the patching grid (clickable), distributions side by side, how a distribution
moved, and a text shaded token by token.

Signed values use the app's one diverging scale (ui.colours: blue positive, red negative, white zero); runs
side by side use Okabe-Ito colours and are named in the legend, so colour is never the only cue. Token text
goes through ui.text.plotly_text before Plotly and html.escape before HTML. Plotly heatmaps report no clicks
to Streamlit, so the grid carries an invisible point on every cell (as ui.patterns does).
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ..colours import DIVERGING, NEGATIVE, POSITIVE
from ..patterns import HIGHLIGHT, outline
from ..text import plotly_text

FONT = dict(size=15)
MONO = "ui-monospace, Menlo, Consolas, monospace"
LABEL_CHARS = 12
RUN_COLOURS = {"clean": "#0072B2", "corrupted": "#D55E00", "patched": "#009E73", "before": "#999999",
               "after": "#0072B2"}
HEAT_CSS = """
.gb-heat { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.05rem; line-height: 2.2; }
.gb-heat span { display: inline-block; padding: 0 0.15em; margin: 0 1px 2px 0; border-radius: 3px; white-space: pre;
  color: #111; line-height: 1.7; }
.gb-heat .gb-muted { color: #666; }
.gb-heat .gb-out { outline: 2px solid #D55E00; }
.gb-heat .gb-far { text-decoration: underline wavy #D55E00; }
"""


def _short(token: str) -> str:
    return token if len(token) <= LABEL_CHARS else token[:LABEL_CHARS - 1] + "…"


def _layout(fig: go.Figure, title: str, height: int, legend: bool = False, **kw) -> go.Figure:
    """The shared look; `title` is plain text (escaped here: it may hold tokens). `legend`: a row of legend
    under the title, in the top margin, where it never covers the title in a narrow column."""
    title_kw = dict(text=plotly_text(title), font=dict(size=17))
    if legend:
        height += 30
        title_kw |= dict(x=0.01, xref="container", y=1 - 8 / height, yref="container", yanchor="top")
        kw = dict(margin=dict(l=10, r=30, t=100, b=10),
                  legend=dict(orientation="h", font=dict(size=13), x=0.01, xref="container", xanchor="left",
                              y=1 - 44 / height, yref="container", yanchor="top")) | kw
    kw = dict(margin=dict(l=10, r=10, t=70, b=10)) | kw
    fig.update_layout(title=title_kw, height=height, font=FONT, plot_bgcolor="white", **kw)
    return fig


def grid_figure(recovered: np.ndarray, logit_diffs: np.ndarray, columns: Sequence[str], what: str, title: str,
                chosen: tuple[int, int] | None = None) -> go.Figure:
    """recovered [layer, column]: the share of the logit difference each patch recovers, on the diverging
    scale fixed at ±1 (beyond it, the end colours: the hover says the value). `columns`: plain labels of the
    positions or heads; `what`: "position" or "head". A click on a cell reports (layer, column)."""
    n_layer, n_col = recovered.shape
    ticks = [plotly_text(_short(c)) for c in columns]
    top = max(1.0, float(np.nanmax(np.abs(recovered))) if recovered.size else 1.0)
    fig = go.Figure(go.Heatmap(z=recovered.astype(np.float32), x=list(range(n_col)), y=list(range(n_layer)),
                               colorscale=DIVERGING, zmid=0, zmin=-min(top, 1.0), zmax=min(top, 1.0),
                               hoverinfo="skip", colorbar=dict(title="recovered", tickformat=".0%")))
    ys, xs = np.divmod(np.arange(n_layer * n_col), n_col)
    data = [[int(y), int(x), plotly_text(columns[x]), round(float(recovered[y, x]), 4),
             round(float(logit_diffs[y, x]), 4)] for y, x in zip(ys, xs)]
    fig.add_trace(go.Scattergl(
        x=xs, y=ys, mode="markers", marker=dict(size=14, opacity=0), showlegend=False, customdata=data,
        hovertemplate=(f"<b>layer %{{customdata[0]}}, {what} %{{customdata[1]}}</b> %{{customdata[2]}}<br>"
                       "recovers %{customdata[3]:.0%} of the difference<br>logit difference "
                       "%{customdata[4]:.3f}<extra>click for its distribution</extra>")))
    if chosen is not None and 0 <= chosen[0] < n_layer and 0 <= chosen[1] < n_col:
        y, x = chosen
        fig.update_layout(shapes=[outline(x - 0.5, x + 0.5, y - 0.5, y + 0.5)])
    fig.update_xaxes(tickvals=list(range(n_col)), ticktext=ticks, tickangle=-60 if what == "position" else 0,
                     tickfont=dict(family=MONO), title=what + ("s of the corrupted prompt" if what == "position"
                                                                else "s"))
    fig.update_yaxes(tickvals=list(range(n_layer)), title="layer", autorange="reversed")
    return _layout(fig, title, 170 + 34 * n_layer + (60 if what == "position" else 0), clickmode="event+select",
                   dragmode=False)


def runs_figure(labels: Sequence[str], runs: dict[str, Sequence[float]], title: str) -> go.Figure:
    """Grouped horizontal bars: each token's probability in each named run (clean, corrupted, patched; before,
    after)."""
    ticks = [plotly_text(t) for t in labels]
    fig = go.Figure()
    for name, values in runs.items():
        colour = RUN_COLOURS.get(name.split()[0], HIGHLIGHT)
        fig.add_bar(y=ticks, x=list(values), orientation="h", name=name, marker_color=colour,
                    text=[f"{v:.1%}" for v in values], textposition="outside", cliponaxis=False,
                    constraintext="none", textfont=dict(size=13),  # never shrunk to a thin bar's height
                    hovertemplate="%{y}: %{x:.2%}<extra>" + plotly_text(name) + "</extra>")
    top = max([v for vs in runs.values() for v in vs] + [0.01])
    fig.update_xaxes(range=[0, top * 1.15 + 0.06], tickformat=".0%", title="probability of the next token")
    fig.update_yaxes(autorange="reversed", tickfont=dict(family=MONO))
    return _layout(fig, title, 140 + (18 * len(runs) + 14) * len(labels), legend=True, barmode="group",
                   bargap=0.25)


def moved_figure(rose: Sequence[tuple[str, float]], fell: Sequence[tuple[str, float]], title: str) -> go.Figure:
    """The tokens whose log-probability rose most (blue) and fell most (red), as changes in nats."""
    rows = list(rose) + list(fell)
    fig = go.Figure(go.Bar(
        y=[plotly_text(t) for t, _ in rows], x=[v for _, v in rows], orientation="h",
        marker_color=[POSITIVE if v > 0 else NEGATIVE for _, v in rows],
        text=[f"{v:+.2f}" for _, v in rows], textposition="outside", cliponaxis=False, constraintext="none",
        textfont=dict(size=13),
        hovertemplate="%{y}: log-probability %{x:+.3f} nats<extra></extra>"))
    span = max([abs(v) for _, v in rows] + [0.1])
    fig.update_xaxes(range=[-span * 1.3, span * 1.3], title="change in log-probability (nats): rose, fell",
                     zeroline=True, zerolinecolor="#555")
    fig.update_yaxes(autorange="reversed", tickfont=dict(family=MONO))
    return _layout(fig, title, 130 + 32 * max(len(rows), 1))


def scores_figure(tokens: Sequence[str], a: Sequence[float], b: Sequence[float], names: tuple[str, str],
                  title: str) -> go.Figure:
    """Two methods' scores per input token, each scaled to its own largest |score| (so they compare), side by
    side; tokens where they part most carry a marker."""
    ticks = [f"{i + 1} {plotly_text(_short(t))}" for i, t in enumerate(tokens)]
    fig = go.Figure()
    for values, name, colour in ((a, names[0], RUN_COLOURS["clean"]), (b, names[1], RUN_COLOURS["corrupted"])):
        fig.add_bar(x=ticks, y=list(values), name=name, marker_color=colour,
                    hovertemplate="%{x}: %{y:+.2f}<extra>" + plotly_text(name) + "</extra>")
    fig.update_yaxes(range=[-1.15, 1.15], title="score ÷ its largest |score|", zeroline=True, zerolinecolor="#555")
    fig.update_xaxes(tickangle=-60, tickfont=dict(family=MONO))
    return _layout(fig, title, 430, legend=True, barmode="group", bargap=0.2)


def heat_html(tokens: Sequence[str], scores: Sequence[float] | None, titles: Sequence[str],
              outlined: Sequence[int] = (), far: Sequence[bool] | None = None, muted: int = 0) -> str:
    """The text token by token, each shaded by its score on the diverging scale (scores in -1..1; None: no
    shading); tokens at `outlined` indices get an outline, `far` ones a wavy underline, the first `muted` are
    grey (context). Every piece of text is escaped."""
    parts = ['<div class="gb-heat">']
    for i, token in enumerate(tokens):
        style = ""
        if scores is not None and i < len(scores):
            v = max(-1.0, min(1.0, scores[i]))
            colour = sample_colorscale(DIVERGING, [(v + 1) / 2])[0]
            style = f' style="background: {colour}' + ('; color: #fff"' if abs(v) > 0.6 else '"')  # dark: white text
        classes = " ".join(c for c, on in (("gb-out", i in outlined), ("gb-far", bool(far and far[i])),
                                           ("gb-muted", i < muted)) if on)
        parts.append(f'<span class="{classes}"{style} title="{html.escape(titles[i], quote=True)}">'
                     f"{html.escape(token)}</span>")
    return "".join(parts) + "</div>"

