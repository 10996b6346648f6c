"""The views drawn in the browser: Streamlit Components v2 (`st.components.v2.component`), one per view, each a
JavaScript module made of the shared files (core, chart, heatmap) and the view's own, with views.css.

How a view talks to the server (`show`):
- The server sends the view's numbers once per (model, text), in `data`: its payload (ui/views/payload.py) and
  the view the session keys hold (`sel`: a layer, a head, the sampling settings, ...).
- Everything that only reads those numbers happens in the browser: picking, hovering, moving a slider.
- The browser reports the view back as the state value `view`. Its callback (`apply`, the page's) writes the
  page's session keys, so links, the tour and presenter mode know the view. That reruns only the fragment the
  view is drawn in, and the view is sent again with the very same `data` as before: Streamlit then sends a
  reference to the message the browser already holds (a few hundred bytes), and the browser does not redraw.
- When the server changes the view (a link, a tour step, another page's widget), `data` carries the new `sel`
  and the browser draws it.

The components draw in the page itself (no shadow root), under `.gb-v` classes: the tour and presenter mode
find their figures by CSS selectors, and the tests read them.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache, partial
from pathlib import Path
from typing import Any

import streamlit as st

from ..state import presenting, view_changed

JS = Path(__file__).parent / "js"
SHARED = ("core.js", "chart.js", "heatmap.js")  # in front of every view's own file, in this order
_COMMENT = re.compile(r"^\s*//.*\n", re.MULTILINE)

Apply = Callable[[Mapping[str, Any]], None]  # the page's callback: a reported view -> its session keys


def source(*files: str) -> str:
    """The module a view runs: the shared files and its own, whole-line comments left out (they would travel
    with every message that carries the view)."""
    return "".join(_COMMENT.sub("", (JS / name).read_text(encoding="utf-8")) for name in (*SHARED, *files))


@cache
def renderer(name: str, *files: str) -> Callable[..., Any]:
    """The mount function of view `name`, registered once per process (and again on a fresh runtime, as
    Streamlit's component() does for AppTest)."""
    return st.components.v2.component(f"glassbox.{name}", js=source(*files),
                                      css=(JS / "views.css").read_text(encoding="utf-8"), isolate_styles=False)


def plain(help_text: str) -> str:
    """A glossary help text (ui.terms.define, Markdown) as the browser's help shows it: plain text."""
    return re.sub(r"\\(.)", r"\1", help_text.replace("**", ""))


def _reported(key: str, apply: Apply) -> None:
    """The view's state callback: hand the reported view to the page, and remember that the browser has it."""
    value = (st.session_state.get(key) or {}).get("view")
    if not isinstance(value, Mapping):
        return
    apply(value)
    st.session_state[f"{key}.reported"] = True


def show(name: str, files: tuple[str, ...], key: str, payload: Mapping[str, Any], sel: Mapping[str, Any],
         apply: Apply, covers: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] = lambda data, sel: True
         ) -> None:
    """Draw view `name` under widget key `key` (a page's key: "attention.view"). `payload` is its numbers,
    `sel` the view the session keys hold, `apply` the page's callback for a view the browser reports.
    `covers(data, sel)`: whether data already sent holds what `sel` needs (a long text sends one layer at a
    time; a layer the browser lacks must come from the server)."""
    sent_key = f"{key}.sent"
    last = st.session_state.get(sent_key)
    view_changed()  # the URL holds the view: what the page chose for it, or what the browser reported
    if st.session_state.pop(f"{key}.reported", False):
        same = last is not None and all(last.get(k) is v or last.get(k) == v for k, v in payload.items())
        if same and covers(last, sel):
            data = last  # the browser drew this view itself: the same message again, sent as a reference
        else:
            data = None
    else:
        data = None
    if data is None:
        data = {**payload, "sel": dict(sel), "presenting": presenting()}
        st.session_state[sent_key] = data
    renderer(name, *files)(key=key, data=data, on_view_change=partial(_reported, key, apply))
