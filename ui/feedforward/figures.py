"""Figure builders for the Feed-forward page: single neurons, CSV tables and the page's shared ticks (the MLP
activations are drawn in the browser, ui/views/activations.py).

Builders are plain functions from tensors to Plotly figures or HTML strings (no Streamlit calls), so tests
can check them directly; `show_figure` and `csv_button` put them in the page. Token text is escaped with
`ui.text.plotly_text` in figures (Plotly reads a subset of HTML in its labels) and with `html.escape` in
snippets, which are raw HTML.
Colour scales: viridis (sequential, colour-blind safe) for activations and probabilities, the shared
diverging scale (ui.colours: RdBu, blue positive, red negative) for signed contributions, one orange hue at
varying strength for a neuron over text.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from engine.inspect.neurons import Example

from ..plots import fitted, plot_config
from ..text import plotly_text

MAX_TICKS = 48  # token labels on a tall axis before they are thinned out
WIDE_TICKS = 28  # rotated labels along a full-width chart
FONT = dict(family="ui-monospace, Menlo, Consolas, monospace")
HIGHLIGHT = (230, 97, 1)  # the orange of ColorBrewer's PuOr: a single hue, readable in any colour vision


def esc(token: str) -> str:
    """Token text for a Plotly label or hover (`ui.text.plotly_text`: a quote stays a quote)."""
    return plotly_text(token)


def token_labels(tokens: Sequence[str], first_position: int = 0) -> list[str]:
    """Unique, escaped axis labels "position token" (a category axis would merge repeated tokens)."""
    return [f"{first_position + i} {esc(t)}" for i, t in enumerate(tokens)]


def token_ticks(tokens: Sequence[str], first_position: int = 0, max_ticks: int = MAX_TICKS
                ) -> dict[str, list]:
    """Tick values and labels for a numeric position axis, thinned so labels never overlap."""
    step = max(1, math.ceil(len(tokens) / max_ticks))
    positions = list(range(0, len(tokens), step))
    return dict(tickmode="array", tickvals=[first_position + i for i in positions],
                ticktext=[token_labels(tokens, first_position)[i] for i in positions])


def show_figure(fig: go.Figure, filename: str, key: str | None = None) -> None:
    """Draw a figure whose toolbar's camera button downloads it as a PNG named `filename`.png."""
    st.plotly_chart(fitted(fig), key=key, config=plot_config(filename))


def csv_button(label: str, frame: Callable[[], pd.DataFrame], filename: str, key: str) -> None:
    """A download button for a table as CSV; the CSV is only built when the button is clicked."""
    st.download_button(label, data=lambda: frame().to_csv(index=False).encode(), file_name=filename,
                       mime="text/csv", key=key, on_click="ignore", icon=":material/download:")


def neuron_trace_bars(acts: torch.Tensor, tokens: Sequence[str], layer: int, neuron: int,
                      first_position: int = 0) -> go.Figure:
    """One neuron's activation at each token of the user's text."""
    positions = list(range(first_position, first_position + len(tokens)))
    values = acts.numpy()
    colours = ["#e66101" if v > 0 else "#999999" for v in values]
    fig = go.Figure(go.Bar(x=positions, y=values, marker_color=colours, customdata=[esc(t) for t in tokens],
                           hovertemplate="position %{x}: %{customdata}<br>activation %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="token", tickangle=-60, tickfont=FONT, **token_ticks(tokens, first_position, WIDE_TICKS))
    fig.update_yaxes(title="activation", zeroline=True)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10),
                      title=dict(text=f"Neuron {neuron} of layer {layer} on your text (orange: fires)",
                                 font=dict(size=14)))
    return fig


SNIPPET_CSS = (
    ".gb-ff { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95rem; line-height: 1.9;"
    " margin-bottom: 0.6rem; }"
    # inline-block tokens: a long snippet wraps between tokens, never inside one
    ".gb-ff span.t { display: inline-block; white-space: pre; padding: 0 2px; margin: 1px 1px; border-radius: 3px;"
    " line-height: 1.5; }"
    ".gb-ff span.peak { outline: 2px solid #222; font-weight: 600; }"
    ".gb-ff .row { display: flex; gap: 0.8em; align-items: baseline; border-bottom: 1px solid #e4e4e4;"
    " padding: 2px 0; }"
    ".gb-ff .val { flex: 0 0 8.5em; white-space: nowrap; color: #444; font-size: 0.85rem; }"
    ".gb-ff .snip { flex: 1 1 auto; min-width: 0; }"
)


def _span(token: str, act: float, scale: float, peak: bool = False, title: str = "") -> str:
    alpha = 0.0 if not math.isfinite(act) or act <= 0 or scale <= 0 else min(1.0, act / scale)
    r, g, b = HIGHLIGHT
    cls = "t peak" if peak else "t"
    tip = html.escape(title or f"activation {act:.3f}", quote=True)  # an attribute: quotes escaped too
    return (f'<span class="{cls}" style="background: rgba({r},{g},{b},{alpha:.2f})" title="{tip}">'
            f"{html.escape(token)}</span>")


def text_html(tokens: Sequence[str], acts: Sequence[float], scale: float, first_position: int = 0) -> str:
    """The user's tokens, each shaded by the neuron's activation (0 = none, `scale` = full orange)."""
    spans = [_span(t, a, scale, title=f"position {first_position + i}: {t}, activation {a:.3f}")
             for i, (t, a) in enumerate(zip(tokens, acts))]
    return f'<div class="gb-ff">{"".join(spans)}</div>'


def snippets_html(examples: Sequence[Example], scale: float) -> str:
    """Max-activating snippets, one per row: peak value, story number, the tokens shaded, the peak outlined."""
    rows = []
    for ex in examples:
        spans = "".join(_span(t, a, scale, peak=i == ex.peak) for i, (t, a) in enumerate(zip(ex.tokens, ex.acts)))
        rows.append(f'<div class="row"><span class="val">{ex.value:.3f} · story {ex.doc + 1}</span>'
                    f'<span class="snip">{spans}</span></div>')
    return f'<div class="gb-ff">{"".join(rows)}</div>'


def examples_frame(examples: Sequence[Example]) -> pd.DataFrame:
    return pd.DataFrame({
        "rank": range(1, len(examples) + 1),
        "activation": [e.value for e in examples],
        "story": [e.doc + 1 for e in examples],
        "position": [e.pos for e in examples],
        "token": [e.tokens[e.peak] for e in examples],
        "snippet": ["".join(e.tokens) for e in examples],
    })


def matrix_frame(matrix: torch.Tensor, tokens: Sequence[str], columns: Sequence[str], first_position: int = 0
                 ) -> pd.DataFrame:
    """A [pos, column] matrix as a table with the position and token first."""
    frame = pd.DataFrame(matrix.numpy(), columns=list(columns))
    frame.insert(0, "token", list(tokens))
    frame.insert(0, "position", range(first_position, first_position + len(tokens)))
    return frame
