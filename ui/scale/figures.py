"""The Scale ladder's figures: when each model settles on its answer (the logit lens's probability of the final
answer, layer by layer, on a depth axis from 0 to 1 so models of 12 and 126 layers share it), and the table
of rungs. Colours are Okabe-Ito, each line also has its own marker and its name in the legend.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..plots import MIN_FONT_PX
from ..text import plotly_text
from .ladder import Answer

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")


def pct(p: float, digits: int | None) -> str:
    """A probability as a percentage with no more digits than it carries (3 significant at most)."""
    d = 3 if digits is None else min(3, digits)
    return f"{100 * p:.{d}g}%"


def size(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)


def rungs_table(answers: list[Answer]) -> pd.DataFrame:
    """One row per rung, smallest model first: size, shape, time, next-token candidates, entropy."""
    rows = []
    for a in sorted(answers, key=lambda a: a.n_params):
        heads = f"{a.n_head} ({a.n_kv_head} key/value)" if a.n_kv_head < a.n_head else str(a.n_head)
        rows.append({"model": a.name, "runs": a.where, "parameters": size(a.n_params), "layers": a.n_layer,
                     "heads per layer": heads, "time (s)": seconds(a.seconds),
                     "next token": "  ".join(f"{t} {pct(p, a.digits)}" for t, p in a.top),
                     "entropy (bits)": f"{a.entropy:.2f}", "answer from": settled(a)})
    return pd.DataFrame(rows)


def seconds(s: float) -> str:
    return f"{s:.2f}" if s >= 0.1 else f"{s:.2g}"


def settled(a: Answer) -> str:
    """Where the lens's top token becomes the final answer for good, in words."""
    if a.settles_at == 0:
        return "the embeddings"
    return f"after layer {min(a.settles_at, a.n_layer) - 1} (layers 0–{a.n_layer - 1})"


def settle_figure(answers: list[Answer]) -> go.Figure:
    """Probability of each model's final answer after each layer, against depth (0: the embeddings, 1: the
    last layer)."""
    fig = go.Figure()
    for i, a in enumerate(sorted(answers, key=lambda a: a.n_params)):
        n = len(a.settle) - 1
        depth = [s / n for s in range(n + 1)]
        where = ["the embeddings"] + [f"after layer {s}" for s in range(n)]
        fig.add_trace(go.Scatter(
            x=depth, y=a.settle, mode="lines+markers", name=plotly_text(f"{a.name} ({a.n_layer} layers)"),
            line=dict(color=OKABE_ITO[i % len(OKABE_ITO)], width=2.5),
            marker=dict(symbol=MARKERS[i % len(MARKERS)], size=7 if n <= 40 else 4),
            customdata=[[w, pct(p, a.digits)] for w, p in zip(where, a.settle)],
            hovertemplate=plotly_text(a.name) + ", %{customdata[0]}: %{customdata[1]}<extra></extra>"))
    fig.update_xaxes(title="depth: 0 = the embeddings, 1 = the last layer", range=[-0.02, 1.02], gridcolor="#e5e5e5")
    fig.update_yaxes(title="probability of the final answer", range=[0, 1.02], gridcolor="#e5e5e5")
    fig.update_layout(title=dict(text="When each model settles on its answer (logit lens at the last token)",
                                 font=dict(size=16)),
                      height=460, font=dict(size=max(MIN_FONT_PX + 1, 14)), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.22, font=dict(size=13)), margin=dict(l=10, r=10, t=60, b=10))
    return fig


def lens_table(a: Answer) -> pd.DataFrame:
    """A rung's lens: each stage's favourite token, its probability, and the final answer's."""
    where = ["the embeddings"] + [f"after layer {s}" for s in range(len(a.lens) - 1)]
    return pd.DataFrame({"stage": where, "top token": [t for t, _ in a.lens],
                         "its probability": [pct(p, a.digits) for _, p in a.lens],
                         "final answer's probability": [pct(p, a.digits) for p in a.settle]})
