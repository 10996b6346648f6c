"""Figures of the key/value cache (ui/next_token/kv_cache.py): the cache as a strip per layer and head, what one
step appended, the bytes per token of known models, the measured time per token, and the tokens each step runs.

Colours: viridis for sizes (lengths of vectors), the page's diverging scale for signed numbers (ui.colours),
Okabe-Ito for lines and bars; every value is also in the hover, and the section offers each as a table.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from engine.inspect.kv import Timing, tokens_run
from engine.model.cost import size_text

from ..colours import diverging_scale
from ..patterns import token_labels
from ..text import plotly_text
from .figures import DRAWN, GRID, KEPT, LOG_TICKS, MONO, REST, layout

CACHED, RECOMPUTED, NEW = KEPT, DRAWN, "#D55E00"
ROW_PX = 14  # pixels per (layer, head) row of the strip, up to the figure's cap
TOKEN_TICKS = 40  # positions up to which each column is labelled with its token
MAX_HEIGHT = 440


def _rows(n_layer: int, n_kv: int) -> tuple[list[int], list[str]]:
    """Tick positions and labels of a [layer x kv_head] row axis: one label per layer."""
    ticks = [layer * n_kv + (n_kv - 1) / 2 for layer in range(n_layer)]
    return ticks, [f"layer {layer}" for layer in range(n_layer)]


def _layer_lines(n_layer: int, n_kv: int) -> list[dict]:
    return [dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=layer * n_kv - 0.5, y1=layer * n_kv - 0.5,
                 line=dict(color="white", width=2)) for layer in range(1, n_layer)]


def strip_figure(norms: torch.Tensor, tokens: Sequence[str], steps: Sequence[int], newest: tuple[int, int],
                 what: str, title: str) -> go.Figure:
    """The cache: one row per (layer, key/value head), one column per cached position, coloured by the length of
    the key (or value) stored there; `newest` = (first, end) positions this step wrote, outlined.

    norms [layer, kv_head, pos]; tokens, steps [pos]: each position's token (display form) and the step that
    appended it."""
    n_layer, n_kv, n_pos = norms.shape
    z = norms.reshape(n_layer * n_kv, n_pos).numpy()
    hover = [[f"layer {r // n_kv}, head {r % n_kv}<br>position {p}: {plotly_text(tokens[p])}<br>appended at step "
              f"{steps[p]}<br>|{what[0]}| = {z[r, p]:.3f}" for p in range(n_pos)] for r in range(n_layer * n_kv)]
    fig = go.Figure(go.Heatmap(z=z, colorscale="Viridis", hovertext=hover, hoverinfo="text",
                               colorbar=dict(title=dict(text=f"|{what[0]}|", font=dict(size=13)), thickness=12)))
    first, end = newest
    shapes = _layer_lines(n_layer, n_kv) + [dict(
        type="rect", xref="x", yref="paper", x0=first - 0.5, x1=end - 0.5, y0=0, y1=1,
        line=dict(color=NEW, width=3))]
    ticks, labels = _rows(n_layer, n_kv)
    height = min(MAX_HEIGHT, 130 + ROW_PX * n_layer * n_kv)
    xaxis = dict(title="position in the cache", showgrid=False, range=[-0.5, max(n_pos, 8) - 0.5])
    if n_pos <= TOKEN_TICKS:  # few enough to name: each column's token under it
        xaxis.update(title="position in the cache: its token", tickvals=list(range(n_pos)), tickangle=-45,
                     ticktext=token_labels(tokens),
                     tickfont=dict(family=MONO, size=12))
    return layout(fig, title, height + (50 if n_pos <= TOKEN_TICKS else 0), top=60, shapes=shapes, xaxis=xaxis,
                  yaxis=dict(tickvals=ticks, ticktext=labels, autorange="reversed", showgrid=False))


def appended_figure(keys: torch.Tensor, values: torch.Tensor, title: str) -> go.Figure:
    """The key and the value one position holds in every layer and key/value head: [layer, kv_head, d_head] each,
    side by side, one row per (layer, head), one column per number."""
    n_layer, n_kv, d = keys.shape
    k = keys.reshape(n_layer * n_kv, d).numpy()
    v = values.reshape(n_layer * n_kv, d).numpy()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("key", "value"), horizontal_spacing=0.06)
    for col, z in ((1, k), (2, v)):
        fig.add_trace(go.Heatmap(z=z, **diverging_scale(z), showscale=col == 2, colorbar=dict(thickness=12),
                                 hovertemplate="row %{y}, number %{x}: %{z:.3f}<extra></extra>"), row=1, col=col)
    ticks, labels = _rows(n_layer, n_kv)
    for col in (1, 2):
        fig.update_yaxes(tickvals=ticks, ticktext=labels if col == 1 else [""] * len(labels), autorange="reversed",
                         showgrid=False, row=1, col=col)
        fig.update_xaxes(title_text=f"its {d} numbers", showgrid=False, row=1, col=col)
    fig.update_annotations(font=dict(size=14))
    return layout(fig, title, min(MAX_HEIGHT, 150 + ROW_PX * n_layer * n_kv), top=70)


def bytes_figure(names: Sequence[str], per_token: Sequence[int], notes: Sequence[str], title: str) -> go.Figure:
    """Horizontal bars on a log axis: the cache's bytes per token of each model."""
    colours = [DRAWN if i == 0 else KEPT for i in range(len(names))]
    fig = go.Figure(go.Bar(x=list(per_token), y=[plotly_text(n) for n in names], orientation="h",
                           marker_color=colours, text=[size_text(b) for b in per_token], textposition="outside",
                           hovertext=[plotly_text(n) for n in notes], hoverinfo="text+x"))
    top = max(per_token)
    ticks = [2**e for e in range(0, 41, 2) if min(per_token) / 4 <= 2**e <= top * 4]  # 1 KB, 4 KB, 16 KB, ...
    return layout(fig, title, 80 + 46 * len(names), top=50,
                  xaxis=dict(type="log", title="bytes per token (log scale)", gridcolor=GRID, tickvals=ticks,
                             ticktext=[size_text(t) if t >= 1024 else f"{t} B" for t in ticks],
                             range=[np.log10(min(per_token)) - 0.3, np.log10(top) + 0.6]),
                  yaxis=dict(autorange="reversed"))


def timing_figure(t: Timing, title: str) -> go.Figure:
    """Milliseconds per new token against the tokens already in the context, with the cache and without."""
    x_c = [t.start_len + i for i in range(len(t.cached))]
    x_r = [t.start_len + i for i in range(len(t.recomputed))]
    fig = go.Figure()
    fig.add_scatter(x=x_r, y=[1000 * s for s in t.recomputed], name="full recompute per token", mode="lines+markers",
                    line=dict(color=RECOMPUTED, width=2), marker=dict(size=5),
                    hovertemplate="%{x} tokens before it: %{y:.2f} ms<extra></extra>")
    fig.add_scatter(x=x_c, y=[1000 * s for s in t.cached], name="on the key/value cache", mode="lines+markers",
                    line=dict(color=CACHED, width=2), marker=dict(size=5, symbol="square"),
                    hovertemplate="%{x} tokens before it: %{y:.2f} ms<extra></extra>")
    return layout(fig, title, 340, xaxis=dict(title="tokens in the context before the new one", gridcolor=GRID),
                  yaxis=dict(title="ms per new token (log scale)", type="log", gridcolor=GRID, tickvals=LOG_TICKS))


def tokens_run_figure(n_prompt: int, n_steps: int, block: int, view: int, title: str) -> go.Figure:
    """Bars: how many tokens the model runs on at each generation step (ContextWindow's rule: the prompt, then
    one per step, then the whole window once it slides); the viewed step outlined."""
    steps = list(range(1, n_steps + 1))
    runs = [tokens_run(n_prompt, s, block) for s in steps]
    colours = [REST if s == 1 else (CACHED if r == 1 else RECOMPUTED) for s, r in zip(steps, runs)]
    fig = go.Figure(go.Bar(x=steps, y=runs, marker_color=colours,
                           marker_line=dict(color=["#000" if s == view else "rgba(0,0,0,0)" for s in steps], width=2),
                           hovertemplate="step %{x}: the model ran on %{y} tokens<extra></extra>"))
    full = next((s for s, r in zip(steps, runs) if s > 1 and r > 1), None)
    if full is not None:
        fig.add_vline(x=full - 0.5, line_dash="dash", line_color="#444", annotation_text="window full: it slides",
                      annotation_position="top left", annotation_font_size=13)
    return layout(fig, title, 300, top=50, showlegend=False,
                  xaxis=dict(title="generation step", gridcolor=GRID),
                  yaxis=dict(title="tokens run (log scale)", type="log", gridcolor=GRID, tickvals=LOG_TICKS))
