"""The Attention page: its declaration, its tabs and link settings, and what it has chosen: a layer, a head and a
query token, plus the page's other widgets.

Streamlit forgets the state of widgets a run does not draw (a closed tab, another page), so each widget is
filled from a canonical session key before it is drawn and copies its value back on change (ui.state's
`remembered`). Clicks on figures write both keys, so a click and a selectbox always agree.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import streamlit as st

from engine import Trace

from ..page import Page
from ..state import MAX_CHARS
from ..terms import define
from ..view import Context, Setting, Unusable, fmt, head, kept, layer, position, slug, tab

TABS = ("All heads", "How a weight is made", "What kind of head?", "Context changes meaning", "Compare two prompts")
OWN = "Your own pair"
# name -> (sentence A, sentence B, the shared word), in the story model's world. Each word is one token of
# the default model's vocabulary (a word split in pieces is read at its last piece, which may be a plain
# fragment like "ank"), and its meanings are ones children's stories use.
PAIRS: dict[str, tuple[str, str, str]] = {
    "bank: a river's or for money": ("We sat on the bank of the river and watched the ducks swim.",
                                     "Mom took her money to the bank in town.", "bank"),
    "played: a game or a song": ("The children played with a ball in the garden.",
                                 "The old man played a happy song on his piano.", "played"),
    "light: a lamp or not heavy": ("It was dark, so Tom turned on the light.",
                                   "The box was so light that Lily could carry it.", "light"),
    "park: a place or the car": ("After lunch they went to the park to play.",
                                 "Dad had to park the car near the shop.", "park"),
    "watch: on a wrist or to look": ("Tom looked at his new watch to see the time.",
                                     "They sat down to watch the moon rise.", "watch"),
    "ring: on a finger or a bell": ("Lily wore a pretty ring on her finger.",
                                    "The bell will ring when school is over.", "ring"),
}


# --- link settings ---------------------------------------------------------------------------------------------

def _apply_query(ctx: Context, raw: str) -> None:
    keep_query(ctx.choice.key, ctx.text[:MAX_CHARS], position(ctx, raw))


def _fmt_or_none(value: object) -> str | None:
    return None if value is None else fmt(value)


def _read_pair(ctx: Context) -> str | None:
    name = PAGE.kept("pair")
    return PAIRS[name][2] if name in PAIRS else "own" if name == OWN else None


def _apply_pair(ctx: Context, raw: str) -> None:
    if raw == "own":  # the sentences follow as `a` and `b`
        PAGE.choose("pair", OWN)
        return
    for name, (a, b, word) in PAIRS.items():
        if raw.lower() in (word, slug(name)):
            for key, value in (("pair", name), ("sentence_a", a), ("sentence_b", b), ("word", word)):
                PAGE.choose(key, value)
            return
    raise Unusable("no such example pair")


def _own(widget: str, limit: int) -> Setting:
    """A sentence (or the word) of the reader's own pair: in a link only when the pair is their own."""
    def read(ctx: Context) -> str | None:
        return PAGE.kept(widget) if PAGE.kept("pair") == OWN else None

    def apply(ctx: Context, raw: str) -> None:
        if len(raw) > limit:
            raise Unusable(f"longer than {limit:,} characters")
        PAGE.choose("pair", OWN)
        PAGE.choose(widget, raw)
    return Setting({"sentence_a": "a", "sentence_b": "b"}.get(widget, widget), read, apply)


PAGE = Page("attention", "Attention", "pages/2_Attention.py", ":material/visibility:",
            "Which earlier tokens each position looks at, head by head, and how each weight is made.",
            settings=(tab(TABS), kept("layer", layer), kept("head", head),
                      Setting("token", lambda ctx: _fmt_or_none(PAGE.kept("query")), _apply_query),
                      Setting("pair", _read_pair, _apply_pair), _own("sentence_a", MAX_CHARS),
                      _own("sentence_b", MAX_CHARS), _own("word", 100)), favicon="👀", remote=True)
_QUERY_OF = PAGE.key("query_of")  # session key: the (model, text) the kept query position belongs to


@dataclass(frozen=True)
class Pick:
    layer: int
    head: int
    query: int  # position of the query token


# The page's widgets keep their values across closed tabs and page changes (ui.state.remembered).
remembered = PAGE.remembered
kept_value = PAGE.kept
choose = PAGE.choose


def clicked_points(chart_key: str) -> list[dict[str, Any]]:
    """The points of a Plotly chart's current selection (a click selects one)."""
    event = st.session_state.get(chart_key)
    if not event:
        return []
    return list(event.get("selection", {}).get("points", []))


def _on_head_click(chart_key: str) -> None:
    for point in clicked_points(chart_key)[:1]:
        choose("query", int(point["customdata"][0]))


def head_click_args(chart_key: str) -> dict[str, Any]:
    """st.plotly_chart arguments (an NDIF model's head, drawn on the server): a click on the pattern picks the
    clicked row's query token."""
    return dict(key=chart_key, on_select=partial(_on_head_click, chart_key), selection_mode="points")


def keep_query(model_key: str, text: str, query: int) -> None:
    """Choose the query token of `text` under a model before the picker is drawn (a link or a tour step names
    one): the picker keeps it instead of starting the new text at its last token."""
    st.session_state[_QUERY_OF] = (model_key, text)
    choose("query", query)


def _new_text_starts_at_its_end(trace: Trace, model_key: str) -> None:
    if st.session_state.get(_QUERY_OF) != (model_key, trace.text):
        st.session_state[_QUERY_OF] = (model_key, trace.text)
        choose("query", len(trace) - 1)


def current_pick(trace: Trace, model_key: str) -> Pick:
    """The layer, head and query the session holds, for a view that draws its own pickers (the "All heads"
    view, in the browser): a kept value this model or text lacks falls back as the selectboxes' does."""
    _new_text_starts_at_its_end(trace, model_key)
    cfg = trace.config
    pick = []
    for name, size, default in (("layer", cfg.n_layer, 0), ("head", cfg.n_head, 0), ("query", len(trace), len(trace) - 1)):
        value = kept_value(name)
        if not (isinstance(value, int) and 0 <= value < size):
            value = default
            choose(name, value)
        pick.append(value)
    return Pick(*pick)


def pick_applier(trace: Trace) -> Callable[[Mapping[str, Any]], None]:
    """The callback for a pick the browser reports ({layer, head, query}): each a whole number in range, or it is
    left as it was (a hand-made message can say anything)."""
    sizes = {"layer": trace.config.n_layer, "head": trace.config.n_head, "query": len(trace)}

    def apply(view: Mapping[str, Any]) -> None:
        for name, size in sizes.items():
            value = view.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size:
                choose(name, value)
    return apply


PICKER_HELP = {"layer": "Layers count from 0, as in the model's activation names.",
               "head": define("attention head", "Heads count from 0. Clicking a tile of the overview picks it."),
               "query": define("query key value", "Clicking a row of the large pattern picks it too.")}


def head_picker(trace: Trace, model_key: str) -> Pick:
    """Layer, head and query token selectboxes in one row. A new text starts at its last token."""
    cfg = trace.config
    last = len(trace) - 1
    _new_text_starts_at_its_end(trace, model_key)
    cols = st.columns([1, 1, 2.2])
    layers, heads, positions = range(cfg.n_layer), range(cfg.n_head), range(len(trace))
    layer = cols[0].selectbox("Layer", layers, help=PICKER_HELP["layer"], **remembered("layer", 0, layers))
    head = cols[1].selectbox("Head", heads, help=PICKER_HELP["head"], **remembered("head", 0, heads))
    tokens = trace.tokens  # the strings only: a widget's format_func lives as long as the session (ui/memory.py)
    query = cols[2].selectbox("Query token (the token doing the looking)", positions,
                              format_func=lambda i: f"{i} · {tokens[i]}", help=PICKER_HELP["query"],
                              **remembered("query", last, positions))
    return Pick(int(layer), int(head), int(query))
