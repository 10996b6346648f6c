"""Figure builders for the residual stream (what each part writes; the logit lens's CSV and row names: the lens
itself is drawn in the browser, ui/views/lens.py) and for where a model's parameters live. Plain functions from
engine results to Plotly figures and tables; no Streamlit calls.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from engine.inspect.lens import Contributions, Lens
from engine.inspect.params import KnownModel, ParamGroup, part_totals

from ..colours import NEGATIVE, POSITIVE, diverging_scale
from ..plots import MIN_FONT_PX
from .figures import FONT, WIDE_TICKS, esc, token_ticks

POS_COLOUR, NEG_COLOUR, TOTAL_COLOUR = POSITIVE, NEGATIVE, "#555555"  # ui.colours' blue and red, and grey
PART_COLOURS = {"Embeddings": "#440154", "Attention": "#3b528b", "MLP": "#21918c", "Layer norms": "#5ec962",
                "Final norm": "#b5de2b", "Output layer": "#fde725", "Other": "#999999"}  # viridis steps
Decode = Callable[[int], str]  # token id -> display form


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=36, b=10), title=dict(text=title, font=dict(size=14)))
    return fig


def part_heatmap(values, parts: Sequence[str], tokens: Sequence[str], signed: bool, title: str,
                 first_position: int = 0) -> go.Figure:
    """Parts (rows) x tokens (columns). signed: the shared diverging scale (blue = towards the prediction),
    else viridis."""
    z = np.asarray(values)
    positions = list(range(first_position, first_position + len(tokens)))
    scale = diverging_scale(z) if signed else dict(colorscale="Viridis")
    fig = go.Figure(go.Heatmap(
        z=z, x=positions, y=list(parts), **scale, colorbar=dict(title="logit" if signed else "norm"),
        customdata=np.array([[esc(t) for t in tokens]] * len(parts)),
        hovertemplate="%{y}, position %{x}: %{customdata}<br>%{z:.3f}<extra></extra>",
    ))
    fig.update_xaxes(title="token", tickangle=-60, tickfont=FONT, **token_ticks(tokens, first_position, WIDE_TICKS))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, min(900, 170 + 28 * len(parts)))


def contribution_waterfall(c: Contributions, pos: int, decode: Decode) -> go.Figure:
    """How the final prediction's logit at one position adds up, part by part, to the model's real logit."""
    labels = list(c.parts) + ["final norm's bias", "logit"]
    values = [float(v) for v in c.direct[:, pos]] + [float(c.bias[pos]), float(c.target_logits[pos])]
    fig = go.Figure(go.Waterfall(
        orientation="v", x=labels, y=values, measure=["relative"] * (len(labels) - 1) + ["total"],
        increasing=dict(marker=dict(color=POS_COLOUR)), decreasing=dict(marker=dict(color=NEG_COLOUR)),
        totals=dict(marker=dict(color=TOTAL_COLOUR)), connector=dict(line=dict(color="#bbb")),
        hovertemplate="%{x}: %{y:+.3f}<extra></extra>",
    ))
    fig.update_xaxes(tickangle=-40)
    fig.update_yaxes(title="logit of the prediction")
    target = esc(decode(int(c.target_ids[pos])))
    return _layout(fig, f"Position {pos}: who pushes towards the prediction “{target}” (blue up, red down)", 380)


EMBEDDINGS_TICK = "embeddings: the input itself (tied)"  # the lens's first row, named where it is drawn
UNTIED_TICK = "embeddings"


def embeddings_note(lens: Lens, ids: Sequence[int], tied: bool) -> str:
    """What the embeddings row shows, measured: how often its top token is the input token itself. `ids` are the
    input tokens of the positions the lens holds."""
    top = lens.top_ids[0, :, 0]  # [pos]: the embeddings row's top token
    same = float((top == torch.as_tensor(list(ids), dtype=top.dtype)).float().mean())
    p_top = float(lens.top_probs[0, :, 0].mean())
    if tied:
        return (f"The embeddings row's top token is the input token itself at {same:.0%} of the positions (with "
                f"{p_top:.0%} probability on average): the output layer is the token embedding (the weights are "
                "tied), so reading the embeddings back through it finds the token they came from. The colour is the "
                "final prediction's probability, which is why that row is dark. Predictions start with the first "
                "block.")
    return ("The embeddings row reads the input embeddings through the output layer, a separate matrix in this "
            f"model (its weights are not tied): its top token is the input token at {same:.0%} of the positions, "
            "an early, rough guess; predictions sharpen through the blocks.")


def lens_frame(lens: Lens, tokens: Sequence[str], decode: Decode, first_position: int = 0) -> pd.DataFrame:
    """Every stage and position, long format: the CSV behind the lens heatmap."""
    rows = []
    for s, stage in enumerate(lens.stages):
        for p, token in enumerate(tokens):
            rows.append({"stage": stage, "position": first_position + p, "token": token,
                         "final prediction": decode(int(lens.target_ids[p])),
                         "final prediction p": float(lens.target_probs[s, p]),
                         "final prediction rank": int(lens.target_ranks[s, p]) + 1,
                         "top token": decode(int(lens.top_ids[s, p, 0])),
                         "top token p": float(lens.top_probs[s, p, 0])})
    return pd.DataFrame(rows)


def params_frame(groups: Sequence[ParamGroup], total: int) -> pd.DataFrame:
    return pd.DataFrame({
        "part": [g.part for g in groups],
        "block": [str(g.layer) if g.layer is not None else "–" for g in groups],
        "what": [g.name for g in groups],
        "parameters": [g.count for g in groups],
        "share": [g.count / total for g in groups],
        "tensors": [g.shape for g in groups],
    })


def params_treemap(groups: Sequence[ParamGroup], model_name: str) -> go.Figure:
    """Model -> part -> block, areas proportional to parameter counts; click a box to zoom in."""
    totals = part_totals(list(groups))
    total = sum(totals.values())
    ids, labels, parents, values, colours, hover = ["model"], [esc(model_name)], [""], [total], ["#ffffff"], ["all"]
    for part, n in totals.items():
        ids.append(part)
        labels.append(part)
        parents.append("model")
        values.append(n)
        colours.append(PART_COLOURS[part])
        hover.append(part)
    for g in groups:
        if g.layer is None:
            continue  # a part outside the blocks is a single box already
        ids.append(f"{g.part}/{g.layer}")
        labels.append(f"block {g.layer}")
        parents.append(g.part)
        values.append(g.count)
        colours.append(PART_COLOURS[g.part])
        hover.append(esc(g.shape))
    fig = go.Figure(go.Treemap(
        ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
        marker=dict(colors=colours), customdata=hover, textinfo="label+value+percent root",
        hovertemplate="%{label}: %{value:,} parameters (%{percentRoot:.1%})<br>%{customdata}<extra></extra>",
    ))
    # A box too small for readable text shows none (its hover still names it): Plotly would shrink the text to
    # fit, down to a fraction of a pixel.
    fig.update_layout(uniformtext=dict(minsize=MIN_FONT_PX, mode="hide"))
    return _layout(fig, "Where the parameters live (click a box to zoom in)", 460)


def comparison_chart(n_params: int, model_name: str, known: Sequence[tuple[KnownModel, float]]) -> go.Figure:
    """This model among well-known ones, on a log scale (each step of the axis is 10 times more)."""
    rows = sorted([(m.name, m.params, f"{ratio:,.0f}× this model", m.note) for m, ratio in known]
                  + [(model_name, n_params, "this model", "the model you are looking at")], key=lambda r: r[1])
    ours = [r[0] == model_name and r[2] == "this model" for r in rows]
    fig = go.Figure(go.Bar(
        x=[r[1] for r in rows], y=[esc(r[0]) for r in rows], orientation="h",
        marker_color=["#e66101" if o else "#3b528b" for o in ours], text=[r[2] for r in rows],
        textposition="outside", cliponaxis=False, customdata=[[esc(r[3])] for r in rows],
        hovertemplate="%{y}: %{x:,} parameters<br>%{customdata[0]}<extra></extra>",
    ))
    fig.update_xaxes(type="log", title="parameters (log scale: each gridline is 10 times more)",
                     range=[np.log10(min(r[1] for r in rows)) - 0.3, np.log10(max(r[1] for r in rows)) + 1.2])
    _layout(fig, "How big is this model?", 120 + 34 * len(rows))
    fig.update_layout(margin=dict(r=150))  # room for the label of the largest bar
    return fig


def comparison_frame(n_params: int, model_name: str, known: Sequence[tuple[KnownModel, float]]) -> pd.DataFrame:
    rows = [{"model": model_name, "parameters": n_params, "times this model": 1.0, "year": None,
             "note": "the model you are looking at"}]
    rows += [{"model": m.name, "parameters": m.params, "times this model": ratio, "year": m.year, "note": m.note}
             for m, ratio in known]
    return pd.DataFrame(rows)
