"""The Attention page's "How a weight is made" tab: one head, one query token, every stage with real numbers.

Each stage is read from the trace by engine.inspect.attention_steps (hook_q, hook_k, hook_attn_scores, hook_pattern,
hook_v, hook_z); the raw dot products and the weighted value vectors are computed from recorded stages and
shown next to the recorded stage they lead to.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from engine import Trace
from engine.inspect.attention_steps import WeightSteps, weight_steps

from ..colours import SIGN_WORDS, diverging_scale
from ..models import ModelChoice
from ..plots import MIN_FONT_PX, fitted, plot_config
from ..text import csv_text, md, plotly_text
from ..patterns import MONO, outline, short, tick_step
from .state import PAGE, Pick

MASKED_SHOWN = 3  # future positions shown after the query, so the mask is visible
NEG_INF = "−∞"


def _labels(tokens: list[str], positions: range) -> list[str]:
    return [f"{p} {plotly_text(short(tokens[p]))}" for p in positions]


def vectors_figure(rows: torch.Tensor, labels: list[str], title: str, colour_title: str) -> go.Figure:
    """Vectors as rows of a heatmap [n, d_head], on the shared diverging scale (ui.colours: blue positive)."""
    z = rows.float().numpy()
    n, d = z.shape
    fig = go.Figure(go.Heatmap(
        z=z, y=labels, x=list(range(d)), **diverging_scale(z),
        colorbar=dict(title=dict(text=f"{colour_title}<br>(blue +, red −)", side="top"), thickness=12),
        hovertemplate="%{y}<br>dimension %{x}<br>value %{z:.4f}<extra></extra>"))
    step = tick_step(n)
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=labels[::step], ticktext=labels[::step],
                     tickfont=dict(family=MONO, size=13))
    fig.update_xaxes(title="dimension of the head's vectors", showgrid=False)
    fig.update_layout(title=dict(text=title, font=dict(size=16)), height=int(np.clip(110 + 22 * n, 220, 820)),
                      font=dict(size=14), margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
                      dragmode=False)
    return fig


def scores_figure(scores: torch.Tensor, tokens: list[str], query: int) -> go.Figure:
    """The head's whole score matrix [q, k] from the trace: finite scores on the shared diverging scale
    (ui.colours: blue positive), masked cells grey and
    marked −∞ (written in each cell while they are big enough to read)."""
    n = len(tokens)
    z = scores.float().numpy()
    masked = np.isneginf(z)
    finite = np.where(masked, np.nan, z).astype(np.float32)
    labels = _labels(tokens, range(n))
    fig = go.Figure()
    fig.add_trace(go.Heatmap(  # the mask: a constant grey layer where the trace holds -inf
        z=np.where(masked, 1.0, np.nan).astype(np.float32), colorscale=[[0, "#C8C8C8"], [1, "#C8C8C8"]],
        showscale=False, text=np.where(masked, NEG_INF, "") if n <= 16 else None,
        texttemplate="%{text}" if n <= 16 else None,
        textfont=dict(size=MIN_FONT_PX, color="#333"), hovertemplate="query %{y}, key %{x}: −∞ (masked)<extra></extra>",
        xgap=1 if n <= 40 else 0, ygap=1 if n <= 40 else 0))
    fig.add_trace(go.Heatmap(
        z=finite, **diverging_scale(finite), xgap=1 if n <= 40 else 0,
        ygap=1 if n <= 40 else 0,
        colorbar=dict(title=dict(text="score<br>(blue +, red −)", side="top"), thickness=10),
        hovertemplate="query %{y}, key %{x}: score %{z:.4f}<extra></extra>"))
    step = tick_step(n, 32)
    ticks = dict(tickmode="array", tickvals=list(range(0, n, step)), ticktext=labels[::step],
                 tickfont=dict(family=MONO, size=12), showgrid=False, zeroline=False)
    fig.update_xaxes(title="key", tickangle=-90 if n > 6 else 0, **ticks)
    fig.update_yaxes(title="query", autorange="reversed", **ticks)
    title = "Step 3 · the mask: every row's scores, future cells −∞"
    fig.update_layout(title=dict(text=title, font=dict(size=16)),
                      height=int(np.clip(260 + 16 * n, 420, 820)), font=dict(size=14), plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=50, b=10), dragmode=False,
                      shapes=[outline(-0.5, n - 0.5, query - 0.5, query + 0.5)])
    return fig


def weights_bar(s: WeightSteps, tokens: list[str], shown: range) -> go.Figure:
    """The softmax's output (hook_pattern) for every shown key, masked ones at 0."""
    labels = _labels(tokens, shown)
    w = s.weights[list(shown)].tolist()
    fig = go.Figure(go.Bar(x=labels, y=w, marker_color=["#D55E00" if p == s.query else "#0072B2" for p in shown],
                           text=[f"{v:.0%}" if v >= 0.01 else "" for v in w], textposition="outside",
                           cliponaxis=False, hovertemplate="%{x}: weight %{y:.4f}<extra></extra>"))
    step = tick_step(len(labels))
    fig.update_xaxes(type="category", tickangle=-60 if len(labels) > 8 else 0, tickfont=dict(family=MONO, size=13),
                     tickmode="array", tickvals=labels[::step], ticktext=labels[::step])
    fig.update_yaxes(title="weight (hook_pattern)", range=[0, 1.1], tickformat=".0%", gridcolor="#e5e5e5")
    fig.update_layout(title=dict(text="Step 4 · the weights: softmax of the scores", font=dict(size=16)),
                      height=380, font=dict(size=14), margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
                      dragmode=False)
    return fig


def steps_table(s: WeightSteps, tokens: list[str], shown: range) -> pd.DataFrame:
    """Steps 2 to 4 for every shown key: the dot product, scaled, the trace's masked score, the softmax."""
    idx = list(shown)
    scores = s.scores[idx].tolist()
    return pd.DataFrame({
        "key position": idx,
        "key token": [csv_text(tokens[p]) for p in idx],
        "q · k": s.dots[idx].tolist(),
        f"÷ √{s.k.shape[1]}": s.scaled[idx].tolist(),
        "score (trace)": [NEG_INF if math.isinf(v) else f"{v:.4f}" for v in scores],
        "exp(score − max)": s.exp_shifted[idx].tolist(),
        "weight (trace)": s.weights[idx].tolist(),
    })


def num(x: float) -> str:
    """A number as the worked example writes it: three decimals, a true minus sign."""
    return f"{x:.3f}".replace("-", "−")


def _worked_example(s: WeightSteps, tokens: list[str]) -> str:
    j = int(s.weights.argmax())
    total = float(s.exp_shifted.sum())
    score, top = float(s.scores[j]), float(s.scores.max())
    if score == top:  # the most weight goes to the highest score: the shift leaves it at e^0
        numerator = (f"It is the row's highest score, and softmax first takes the highest score from every score "
                     f"(which changes no weight, and keeps e^x from overflowing), so its numerator is e^0 = "
                     f"{num(float(s.exp_shifted[j]))}")
    else:
        shifted = f"{num(score)} − {num(top)}" if top >= 0 else f"{num(score)} + {num(-top)}"
        numerator = f"Its softmax numerator is e^({shifted}) = {num(float(s.exp_shifted[j]))}"
    return (f"For the key with the most weight, **“{md(tokens[j])}”** (position {j}): q · k = "
            f"{num(float(s.dots[j]))}; divided by √{s.k.shape[1]} = {s.scale:.3f} that is "
            f"{num(float(s.scaled[j]))}, the score the trace recorded ({num(score)}). {numerator}, and divided by "
            f"the sum of all numerators ({num(total)}) it becomes the weight {num(float(s.weights[j]))}.")


def weight_steps_section(trace: Trace, choice: ModelChoice, pick: Pick) -> None:
    """Query and keys, dot products, scaling, mask, softmax, weighted values and the head's output."""
    s = weight_steps(trace, pick.layer, pick.head, pick.query)
    tokens, q = trace.tokens, pick.query
    d = s.k.shape[1]
    visible = range(q + 1)
    shown = range(min(len(trace), q + 1 + MASKED_SHOWN))
    name = f"L{pick.layer}H{pick.head}-q{q}"
    st.markdown(f"Layer {pick.layer}, head {pick.head}, query token **“{md(tokens[q])}”** at position {q}. "
                f"Every number below is read from the model's run on your text.")
    score = r"q \cdot k_j" if s.scale == 1 else r"\frac{q \cdot k_j}{\sqrt{d_\text{head}}}"
    st.latex(r"\text{score}_j = %s\;(j \le %d,\ \text{else } -\infty)"
             r"\qquad w = \operatorname{softmax}(\text{score})\qquad z = \sum_j w_j\, v_j" % (score, q))
    if s.scale == 1:
        st.caption("This model does not divide the dot products by √d_head (GPT-Neo leaves the scale out).")

    st.markdown(f"#### Step 1 · the query and the keys\nThe head turns each token into a **query** vector "
                f"(what it looks for) and a **key** vector (what it offers), {d} numbers each "
                f"(`blocks.{pick.layer}.attn.hook_q`, `hook_k`).")
    rows = torch.cat([s.q[None], s.k[list(visible)]])  # [1 + keys, d_head]
    labels = [f"query: {plotly_text(short(tokens[q]))}"] + [f"key {lbl}" for lbl in _labels(tokens, visible)]
    st.plotly_chart(fitted(vectors_figure(rows, labels,
                                          "The query vector (top) and the key vector of every token it sees",
                                          "value")), config=plot_config(f"attention-qk-{name}"), key=PAGE.key("qk"))

    st.markdown("#### Steps 2 and 3 · dot products, scaled, then masked\n"
                f"Each key's match with the query is the dot product q · k (computed here from hook_q and "
                f"hook_k), divided by √{d} = {s.scale:.3f} so the scores stay in a range where softmax is not "
                "too sharp. The model then sets every **later** token's score to −∞: a token may not look at "
                "the future. The *score (trace)* column is `hook_attn_scores`, recorded by the model.")
    table = steps_table(s, tokens, shown)
    # A static table, not st.dataframe: lighter for the browser than the interactive grid (these numbers need
    # no sorting), in a fixed-height box that scrolls a long one.
    with st.container(height=min(60 + 36 * len(table), 420), border=False):
        st.table(table, hide_index=True)
    if q == len(trace) - 1:
        st.caption("This is the last token, so no later token is masked in its row; the whole score matrix "
                   "below shows the mask for every row (or pick an earlier query token).")
    elif len(trace) > q + 1 + MASKED_SHOWN:
        st.caption(f"Showing {MASKED_SHOWN} of the {len(trace) - q - 1} masked positions; all of them are −∞.")
    st.markdown(_worked_example(s, tokens))
    scores = trace.act[f"blocks.{pick.layer}.attn.hook_attn_scores"][pick.head]  # [q, k], -inf above the diagonal
    st.plotly_chart(fitted(scores_figure(scores, tokens, q)), config=plot_config(f"attention-scores-{name}"),
                    key=PAGE.key("scores"))
    st.caption(f"Every row's scores as the trace recorded them (`hook_attn_scores`), RdBu centred on 0 "
               f"({SIGN_WORDS}, as on every page): blue matches the query more, red less. Grey cells are the "
               "mask, −∞: the future.")

    st.plotly_chart(fitted(weights_bar(s, tokens, shown)), config=plot_config(f"attention-weights-{name}"),
                    key=PAGE.key("weights_bar"))
    st.caption("Softmax: e^score for each token, divided by their sum, so the weights are positive and add up "
               f"to 1 (here {float(s.weights.sum()):.6f}). e^−∞ = 0: masked tokens get no weight. "
               "These weights are `hook_pattern`, recorded by the model.")

    st.markdown("#### Step 5 · the weighted sum of values\nEach token also has a **value** vector (`hook_v`): "
                "what it passes on if looked at. Each value is multiplied by its weight and the results are "
                "added up. The sum is the head's output for this token (`hook_z`).")
    weighted = s.weighted[list(visible)]  # [keys, d_head]
    rows = torch.cat([weighted, s.z_from_sum[None], s.z[None]])
    labels = [f"w × v {lbl}" for lbl in _labels(tokens, visible)] + ["sum of the rows above", "z (trace)"]
    st.plotly_chart(fitted(vectors_figure(rows, labels, "Weighted value vectors, their sum, and the head's output z",
                                          "value")), config=plot_config(f"attention-values-{name}"),
                    key=PAGE.key("values"))
    gap = float((s.z_from_sum - s.z).abs().max())
    st.caption(f"The sum of the weighted values and the recorded output z differ by at most {gap:.1e} "
               "(floating-point rounding): z is exactly this weighted sum.")
    frame = pd.DataFrame(torch.cat([s.q[None], s.k, s.v, s.weighted, s.z[None]]).numpy(),
                         index=["q"] + [f"k {p}" for p in range(len(trace))] + [f"v {p}" for p in range(len(trace))]
                         + [f"w*v {p}" for p in range(len(trace))] + ["z"])
    st.download_button("Download every vector of this step (CSV)", lambda: frame.to_csv(float_format="%.6g"),
                       file_name=f"attention-vectors-{name}.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:")
