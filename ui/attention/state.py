"""What the Attention page has chosen: a layer, a head and a query token, plus the page's other widgets.

Streamlit forgets the state of widgets a run does not draw (a closed tab, another page), so each widget is
filled from a canonical session key before it is drawn and copies its value back on change (ui.state's
`remembered`). Clicks on figures write both keys, so a click and a selectbox always agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import streamlit as st

from engine import Trace

from .. import state
from ..workshop import define

PAGE = "Attention"
_QUERY_OF = f"{PAGE}.kept.query_of"  # session key: the (model, text) the kept query position belongs to


@dataclass(frozen=True)
class Pick:
    layer: int
    head: int
    query: int  # position of the query token


# The page's widgets keep their values across closed tabs and page changes (ui.state.remembered).
remembered = partial(state.remembered, PAGE)
kept_value = partial(state.kept_value, PAGE)
choose = partial(state.choose, PAGE)


def clicked_points(chart_key: str) -> list[dict[str, Any]]:
    """The points of a Plotly chart's current selection (a click selects one)."""
    event = st.session_state.get(chart_key)
    if not event:
        return []
    return list(event.get("selection", {}).get("points", []))


def _on_overview_click(chart_key: str) -> None:
    for point in clicked_points(chart_key)[:1]:
        layer, head = point["customdata"][:2]
        choose("layer", int(layer))
        choose("head", int(head))


def _on_head_click(chart_key: str) -> None:
    for point in clicked_points(chart_key)[:1]:
        choose("query", int(point["customdata"][0]))


def overview_click_args(chart_key: str) -> dict[str, Any]:
    """st.plotly_chart arguments: a click on the overview picks the clicked cell's layer and head."""
    return dict(key=chart_key, on_select=partial(_on_overview_click, chart_key), selection_mode="points")


def head_click_args(chart_key: str) -> dict[str, Any]:
    """st.plotly_chart arguments: a click on a head's pattern picks the clicked row's query token."""
    return dict(key=chart_key, on_select=partial(_on_head_click, chart_key), selection_mode="points")


def keep_query(model_key: str, text: str, query: int) -> None:
    """Choose the query token of `text` under a model before the picker is drawn (a link or a tour step names
    one): the picker keeps it instead of starting the new text at its last token."""
    st.session_state[_QUERY_OF] = (model_key, text)
    choose("query", query)


def head_picker(trace: Trace, model_key: str) -> Pick:
    """Layer, head and query token selectboxes in one row. A new text starts at its last token."""
    cfg = trace.config
    last = len(trace) - 1
    if st.session_state.get(_QUERY_OF) != (model_key, trace.text):
        st.session_state[_QUERY_OF] = (model_key, trace.text)
        st.session_state[state.kept_key(PAGE, "query")] = last
    cols = st.columns([1, 1, 2.2])
    layers, heads, positions = range(cfg.n_layer), range(cfg.n_head), range(len(trace))
    layer = cols[0].selectbox("Layer", layers, help="Layers count from 0, as in the model's activation names.",
                              **remembered("layer", 0, layers))
    head = cols[1].selectbox("Head", heads, help=define("attention head", "Heads count from 0. Clicking a tile of "
                                                                      "the overview picks it."),
                             **remembered("head", 0, heads))
    query = cols[2].selectbox(
        "Query token (the token doing the looking)", positions,
        format_func=lambda i: f"{i} · {trace.tokens[i]}",
        help=define("query key value", "Clicking a row of the large pattern picks it too."),
        **remembered("query", last, positions))
    return Pick(int(layer), int(head), int(query))
