"""Live typing for the shared text box: the box reports its text while the user types, so the chips follow
every keystroke (Home and the Tokens page), not only Ctrl+Enter or leaving the box.

The box stays Streamlit's own multi-line `st.text_area` (it keeps a pasted text's line breaks, its label,
keyboard use, presenter mode's fold and AppTest's `at.text_area(key=...)` all work as before). A small
Components v2 component (`st.components.v2.component`, inline JavaScript, no build step) is mounted beside it,
unseen: it listens to the box's `input` events and, 150 ms after the last keystroke, sends the text as a trigger
value. Its callback makes that the session's text, and the rerun draws the chips. The box itself commits on
Ctrl+Enter or blur as before. Until then it is "dirty" in the browser, and Streamlit's text area ignores what
the server writes into a dirty box, so a rerun while the user types never undoes a keystroke.

Pages that run the model do not mount it: there a change still applies on Ctrl+Enter or blur, so typing never
runs the model ten times a second.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import streamlit as st

from .state import set_text

DELAY_MS = 150  # after the last keystroke: about one rerun per pause in typing, not one per key
EVENT = "typed"  # the trigger the component sends: the box's whole text

# The browser half. It runs again whenever `data` changes, so it attaches its listeners once per mount and
# reads the box to watch from `data` each time. The listeners sit on the document and pick the box by the
# class Streamlit gives a keyed widget's container (`st-key-<key>`): the box may be drawn after this, folded
# in presenter mode, or redrawn by React, and is found all the same.
JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  const host = parentElement;
  host.gbLive = { box: data.box, delay: data.delay, send: setTriggerValue };
  if (host.gbLiveOff) return host.gbLiveOff;
  let timer = null, last = null;
  const inBox = (e) => e.target instanceof HTMLTextAreaElement && e.target.closest("." + host.gbLive.box);
  const send = (area) => {
    timer = null;
    if (area.value !== last) { last = area.value; host.gbLive.send(data.event, area.value); }
  };
  const onInput = (e) => {
    if (!inBox(e) || e.isComposing) return;
    clearTimeout(timer);
    timer = setTimeout(() => send(e.target), host.gbLive.delay);
  };
  const onCommit = (e) => {  // Ctrl+Enter or leaving the box commits it: the pending report is not needed
    if (!inBox(e)) return;
    if (e.type === "focusout" || ((e.ctrlKey || e.metaKey) && e.key === "Enter")) {
      clearTimeout(timer); timer = null; last = e.target.value;
    }
  };
  document.addEventListener("input", onInput, true);
  document.addEventListener("compositionend", onInput, true);
  document.addEventListener("keydown", onCommit, true);
  document.addEventListener("focusout", onCommit, true);
  host.gbLiveOff = () => {
    clearTimeout(timer);
    for (const [kind, fn] of [["input", onInput], ["compositionend", onInput], ["keydown", onCommit],
                              ["focusout", onCommit]]) document.removeEventListener(kind, fn, true);
  };
  return host.gbLiveOff;
}
"""
CSS = '[class*="st-key-"][class*="-live_text"] { display: none; }'  # the component shows nothing itself


@cache
def _mount() -> Callable[..., Any]:
    """The component's mount function, registered once per process (Streamlit registers it again on a fresh
    runtime, as AppTest makes)."""
    return st.components.v2.component("glassbox.live_text", js=JS, isolate_styles=False)


def key_class(widget_key: str) -> str:
    """The CSS class Streamlit gives the container of the widget with key `widget_key` ("st-key-home-text_area")."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", widget_key)


def _typed(component_key: str) -> None:
    text = (st.session_state.get(component_key) or {}).get(EVENT)
    if isinstance(text, str):
        set_text(text)


def live_updates(widget_key: str, component_key: str) -> None:
    """Make the text box with key `widget_key` report its text as the user types (call right after drawing it).
    `component_key` names the unseen component; it must end in "live_text" (CSS hides it by that)."""
    _mount()(key=component_key, data={"box": key_class(widget_key), "delay": DELAY_MS, "event": EVENT},
             on_typed_change=partial(_typed, component_key))
