"""The Attention page on a model that runs on NDIF: one layer's heads at a time, asked for as they are picked.

A local model's page draws every layer and head of one cached Trace. Llama-3.1-405B has 126 x 128 heads, whose
weights at 256 tokens are about 4 GB: here a view reads one layer's heads (a TraceRequest), which the job
rebuilds from q and k next to the model. Picking a head or a query token in that layer redraws from what came
back; picking another layer asks for it (one more job, shared by every session asking the same). The layer,
head and query token are the page's own remembered settings, so links and the tour work the same.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
import torch.nn.functional as F

from engine.remote import Selective, TraceRequest

from ..cache import reading
from ..models import ModelChoice
from ..ndif import figure, precision_note
from ..patterns import WEIGHTS, head_figure, line_view_figure
from ..plots import MIN_FONT_PX, fitted, plot_config
from ..terms import define
from .state import _QUERY_OF, PAGE, head_click_args, keep_query, remembered

TOP_KEYS = 8  # rows of the "looks at most" table

ROW = 16  # heads per row of the layer's overview
TILE_PX = 48  # the most cells per side of one head's tile there


def layer_figure(patterns: torch.Tensor, layer: int, head: int) -> go.Figure:
    """One layer's heads [head, q, k] as tiles, ROW to a row (head h at row h // ROW, column h % ROW), the chosen
    head outlined; each tile averages blocks of cells when the text is longer than TILE_PX tokens."""
    n_head, n, _ = patterns.shape
    side = min(n, TILE_PX)
    pooled = F.adaptive_avg_pool2d(patterns.float()[:, None], side)[:, 0] if side < n else patterns.float()
    causal = F.adaptive_avg_pool2d(torch.ones(1, 1, n, n).tril(), side)[0, 0] if side < n else torch.ones(n, n).tril()
    cols, rows = min(ROW, n_head), math.ceil(n_head / ROW)
    gap = max(1, side // 8)
    step = side + gap
    z = np.full((rows * step - gap, cols * step - gap), np.nan, dtype=np.float32)
    for h in range(n_head):
        r, c = divmod(h, ROW)
        z[r * step:r * step + side, c * step:c * step + side] = np.where(causal > 0, pooled[h].numpy(), np.nan)
    fig = go.Figure(go.Heatmap(z=z, colorscale=WEIGHTS, zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    r, c = divmod(head, ROW)
    fig.add_shape(type="rect", x0=c * step - 0.5 - gap / 2, x1=c * step + side - 0.5 + gap / 2,
                  y0=r * step - 0.5 - gap / 2, y1=r * step + side - 0.5 + gap / 2, line=dict(color="#D55E00", width=3))
    centres = [i * step + (side - 1) / 2 for i in range(max(rows, cols))]
    font = dict(size=MIN_FONT_PX + 1)
    # One row: the ticks are the heads. More: a head is its row's first head plus its column.
    fig.update_xaxes(tickvals=centres[:cols], ticktext=[str(i) for i in range(cols)], side="bottom", tickfont=font,
                     title="head" if rows == 1 else "head = the row's first head + this", showgrid=False,
                     zeroline=False)
    fig.update_yaxes(tickvals=centres[:rows], ticktext=[str(i * ROW) for i in range(rows)], autorange="reversed",
                     title="row's first head" if rows > 1 else None, showticklabels=rows > 1, tickfont=font,
                     showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_layout(title=dict(text=f"Layer {layer}: all {n_head} heads", font=dict(size=16)),
                      height=int(np.clip(110 + 800 * rows / cols, 220, 620)), font=dict(size=14),
                      margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white", dragmode=False)
    return fig


def remote_view(text: str, choice: ModelChoice) -> None:
    """The page's view of an NDIF model: pick a layer (a job), then its heads and a query token (no job)."""
    cfg = choice.model.config
    cols = st.columns([1, 1, 2.2])
    layers, heads = range(cfg.n_layer), range(cfg.n_head)
    layer = int(cols[0].selectbox("Layer", layers, help="Each layer is one request to NDIF; a layer asked for "
                                  "once is kept for every session on this server.", **remembered("layer", 0, layers)))
    head = int(cols[1].selectbox("Head", heads, help=define("attention head", "Heads count from 0."),
                                 **remembered("head", 0, heads)))
    st.caption(f"On NDIF this page looks at one layer's {cfg.n_head} heads at a time: every head of all "
               f"{cfg.n_layer} layers would be {cfg.n_layer * cfg.n_head:,} patterns. The job rebuilds each weight as "
               "softmax(q·k / √d + mask) from the layer's own q and k, rotated by the model's own rotary positions, "
               "since NDIF's fused attention never writes the weights down. *How a weight is made*, *What kind of "
               "head?* and the comparisons run on the models this server runs.")
    sel = reading(text, choice, TraceRequest(layer=layer))
    if sel is None:
        return  # the job's state is drawn in its place
    last = len(sel) - 1
    if st.session_state.get(_QUERY_OF) != (choice.key, sel.text):  # a new text starts at its last token
        keep_query(choice.key, sel.text, last)
    positions = range(len(sel))
    query = int(cols[2].selectbox("Query token (the token doing the looking)", positions,
                                  format_func=lambda i: f"{i} · {sel.tokens[i]}",
                                  **remembered("query", last, positions)))
    _draw(sel, layer, head, query)


def _draw(sel: Selective, layer: int, head: int, query: int) -> None:
    patterns = sel.act[f"blocks.{layer}.attn.hook_pattern"].float()  # [head, q, k]
    pattern = patterns[head]
    title = f"Layer {layer}, head {head}"
    note = precision_note(sel)
    if note:
        st.caption(note)
    st.plotly_chart(fitted(layer_figure(patterns, layer, head)), config=plot_config(f"ndif-layer-{layer}"),
                    key=PAGE.key("ndif_layer"))
    st.caption("Each tile is one head of this layer (the chosen one outlined), rows are queries and columns keys; "
               "viridis from 0 (dark purple) to 1 (yellow); blank cells are future tokens. Pick a head above to see "
               "it large.")
    large, side = st.columns([1.5, 1], gap="medium")
    with large:
        st.plotly_chart(fitted(head_figure(pattern, sel.tokens, title, query=query, x_most=20)),
                        config=plot_config(f"ndif-L{layer}H{head}"), **head_click_args(PAGE.key("ndif_detail")))
        st.caption("Each row sums to 1: how the query token shares its attention among itself and the tokens "
                   "before it. Click a row to pick its query token.")
    with side:
        st.plotly_chart(fitted(line_view_figure(pattern[query], sel.tokens, query, f"{title}, query {query}")),
                        config=plot_config(f"ndif-lines-L{layer}H{head}-q{query}"), key=PAGE.key("ndif_lines"))
        row = pattern[query, :query + 1]  # [keys]
        order = row.argsort(descending=True)[:TOP_KEYS].tolist()
        st.dataframe(pd.DataFrame({"position": order, "token": [sel.tokens[j] for j in order],
                                   "weight": [figure(float(row[j]), sel.digits) for j in order]}),
                     hide_index=True, key=PAGE.key("ndif_top_keys"))
