"""The sampling pipeline stage by stage: raw logits, logits / T, what the filters remove, top-p's running total,
and entropy across temperatures. One stage is drawn at a time, so a slider move builds two figures, not six.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from engine import SamplingSettings, SamplingStages
from engine.generation.sampling import MAX_TEMPERATURE, MIN_TEMPERATURE, apply_temperature, entropy_bits, filter_logits
from engine.generation.sampling_lab import FILTERS, blame

from ..plots import fitted, plot_config
from .state import PAGE, STAGES
from .figures import DRAWN, GRID, KEPT, LOG_TICKS, MONO, REMOVED, REST, base_layout, figure, hline, short



def logits_figure(stages: SamplingStages, labels: Sequence[str], scaled: bool) -> go.Figure:
    """Stage 1 and 2: the raw logits of the most likely tokens, and (scaled=True) next to them logits / T."""
    idx = stages.order[:len(labels)]
    x = [short(lbl) for lbl in labels]
    data = [dict(type="bar", name="raw logit", x=x, y=stages.logits[idx].tolist(), hovertext=list(labels),
                 marker=dict(color=REST if scaled else KEPT),
                 hovertemplate="%{hovertext}: %{y:.3f}<extra>raw logit</extra>")]
    if scaled:
        data.append(dict(type="bar", name="logit ÷ T", x=x, y=stages.scaled[idx].tolist(), hovertext=list(labels),
                         marker=dict(color=KEPT), hovertemplate="%{hovertext}: %{y:.3f}<extra>logit ÷ T</extra>"))
    title = "Logits divided by the temperature" if scaled else "Raw logits: the model's scores for each token"
    return figure(data, base_layout(
        title, height=440, barmode="group", showlegend=True,
        xaxis=dict(tickfont=dict(family=MONO), tickangle=-45, type="category"),
        yaxis=dict(title=dict(text="logit"), zeroline=True, zerolinecolor="#888", gridcolor=GRID)))


def filters_figure(stages: SamplingStages, labels: Sequence[str], reasons: Sequence[str | None],
                   s: SamplingSettings) -> go.Figure:
    """Stage 3: probabilities at this temperature, each bar coloured by whether a filter removed it. Tokens
    whose probability is 0 at this temperature are left out (the title says how many of the listed)."""
    idx = stages.order[:len(labels)]
    probs = stages.probs_before[idx].tolist()
    shown = [i for i, p in enumerate(probs) if i == 0 or p > 0]
    groups: dict[str, list[int]] = {}
    for i in shown:
        why = reasons[i]
        groups.setdefault(f"removed by {why}" if why else "kept", []).append(i)
    data = [dict(type="bar", name=group, x=[short(labels[i]) for i in rows], y=[probs[i] for i in rows],
                 marker=dict(color=KEPT if group == "kept" else REMOVED[group.removeprefix("removed by ")]),
                 hovertext=[labels[i] for i in rows], hovertemplate="%{hovertext}: %{y:.2%}<extra>" + group +
                 "</extra>")
            for group, rows in groups.items()]
    shapes, notes = [], []
    if not s.greedy and s.min_p > 0:
        shape, note = hline(s.min_p * float(stages.probs_before.max()),
                            f"min-p line: {s.min_p:g} × the top probability")
        shapes, notes = [shape], [note]
    zero = len(labels) - len(shown)
    title = "Which tokens the filters remove" + (
        f" ({zero:,} of the {len(labels):,} likeliest round to 0% at this temperature: not drawn)" if zero else "")
    return figure(data, base_layout(
        title, height=440, barmode="overlay", shapes=shapes, annotations=notes,
        showlegend=True,
        xaxis=dict(tickfont=dict(family=MONO), tickangle=-45, type="category", categoryorder="array",
                   categoryarray=[short(labels[i]) for i in shown]),
        yaxis=dict(title=dict(text="probability at this temperature"), tickformat=".3~%", gridcolor=GRID)))


def cumulative_figure(stages: SamplingStages, s: SamplingSettings, max_rank: int = 200) -> go.Figure:
    """Top-p's view: the running total of probability, most likely token first, with the cut-off p."""
    cum = stages.cumulative
    reach = int((cum < 0.999).sum()) + 1  # ranks needed to cover 99.9% of the probability
    m = max(min(10, cum.numel()), min(max_rank, reach, cum.numel()))
    kept = stages.kept[stages.order[:m]].tolist()
    y = cum[:m].tolist()
    data = [dict(type="scatter", mode="lines", name="running total", x=list(range(1, m + 1)), y=y,
                 line=dict(color="#555", width=2), hoverinfo="skip")]
    for name, colour, want in (("kept", KEPT, True), ("removed", REMOVED["top-p"], False)):
        pts = [i for i in range(m) if kept[i] == want]
        data.append(dict(type="scatter", mode="markers", name=name, x=[i + 1 for i in pts], y=[y[i] for i in pts],
                         marker=dict(color=colour, size=7),
                         hovertemplate="the %{x} likeliest tokens hold %{y:.1%}<extra></extra>"))
    shapes, notes = [], []
    if not s.greedy and s.top_p < 1:
        shape, note = hline(s.top_p, f"top-p = {s.top_p:g}", position="bottom")
        shapes, notes = [shape], [note]
    return figure(data, base_layout(
        "Top-p's running total", height=420, shapes=shapes, annotations=notes,
        xaxis=dict(title=dict(text="tokens, most likely first (rank)"), type="log" if m > 30 else "linear",
                   tickvals=[t for t in LOG_TICKS if 1 <= t <= m] if m > 30 else None, gridcolor=GRID),
        yaxis=dict(title=dict(text="probability held so far"), tickformat=".0%", range=[0, 1.05], gridcolor=GRID)))


def entropy_curve(logits: torch.Tensor, s: SamplingSettings, n: int = 40) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """Entropy (bits) before and after the filters over a range of temperatures: engine's apply_temperature
    for each T, then engine's filter_logits at T = 1 on all of them at once (the filters work on batches)."""
    temps = np.geomspace(MIN_TEMPERATURE, MAX_TEMPERATURE, n)
    scaled = torch.stack([apply_temperature(logits.reshape(-1), float(t)) for t in temps])  # [n, vocab]
    filtered = filter_logits(scaled, replace(s, temperature=1.0))  # [n, vocab]
    before, after = entropy_bits(scaled.softmax(-1)), entropy_bits(filtered.softmax(-1))  # [n], [n]
    return temps, before.numpy(), after.numpy()


def entropy_figure(logits: torch.Tensor, stages: SamplingStages, s: SamplingSettings) -> go.Figure:
    """How spread out the distribution is as the temperature changes, with this setting marked."""
    temps, before, after = entropy_curve(logits, s)
    vocab = stages.logits.numel()
    hover = "T = %{x:.2f}: %{y:.2f} bits<extra></extra>"
    data = [dict(type="scatter", mode="lines", name="before the filters", x=temps.tolist(), y=before.tolist(),
                 line=dict(color=REST, width=2), hovertemplate=hover),
            dict(type="scatter", mode="lines", name="after the filters (sampled from)", x=temps.tolist(),
                 y=after.tolist(), line=dict(color=KEPT, width=3), hovertemplate=hover)]
    if not s.greedy:
        data.append(dict(type="scatter", mode="markers", name="your setting",
                         x=[min(max(s.temperature, MIN_TEMPERATURE), MAX_TEMPERATURE)], y=[stages.entropy_after],
                         marker=dict(color=DRAWN, size=14), hovertemplate=hover))
    shape, note = hline(math.log2(vocab), f"the most possible: all {vocab:,} tokens equally likely", "bottom")
    return figure(data, base_layout(
        "Entropy: how many bits of choice are left", height=420, shapes=[shape], annotations=[note],
        xaxis=dict(title=dict(text="temperature T (log scale)"), type="log", gridcolor=GRID,
                   tickvals=[t for t in LOG_TICKS if MIN_TEMPERATURE <= t <= MAX_TEMPERATURE]),
        yaxis=dict(title=dict(text="entropy (bits)"), rangemode="tozero", gridcolor=GRID)))


def show_stage(stage: str, stages: SamplingStages, masks: dict[str, torch.Tensor], s: SamplingSettings,
               labels: Sequence[str]) -> None:
    """Draw one stage of the pipeline with a line on what it shows."""
    vocab = stages.logits.numel()
    order = stages.order[:len(labels)].tolist()
    if stage == STAGES[0]:
        fig, name = logits_figure(stages, labels, scaled=False), "raw-logits"
        note = (f"The model's raw scores. Across all {vocab:,} tokens they range from "
                f"{float(stages.logits.min()):.2f} to {float(stages.logits.max()):.2f}; only differences matter: "
                "softmax turns them into probabilities.")
    elif stage == STAGES[1]:
        fig, name = logits_figure(stages, labels, scaled=True), "logits-over-t"
        note = ("T = 0 is greedy and leaves the logits as they are. Otherwise the logits are divided by T "
                "(0.01 to 10): below 1 the gaps between them grow, above 1 they shrink.")
    elif stage == STAGES[2]:
        fig, name = filters_figure(stages, labels, blame(masks, order), s), "filters"
        counts = ", ".join(f"{f} removed {int(masks[f].sum()):,}" for f in FILTERS if masks[f].any())
        note = ("The filters apply in the order top-k, top-p, min-p; each token is blamed on the first that "
                f"removes it. {counts + '.' if counts else 'Nothing is removed.'}")
    elif stage == STAGES[3]:
        fig, name = cumulative_figure(stages, s), "top-p"
        note = "Top-p walks down the tokens from the most likely and keeps them until the total reaches p."
    else:
        fig, name = entropy_figure(stages.logits, stages, s), "entropy"
        note = (f"Entropy is how many bits of choice the distribution leaves: 0 when one token is certain, "
                f"{math.log2(vocab):.1f} when all {vocab:,} are equally likely.")
    st.plotly_chart(fitted(fig), key=PAGE.key("stage_chart"), config=plot_config(f"glassbox-{name}"))
    st.caption(note)
