"""Figures of attention patterns, shared by the Attention page and the Train page's time-lapse: one head large and
differences, plus the CSVs and the overview's block size. (The Attention page's "All heads", with every head at
once and one query's lines, is drawn in the browser: ui/views/attention.py; the line view here draws an NDIF model's,
which the server asks for one layer at a time.)

Weights use viridis (sequential, colour-blind-safe) on a fixed 0-1 scale, so heads compare at a glance;
differences use the shared diverging scale (ui.colours: RdBu, blue positive, red negative) centred on 0.
Positions after the query are blank: the causal mask hides them. Token text goes through ui.text.plotly_text
before it reaches Plotly, which renders some HTML.

Plotly heatmaps give no hover text per token pair, so a head's heatmap carries a layer of invisible scatter
points, one per visible cell, with both tokens in their hover text (and, when clickable, the click Streamlit sees:
Plotly heatmaps report no clicks to Streamlit, streamlit#8760).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from .colours import diverging_scale
from .text import csv_text, plotly_text

WEIGHTS = "Viridis"
HIGHLIGHT = "#D55E00"  # Okabe-Ito vermilion: the selected head, row or token
FONT = dict(size=15)
MONO = "ui-monospace, Menlo, Consolas, monospace"
LABEL_CHARS = 12  # longer token labels are shortened on axes (hover shows them whole)
MAX_TICKS = 48  # at most this many token labels per axis; past it every n-th is shown
OVERVIEW_CELLS = 16_000  # cells in the overview across all heads; longer texts are averaged into blocks
CLICK_CELLS = 12_000  # the largest single-head view that gets a clickable point per cell
LINE = "#0072B2"  # Okabe-Ito blue: the line view's lines (an NDIF model's view, drawn on the server)
LINE_BANDS = 20  # the line view draws weights in this many steps of thickness and darkness
LINE_LABELS = 40  # the line view gives every token a row up to this many, then only the most-weighted half as many


def short(token: str, n: int = LABEL_CHARS) -> str:
    return token if len(token) <= n else token[:n - 1] + "…"


def token_labels(tokens: Sequence[str], first: int = 0) -> list[str]:
    """'8 ␣fox': position and token, escaped and shortened; unique, so equal tokens stay apart on an axis."""
    return [f"{first + i} {plotly_text(short(t))}" for i, t in enumerate(tokens)]


def position_labels(tokens: Sequence[str]) -> list[str]:
    """'8 ␣fox' for every token, unescaped and whole: for CSV headers and table cells, not for Plotly."""
    return [f"{i} {t}" for i, t in enumerate(tokens)]


def share(w: float) -> str:
    """A weight as a percentage: '38%', or one decimal below 10% ('4.2%', '0.4%')."""
    return f"{w:.0%}" if w >= 0.095 else f"{w:.1%}"


def tick_step(n: int, most: int = MAX_TICKS) -> int:
    return max(1, math.ceil(n / most))


def _layout(fig: go.Figure, title: str, height: int, **kw: Any) -> go.Figure:
    kw = dict(margin=dict(l=10, r=10, t=70, b=10)) | kw
    fig.update_layout(title=dict(text=title, font=dict(size=17)), height=height, font=FONT,
                      plot_bgcolor="white", **kw)
    return fig


def outline(x0: float, x1: float, y0: float, y1: float, width: int = 3, xref: str = "x", yref: str = "y"
            ) -> dict[str, Any]:
    """A rectangle outlining the chosen head, row or cell, for `layout.shapes` (set all shapes in one go:
    Plotly's add_shape takes tens of milliseconds per call)."""
    return dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, xref=xref, yref=yref,
                line=dict(color=HIGHLIGHT, width=width))


def causal_nan(pattern: torch.Tensor) -> np.ndarray:
    """[q, k] as float32 numpy with the masked (future) cells set to NaN, so they draw blank. Plotly sends
    a numeric array as binary: float32 is half the bytes of float64, and more precise than any colour."""
    z = pattern.float().numpy().copy()
    z[np.triu_indices_from(z, k=1)] = np.nan
    return z


def overview_side(n_pos: int, n_heads: int) -> int:
    """Cells per side of each head's tile in the overview: the whole pattern when it fits the budget."""
    return max(1, min(n_pos, int(math.sqrt(OVERVIEW_CELLS / n_heads))))


def _token_axes(fig: go.Figure, rows: list[str], cols: list[str], x_most: int = MAX_TICKS) -> None:
    """Token labels on a heatmap's numeric axes: every n-th past MAX_TICKS rows or `x_most` columns (a narrow
    figure has room for fewer), key labels upright when there are many."""
    for axis, names, most in ((fig.update_yaxes, rows, MAX_TICKS), (fig.update_xaxes, cols, x_most)):
        step = tick_step(len(names), most)
        axis(tickmode="array", tickvals=list(range(0, len(names), step)), ticktext=names[::step], showgrid=False,
             zeroline=False, tickfont=dict(family=MONO, size=13 if len(names) > 24 else 14))
    if len(cols) > 6:
        fig.update_xaxes(tickangle=-90, tickfont=dict(size=12))
    fig.update_yaxes(autorange="reversed")


def _hover_points(fig: go.Figure, z: np.ndarray, labels: list[str], action: str) -> None:
    """Invisible points on the visible cells: hover text with both tokens, and a click Streamlit can see."""
    qs, ks = np.tril_indices(len(labels))
    fig.add_trace(go.Scattergl(
        x=ks, y=qs, mode="markers", showlegend=False, marker=dict(size=10, opacity=0),
        customdata=np.array([[int(q), labels[q], labels[k], float(v)] for q, k, v in zip(qs, ks, z[qs, ks])],
                            dtype=object),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="query %{customdata[1]}<br>key %{customdata[2]}<br>weight %{customdata[3]:.3f}"
                      f"<extra>{action}</extra>"))


def head_figure(pattern: torch.Tensor, tokens: Sequence[str], title: str, query: int | None = None,
                clickable: bool = True, x_most: int = 24) -> go.Figure:
    """One head's pattern [q, k] with token labels on both axes; `query`'s row is outlined. Up to CLICK_CELLS
    visible cells, each carries an invisible point with the tokens in its hover text (and, when `clickable`,
    a click there picks its row). `x_most`: the most key labels the figure's width has room for."""
    n = len(tokens)
    labels = token_labels(tokens)
    z = causal_nan(pattern)
    points = n * (n + 1) // 2 <= CLICK_CELLS
    fig = go.Figure(go.Heatmap(
        z=z, colorscale=WEIGHTS, zmin=0, zmax=1, xgap=1 if n <= 40 else 0, ygap=1 if n <= 40 else 0,
        colorbar=dict(title=dict(text="weight", side="top"), thickness=10),
        hovertemplate="query position %{y}<br>key position %{x}<br>weight %{z:.3f}<extra></extra>",
        hoverinfo="skip" if points else None))
    if points:
        _hover_points(fig, z, labels, "click: use this query" if clickable else "")
    if query is not None:
        fig.update_layout(shapes=[outline(-0.5, query + 0.5, query - 0.5, query + 0.5)])
    _token_axes(fig, labels, labels, x_most)
    fig.update_xaxes(title="key: the token looked at")
    fig.update_yaxes(title="query: the token looking")
    height = int(np.clip(300 + 18 * n, 500, 950))
    return _layout(fig, title, height, hovermode="closest", dragmode=False)



def line_view_figure(weights: torch.Tensor, tokens: Sequence[str], query: int, title: str) -> go.Figure:
    """BertViz's line view for one query: the query on the left looks at the tokens on the right; lines run
    from it to each, thicker and darker for more weight. `weights` is the query's row of the pattern [pos].

    Up to LINE_LABELS tokens, every token it can see has its own row. Past that, rows of a few pixels would
    pile the labels into a stack, so only the LINE_LABELS // 2 keys with the most weight (and the query
    itself) get a row each, in text order and readable at any length, and one last row sums up the rest."""
    n = query + 1  # the mask hides everything after the query
    w = weights[:n].float().numpy()
    names = [plotly_text(short(t, 20)) for t in tokens[:n]]
    compact = n > LINE_LABELS
    keys = (sorted({query, *np.argsort(-w, kind="stable")[:LINE_LABELS // 2].tolist()}) if compact
            else list(range(n)))
    rows = len(keys) + compact  # the summary row
    row_px = 24 if compact else int(np.clip(900 / n, 18, 24))
    q_row = keys.index(query)
    font = dict(family=MONO, size=15 if row_px >= 20 else 13)
    kw = np.array([w[k] for k in keys])
    fig = go.Figure()
    # One trace per band of weights (a line's width is per trace): at most LINE_BANDS traces.
    bands = np.minimum((kw * LINE_BANDS).astype(int), LINE_BANDS - 1)
    for band in np.unique(bands):
        at = np.nonzero(bands == band)[0]
        mid = (band + 0.5) / LINE_BANDS
        fig.add_trace(go.Scatter(
            x=np.tile([0.31, 0.6, None], len(at)), y=np.stack([np.full(len(at), q_row), at,
                                                                np.full(len(at), np.nan)], 1).ravel(),
            mode="lines", line=dict(color=LINE, width=0.5 + 10 * mid), opacity=0.15 + 0.85 * mid,
            hoverinfo="skip", showlegend=False))
    left = [f"<b>{query} {names[query]}</b>" if compact else f"<b>{names[query]}</b>"]
    fig.add_trace(go.Scatter(  # left: the query, highlighted
        x=[0.3], y=[q_row], mode="text", textposition="middle left", showlegend=False, text=left,
        textfont=dict(font, color=HIGHLIGHT), hoverinfo="skip"))
    right = [(f"{k} {names[k]}" if compact else names[k]) + f"  {share(w[k])}" for k in keys]
    fig.add_trace(go.Scatter(  # right: the tokens it sees, with their weights
        x=[0.6] * len(keys), y=list(range(len(keys))), mode="markers+text", showlegend=False, text=right,
        textposition="middle right", textfont=dict(font, color="#111"),
        marker=dict(size=7, color=[HIGHLIGHT if k == query else LINE for k in keys]),
        customdata=np.array([[k, names[k], float(w[k])] for k in keys], dtype=object),
        hovertemplate="key %{customdata[0]} %{customdata[1]}: weight %{customdata[2]:.3f}<extra></extra>"))
    if compact:
        rest = float(w.sum() - kw.sum())
        fig.add_trace(go.Scatter(
            x=[0.6], y=[len(keys)], mode="text", textposition="middle right", showlegend=False, hoverinfo="skip",
            text=[f"… the other {n - len(keys):,} tokens together  {share(rest)}"],
            textfont=dict(font, color="#555")))
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[rows - 0.5, -0.8])
    height = int(np.clip(row_px * rows + 100, 240, 1200))
    return _layout(fig, title, height, margin=dict(l=10, r=10, t=60, b=10), dragmode=False)

def difference_figure(diff: torch.Tensor, tokens: Sequence[str], positions: Sequence[int], title: str
                      ) -> go.Figure:
    """A [n, n] difference of weights (A minus B) on the tokens two prompts share, on the shared diverging
    scale (blue: more weight in A, red: more in B). `positions` are the shared tokens' positions in A."""
    labels = [f"{p} {plotly_text(short(t))}" for p, t in zip(positions, tokens)]
    z = causal_nan(diff)
    pos = np.asarray(positions)
    where = np.dstack(np.meshgrid(pos, pos, indexing="ij")) if len(pos) else None  # [q, k, 2] positions in A
    fig = go.Figure(go.Heatmap(
        z=z, **diverging_scale(z, floor=0.05), customdata=where,
        xgap=1 if len(labels) <= 40 else 0, ygap=1 if len(labels) <= 40 else 0,
        colorbar=dict(title=dict(text="A − B<br>(blue: more in A)", side="top"), thickness=14),
        hovertemplate="query at %{customdata[0]}, key at %{customdata[1]} (positions in A)"
                      "<br>A − B %{z:+.3f}<extra></extra>"))
    _token_axes(fig, labels, labels)
    fig.update_xaxes(title="key (position in A)")
    fig.update_yaxes(title="query (position in A)")
    return _layout(fig, title, int(np.clip(300 + 18 * len(labels), 500, 950)), dragmode=False)


def matrix_csv(z: np.ndarray | torch.Tensor, rows: Sequence[str], cols: Sequence[str]) -> str:
    """A matrix as CSV with a header row and a label column (labels are raw token text, not HTML)."""
    z = z.numpy() if isinstance(z, torch.Tensor) else z
    frame = pd.DataFrame(z, index=[csv_text(r) for r in rows], columns=[csv_text(c) for c in cols])
    return frame.to_csv(index_label="query \\ key", float_format="%.6g")


def patterns_csv(patterns: torch.Tensor, tokens: Sequence[str]) -> str:
    """Every head's weights in long form: layer, head, query position and token, key position and token,
    weight. Masked (future) cells are left out."""
    n_layer, n_head, n, _ = patterns.shape
    qs, ks = np.tril_indices(n)
    names = np.array([csv_text(t) for t in tokens], dtype=object)
    frames = [pd.DataFrame({"layer": layer, "head": head, "query_pos": qs, "query_token": names[qs],
                            "key_pos": ks, "key_token": names[ks], "weight": patterns[layer, head].numpy()[qs, ks]})
              for layer in range(n_layer) for head in range(n_head)]
    return pd.concat(frames).to_csv(index=False, float_format="%.6g")
