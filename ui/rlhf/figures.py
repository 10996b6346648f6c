"""Figure builders for the Pre-training vs RLHF page: the pre-training loss, a tuning run step by step, the
next-token distribution before and after, and which parameters moved."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.inspect.params import ParamChange
from engine.train.preference import TuneProgress

from ..text import plotly_text

FONT = dict(size=15)
BEFORE = "#999999"  # grey: the reference, the model as pre-trained
AFTER = "#0072B2"  # Okabe-Ito blue: the tuned model
CHOSEN = "#009E73"  # Okabe-Ito green: the preferred completions
REJECTED = "#D55E00"  # Okabe-Ito vermilion: the rejected ones


def _layout(fig: go.Figure, title: str, height: int, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, font=FONT,
                      margin=dict(l=10, r=10, t=70, b=10), plot_bgcolor="white", **kw)
    fig.update_xaxes(gridcolor="#e5e5e5", automargin=True)
    fig.update_yaxes(gridcolor="#e5e5e5", automargin=True)
    return fig


def pretraining_figure(history: Sequence[dict]) -> go.Figure:
    """Training and held-out loss of the pre-training run, by step (from its trainer_log.json)."""
    steps = [h["step"] for h in history]
    fig = go.Figure()
    fig.add_scatter(x=steps, y=[h.get("loss") for h in history], name="training loss", mode="lines+markers",
                    line=dict(color=BEFORE, width=2))
    fig.add_scatter(x=steps, y=[h.get("val_loss") for h in history], name="held-out loss", mode="lines+markers",
                    line=dict(color=AFTER, width=3))
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="loss (nats per token)")
    return _layout(fig, "Pre-training: next-token loss falls as the model reads", 380,
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


TUNING_COLUMNS = ("step", "loss", "reward margin", "accuracy", "chosen reward", "rejected reward", "log p(chosen)",
                  "log p(rejected)", "KL from reference")


def tuning_frame(history: Sequence[TuneProgress]) -> pd.DataFrame:
    """One row per report of a tuning run (step 0 is before the first update)."""
    return pd.DataFrame(columns=list(TUNING_COLUMNS), data=[{
        "step": p.step, "loss": p.stats.loss, "reward margin": p.stats.margin, "accuracy": p.stats.accuracy,
        "chosen reward": p.stats.chosen_reward, "rejected reward": p.stats.rejected_reward,
        "log p(chosen)": p.stats.chosen_logp, "log p(rejected)": p.stats.rejected_logp, "KL from reference": p.kl,
    } for p in history])


def tuning_figure(history: Sequence[TuneProgress], steps: int) -> go.Figure:
    """Four panels, one point per step: the DPO loss, the reward margin, the preference accuracy, and the
    log-probabilities of the chosen and rejected completions."""
    df = tuning_frame(history)
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.12, vertical_spacing=0.2, subplot_titles=(
        "DPO loss", "reward margin (chosen − rejected)", "pairs the model now prefers as told",
        "log-probability of the completions"))

    def line(y: str, row: int, col: int, colour: str, name: str | None = None) -> None:
        # plain lists: Plotly would send pandas columns as typed arrays, which the page's own tests cannot read
        fig.add_scatter(x=df["step"].tolist(), y=df[y].tolist(), mode="lines+markers", name=name or y,
                        showlegend=name is not None, line=dict(color=colour, width=3), marker=dict(size=5),
                        row=row, col=col)

    line("loss", 1, 1, AFTER)
    line("reward margin", 1, 2, AFTER)
    line("accuracy", 2, 1, AFTER)
    line("log p(chosen)", 2, 2, CHOSEN, "chosen")
    line("log p(rejected)", 2, 2, REJECTED, "rejected")
    fig.update_xaxes(range=[0, max(steps, 1)], title="step", row=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[-0.05, 1.05], tickformat=".0%", row=2, col=1)
    fig.update_yaxes(title="nats", row=2, col=2)
    fig.update_annotations(font=dict(size=15))
    return _layout(fig, "", 560, legend=dict(orientation="h", y=-0.12, x=1, xanchor="right"))


def before_after_figure(labels: Sequence[str], before: Sequence[float], after: Sequence[float],
                        title: str) -> go.Figure:
    """Grouped horizontal bars: each listed token's probability under the reference and the tuned model."""
    ticks = [plotly_text(t) for t in labels]
    fig = go.Figure()
    for name, values, colour in (("before (pre-trained)", before, BEFORE), ("after (tuned)", after, AFTER)):
        fig.add_bar(y=ticks, x=list(values), orientation="h", name=name, marker_color=colour,
                    text=[f"{v:.1%}" for v in values], textposition="outside", cliponaxis=False,
                    hovertemplate="%{y}: %{x:.2%}<extra>" + name + "</extra>")
    top = max([*before, *after, 0.01])
    # past the longest bar: room for its label
    fig.update_xaxes(range=[0, top * 1.12 + 0.06], tickformat=".0%", title="probability of the next token")
    fig.update_yaxes(autorange="reversed", tickfont=dict(family="ui-monospace, Menlo, Consolas, monospace"))
    return _layout(fig, title, 140 + 44 * len(labels), barmode="group", bargap=0.25,
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def changes_figure(changes: Sequence[ParamChange], most: int = 12) -> go.Figure:
    """The parameter groups that moved most, relative to their size before tuning."""
    shown = list(changes[:most])
    fig = go.Figure(go.Bar(
        y=[c.name for c in shown], x=[c.relative for c in shown], orientation="h", marker_color=AFTER,
        text=[f"{c.relative:.2%}" for c in shown], textposition="outside", cliponaxis=False,
        customdata=[f"{c.count:,}" for c in shown],
        hovertemplate="%{y}<br>moved %{x:.3%} of its length<br>%{customdata} parameters<extra></extra>"))
    fig.update_xaxes(tickformat=".1%", title="relative change: |after − before| / |before|",
                     range=[0, max([c.relative for c in shown] + [1e-6]) * 1.3])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Which parameters moved most", 120 + 34 * len(shown))


def changes_frame(changes: Sequence[ParamChange]) -> pd.DataFrame:
    return pd.DataFrame([{"parameters": c.name, "part": c.part, "block": c.layer, "count": c.count,
                          "relative change": c.relative} for c in changes])
