"""Figures of the sampling lab, drawn from engine.generation.sampling's stages of one position's logits: the
distribution a token is drawn from (a generation step's, a hosted model's), and N draws against it. The sampling
lab's own distribution and stages are drawn in the browser (ui/views/sampling.py).

Figures that redraw on every slider move are built as plain dicts and wrapped without Plotly's validation
(`figure`): validation costs 10-30 ms per figure, more than the sampling itself. The tests validate every
builder's output instead (test_next_token_app.py).

Colours are Okabe-Ito (distinguishable with the common colour-vision deficiencies), and every state is also
told in words (bar text, hover, legend), so colour is never the only cue. Token text goes through
ui.text.plotly_text before it reaches Plotly, which renders a subset of HTML in labels.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import torch

from engine import SamplingStages, display_token
from engine.generation.sampling_lab import TopTokens

from ..text import plotly_text

KEPT, DRAWN, REST = "#0072B2", "#D55E00", "#999999"
REMOVED = {"greedy": "#BBBBBB", "top-k": "#E69F00", "top-p": "#CC79A7", "min-p": "#56B4E9"}
GRID = "#e5e5e5"
MONO = "ui-monospace, Menlo, Consolas, monospace"
LABEL_CHARS = 18  # longer token labels are shortened on axes (hover shows them whole)
TOP_MARGIN = 100  # pixels above the plot for the title and up to two lines of legend
LOG_TICKS = [m * 10**e for e in range(-2, 5) for m in (1, 2, 5)]  # 0.01, 0.02, 0.05, 0.1, ... 50000


def token_label(tokenizer: Any, token_id: int) -> str:
    """A token's display form (␣ is a space, ↵ a line break), escaped for Plotly and for HTML element text:
    `<`, `>` and `&` become entities, a quote stays a quote (Plotly would show "&quot;" literally)."""
    return plotly_text(display_token(tokenizer, int(token_id)))


def short(label: str) -> str:
    """An escaped label shortened by the characters it shows, so an entity such as `&gt;` is never cut."""
    raw = html.unescape(label)
    return label if len(raw) <= LABEL_CHARS else plotly_text(raw[:LABEL_CHARS - 1]) + "…"


def fmt_prob(p: float) -> str:
    """A probability for people: '23.4%', '0.15%', '3.2e-05' (tiny ones keep their digits)."""
    if p == 0:
        return "0%"
    if p >= 0.01:
        return f"{p:.1%}"
    return f"{p:.2%}" if p >= 0.0001 else f"{p:.1e}"


def rest_label(n_rest: int, n_zero: int) -> str:
    """The last bar's name: how many tokens it holds, and how many of them round to 0."""
    return f"everything else ({n_rest:,}; {n_zero:,} at 0%)" if n_zero else f"everything else ({n_rest:,})"


def nonzero(order: Sequence[int], probs: torch.Tensor) -> list[int]:
    """The ids of `order` whose probability is above 0 (the first is always kept): below that, float32 has
    underflowed and the order among them is noise."""
    return [t for i, t in enumerate(order) if i == 0 or float(probs[t]) > 0]


def base_layout(title: str, height: int, top: int = TOP_MARGIN, **kw: Any) -> dict[str, Any]:
    """Shared look: the title top left, the legend in a row under it (`top` pixels for both), a white plot."""
    return dict(
        title=dict(text=title, font=dict(size=17), x=0.01, xref="container", y=1 - 8 / height, yref="container",
                   yanchor="top"),
        legend=dict(orientation="h", font=dict(size=13), x=0.01, xref="container", xanchor="left",
                    y=1 - 40 / height, yref="container", yanchor="top"),
        height=height, font=dict(size=15), margin=dict(l=10, r=30, t=top, b=10), plot_bgcolor="white",
        **kw)


def layout(fig: go.Figure, title: str, height: int, **kw: Any) -> go.Figure:
    """`base_layout` applied to a Figure built the usual way."""
    fig.update_layout(base_layout(title, height, **kw))
    return fig


def figure(data: list[dict], layout_: dict[str, Any]) -> go.Figure:
    """A Figure from dicts, skipping Plotly's per-property validation (the tests validate these builders)."""
    return go.Figure({"data": data, "layout": layout_}, _validate=False)


def hline(y: float, text: str, position: str = "top") -> tuple[dict, dict]:
    """A dashed horizontal line across the plot and its label (a shape and an annotation)."""
    shape = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                 line=dict(dash="dash", color="#333", width=1.5))
    note = dict(xref="paper", x=1, xanchor="right", yref="y", y=y, yanchor="bottom" if position == "top" else "top",
                text=text, showarrow=False, font=dict(size=13))
    return shape, note


def distribution_figure(top: TopTokens, labels: Sequence[str], reasons: Sequence[str | None] | None = None,
                        drawn: int | None = None, actual: int | None = None, title: str = "") -> go.Figure:
    """Horizontal bars: the probability each listed token is drawn with, the most likely at the top, and one
    bar for everything else. Removed tokens are coloured by the filter that removed them; `drawn` is
    highlighted; a diamond marks each token's probability before the filters; `actual` is labelled."""
    n = len(top.ids)
    reasons = reasons or [None] * n
    rows = [*range(n), n]  # the last row is "everything else"
    groups: dict[str, dict[str, list]] = {}

    def add(group: str, row: int, p: float, text: str, hover: str) -> None:
        g = groups.setdefault(group, {"x": [], "y": [], "text": [], "hover": []})
        # En spaces keep the text clear of the diamond drawn at the bar's end.
        g["x"].append(p), g["y"].append(row), g["text"].append("\u2002\u2002" + text), g["hover"].append(hover)

    for i, tok in enumerate(top.ids):
        hover = (f"<b>{labels[i]}</b> (id {tok}, rank {top.rank[i]:,})<br>drawn with "
                 f"{fmt_prob(top.probs_after[i])}<br>before the filters {fmt_prob(top.probs_before[i])}")
        if tok == drawn:
            add("drawn", i, top.probs_after[i], f"{fmt_prob(top.probs_after[i])} ← drawn", hover)
        elif top.kept[i]:
            add("can be drawn", i, top.probs_after[i], fmt_prob(top.probs_after[i]), hover)
        else:
            why = reasons[i] or "a filter"
            add(f"removed by {why}", i, 0.0, f"removed by {why}", f"{hover}<br>removed by {why}")
    zeros = (f"<br>{top.n_zero:,} of them have probability 0 at this temperature (too small for a float),"
             "<br>so they are not listed" if top.n_zero else "")
    add("everything else", n, top.rest_after, fmt_prob(top.rest_after),
        f"the other {top.n_rest:,} tokens together<br>drawn with {fmt_prob(top.rest_after)}"
        f"<br>before the filters {fmt_prob(top.rest_before)}{zeros}")

    colours = {"drawn": DRAWN, "can be drawn": KEPT, "everything else": REST}
    data = [dict(type="bar", orientation="h", name=group, x=g["x"], y=g["y"], text=g["text"],
                 textposition="outside", cliponaxis=False, hovertext=g["hover"], hoverinfo="text",
                 marker=dict(color=colours.get(group) or REMOVED.get(group.removeprefix("removed by "), REST)))
            for group, g in groups.items()]
    data.append(dict(type="scatter", mode="markers", name="before the filters", x=[*top.probs_before,
                     top.rest_before], y=rows, hoverinfo="skip",
                     marker=dict(symbol="diamond-open", size=11, color="#111", line=dict(width=2))))
    ticks = [short(lbl) for lbl in labels] + [rest_label(top.n_rest, top.n_zero)]
    if actual is not None and actual in top.ids:
        ticks[top.ids.index(actual)] += "  ✔ next in text"
    top_x = max([*top.probs_after, top.rest_after, *top.probs_before, 0.01])
    x_max = min(1.0, top_x) * 1.3  # room for the text after the longest bar
    step = 0.2 if top_x > 0.5 else 0.1 if top_x > 0.15 else 0.05 if top_x > 0.05 else 0.01
    n_ticks = int(min(1.0, x_max) / step + 1e-9) + 1
    top_margin = 45 + 21 * len(data)  # in a narrow column the legend stacks: one line per entry
    return figure(data, base_layout(
        title, height=60 + top_margin + 30 * (n + 1), top=top_margin, barmode="overlay", bargap=0.25,
        xaxis=dict(range=[0, x_max], tickformat=".3~%", title=dict(text="probability"), gridcolor=GRID,
                   tickvals=[round(i * step, 4) for i in range(n_ticks)], automargin=True),
        yaxis=dict(tickvals=rows, ticktext=ticks, autorange="reversed", tickfont=dict(family=MONO),
                   automargin=True)))


def draws_figure(drawn: torch.Tensor, stages: SamplingStages, labels_of: dict[int, str], k: int = 15
                 ) -> go.Figure:
    """N draws against the probabilities they were drawn from: the k likeliest tokens plus any drawn often."""
    n = drawn.numel()
    counts = torch.bincount(drawn, minlength=stages.probs_after.numel()).float()  # [vocab]
    shown = nonzero(stages.order[:k].tolist(), stages.probs_after)
    for tok in torch.argsort(counts, descending=True)[:k].tolist():
        if counts[tok] > 0 and tok not in shown:
            shown.append(tok)
    idx = torch.tensor(shown)
    share, probs = (counts[idx] / n).tolist(), stages.probs_after[idx].tolist()
    x = [short(labels_of[t]) for t in shown] + ["everything else"]
    share.append(max(0.0, 1 - sum(share)))
    probs.append(max(0.0, 1 - sum(probs)))
    data = [dict(type="bar", name="probability", x=x, y=probs, marker=dict(color=REST),
                 hovertemplate="%{x}: %{y:.2%}<extra>probability</extra>"),
            dict(type="bar", name=f"share of your {n:,} draws", x=x, y=share, marker=dict(color=KEPT),
                 hovertemplate="%{x}: %{y:.2%}<extra>share of draws</extra>")]
    return figure(data, base_layout(
        f"{n:,} draws against the probabilities", height=440, barmode="group",
        xaxis=dict(tickfont=dict(family=MONO), tickangle=-45, type="category"),
        yaxis=dict(tickformat=".3~%", gridcolor=GRID)))


def reported_figure(labels: Sequence[str], probs: Sequence[float], chosen: int | None = None,
                    title: str = "") -> go.Figure:
    """`distribution_figure`'s bars for the candidates a hosted API reported (probabilities from its
    log-probabilities, likeliest first) and one bar for the probability it does not report. That rest is spread
    over tokens the API does not name, so it is one grey bar, never invented tokens. `labels` are display
    strings, escaped here after shortening (so no entity is cut); `chosen` is the index of the candidate the
    server generated, highlighted."""
    n = len(probs)
    rest = max(0.0, 1.0 - sum(probs))
    esc = [html.escape(lbl, quote=False) for lbl in labels]  # as ui.text.plotly_text
    rows = [*range(n), n]
    groups: dict[str, dict[str, list]] = {}

    def add(group: str, row: int, p: float, text: str, hover: str) -> None:
        g = groups.setdefault(group, {"x": [], "y": [], "text": [], "hover": []})
        g["x"].append(p), g["y"].append(row), g["text"].append("\u2002" + text), g["hover"].append(hover)

    for i, p in enumerate(probs):
        hover = f"<b>{esc[i]}</b> (the server's #{i + 1})<br>probability {fmt_prob(p)}"
        if i == chosen:
            add("generated", i, p, f"{fmt_prob(p)} ← generated", hover)
        else:
            add("reported", i, p, fmt_prob(p), hover)
    add("not reported", n, rest, f"{fmt_prob(rest)} not reported",
        "probability the API does not break down:<br>the rest of its vocabulary, which it does not list")
    colours = {"generated": DRAWN, "reported": KEPT, "not reported": REST}
    data = [dict(type="bar", orientation="h", name=group, x=g["x"], y=g["y"], text=g["text"],
                 textposition="outside", cliponaxis=False, hovertext=g["hover"], hoverinfo="text",
                 marker=dict(color=colours[group], pattern=dict(shape="/" if group == "not reported" else "")))
            for group, g in groups.items()]
    top_x = max([*probs, rest, 0.01])
    x_max = min(1.0, top_x) * 1.45  # room for "not reported" after the longest bar
    step = 0.2 if top_x > 0.5 else 0.1 if top_x > 0.15 else 0.05 if top_x > 0.05 else 0.01
    n_ticks = int(min(1.0, x_max) / step + 1e-9) + 1
    top_margin = 45 + 21 * len(data)
    return figure(data, base_layout(
        title, height=60 + top_margin + 30 * (n + 1), top=top_margin, barmode="overlay", bargap=0.25,
        xaxis=dict(range=[0, x_max], tickformat=".3~%", title=dict(text="probability"), gridcolor=GRID,
                   tickvals=[round(i * step, 4) for i in range(n_ticks)], automargin=True),
        yaxis=dict(tickvals=rows, ticktext=[*(html.escape(short(lbl), quote=False) for lbl in labels), "not reported"],
                   autorange="reversed", tickfont=dict(family=MONO), automargin=True)))


def spread_figure(labels: Sequence[str], counts: Sequence[int], what: str, title: str) -> go.Figure:
    """How often each distinct `what` (first token, first word) came back from N samples, most often first;
    `labels` are display strings, escaped here."""
    n = sum(counts)
    esc = [html.escape(lbl, quote=False) for lbl in labels]
    share = [c / n for c in counts] if n else []
    data = [dict(type="bar", orientation="h", name=f"share of {n:,} answers", x=share, y=list(range(len(labels))),
                 text=[f"\u2002{c} of {n}" for c in counts], textposition="outside", cliponaxis=False,
                 hovertext=[f"<b>{lbl}</b><br>{what} of {c} of {n} answers" for lbl, c in zip(esc, counts)],
                 hoverinfo="text", marker=dict(color=KEPT))]
    return figure(data, base_layout(
        title, height=60 + 70 + 30 * max(1, len(labels)), top=70, bargap=0.25, showlegend=False,
        xaxis=dict(range=[0, 1.25], tickformat=".0%", title=dict(text="share of answers"), gridcolor=GRID,
                   tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        yaxis=dict(tickvals=list(range(len(labels))),
                   ticktext=[html.escape(short(lbl), quote=False) for lbl in labels],
                   autorange="reversed", tickfont=dict(family=MONO), automargin=True)))
