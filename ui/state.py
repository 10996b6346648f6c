"""Session state every page shares: the text, the page being drawn, presenter mode, and widgets whose values
survive a visit to another page.

Every session key is named `<owner>.<name>`: a page's keys come from its Page (`PAGE.key("layer")` ->
`attention.layer`), a shared module's from its own prefix (`state.text`, `models.selected`, `workshop.tour`).

The text is one per session, shared by every page: a presenter types it once and every page shows it.
Streamlit deletes the state of widgets a page does not draw, and gives same-key widgets on different pages
different identities. So the canonical text lives in a plain session key (`TEXT`), each page's text box has
its own key (`widget_key`), and the box is synced to `TEXT` both ways (ui.frame draws it).

This module knows no page and no wing. One thing flows up: a remembered widget's value is part of the view the
URL holds, so `remembered` tells whoever listens (`on_view_change`: ui.frame installs the workshop's URL sync
once per process) that the view may have changed; a fragment's rerun reaches here too.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

TEXT = "state.text"  # session key: the canonical text (not a widget key)
PAGE = "state.page"  # session key: the id of the page this run draws (ui.frame.setup_page sets it)
PRESENTING = "state.presenting"  # session key: presenter mode on (ui.workshop.presenter draws its switch)
DEFAULT_TEXT = "Once upon a time, a little fox found a shiny red ball in the garden."
MAX_CHARS = 5_000  # the most characters any view looks at; the rest stays in the box, ignored
HEARTBEAT_S = 60.0  # without a runtime, a background run outlives its last poll by this long
KEPT = ".kept"  # suffix of a remembered widget's canonical key

_listeners: list[Callable[[], None]] = []  # process-wide, set once: called when the view may have changed


def on_view_change(listener: Callable[[], None]) -> None:
    """Call `listener` whenever a remembered widget is drawn (ui.frame installs the URL sync; once)."""
    if listener not in _listeners:
        _listeners.append(listener)


def view_changed() -> None:
    """Tell the listeners the view may have changed without a remembered widget being drawn (a view drawn in
    the browser reported it: ui/views)."""
    for listener in _listeners:
        listener()


def get_text() -> str:
    """The session's text (the full text as typed; the text box returns it capped at MAX_CHARS)."""
    return st.session_state.setdefault(TEXT, DEFAULT_TEXT)


def set_text(text: str) -> None:
    """Replace the session's text (e.g. an example button); every text box shows it on the next draw."""
    st.session_state[TEXT] = text


def current_page() -> str:
    """The id of the page this run draws ("page" outside one, as in a test of a single builder)."""
    return st.session_state.get(PAGE, "page")


def widget_key(name: str) -> str:
    """A key for a widget drawn on every page (the text box, the model picker, the tour's buttons), unique to
    the page drawing it: `attention.text_area`. A page's own widgets use `PAGE.key(name)`."""
    return f"{current_page()}.{name}"


def presenting(link: bool | None = None) -> bool:
    """Presenter mode is on (`link`: what this run's link says, before it is applied)."""
    return link if link is not None else bool(st.session_state.get(PRESENTING, False))


def set_presenting(on: bool) -> None:
    st.session_state[PRESENTING] = on


def cap_text(text: str) -> str:
    """`text` cut to MAX_CHARS, saying so in the page when it was cut."""
    if len(text) <= MAX_CHARS:
        return text
    st.info(f"Your text has {len(text):,} characters. Glassbox looks at the first {MAX_CHARS:,}; "
            "the rest stays in the box but is ignored.", icon=":material/content_cut:")
    return text[:MAX_CHARS]


def session_alive(heartbeat_key: str) -> Callable[[], bool]:
    """A check a background run's thread can call: is the browser session that started it still there?

    Under `streamlit run` the runtime knows whether the session is connected. Where there is none (AppTest),
    the page's live view writes the time of each poll into `st.session_state[heartbeat_key]["t"]`, and the
    session counts as gone once it has not polled for HEARTBEAT_S.
    """
    beat = st.session_state.setdefault(heartbeat_key, {"t": time.monotonic()})
    ctx = get_script_run_ctx()
    if ctx is not None and Runtime.exists():
        runtime, session_id = Runtime.instance(), ctx.session_id
        return lambda: bool(runtime.is_active_session(session_id))
    return lambda: time.monotonic() - beat["t"] < HEARTBEAT_S


# --- remembered widgets ----------------------------------------------------------------------------------------

def kept_key(key: str) -> str:
    """The canonical session key of the remembered widget `key`: `attention.layer.kept`."""
    return key + KEPT


def _copy_kept(widget: str, then: Callable[[], None] | None) -> None:
    st.session_state[kept_key(widget)] = st.session_state[widget]
    if then is not None:
        then()


def _valid(value: Any, options: Sequence[Any] | None) -> bool:
    """A value a widget with these options can show: among them, and never NaN (a hand-made websocket message
    can put one into a number box; NaN equals nothing, so it would stick)."""
    if isinstance(value, float) and value != value:
        return False
    return options is None or value in options


def remembered(key: str, default: Any, options: Sequence[Any] | None = None,
               then: Callable[[], None] | None = None) -> dict[str, Any]:
    """Keyword arguments for a widget whose value survives closed tabs and page changes: key and on_change
    (which keeps the new value, then calls `then`). Use as `st.slider("Steps", 5, 100, **PAGE.remembered(...))`.

    Streamlit forgets the state of widgets a run does not draw, so the value lives in a canonical key
    (`kept_key`) and fills the widget before it is drawn. The kept value falls back to `default` when it is
    not among `options` (another model, a shorter text). A value written to the widget's key is kept too.
    """
    kept = kept_key(key)
    # A widget drawn in the last run holds the latest value (or one code wrote to its key); one that was not
    # drawn (another page, a closed tab) has been forgotten by Streamlit, and the kept value fills it.
    value = st.session_state[key] if key in st.session_state else st.session_state.get(kept, default)
    if not _valid(value, options):
        value = default
    st.session_state[kept] = value
    if st.session_state.get(key) != value:
        st.session_state[key] = value
    for listener in _listeners:  # the URL holds the view
        listener()
    return dict(key=key, on_change=_copy_kept, args=(key, then))


def kept_value(key: str, default: Any = None) -> Any:
    """The remembered widget `key`'s value, drawn or not."""
    return st.session_state.get(kept_key(key), default)


def choose(key: str, value: Any) -> None:
    """Set the remembered widget `key`'s value (from a callback: a click on a figure, a link)."""
    st.session_state[kept_key(key)] = value
    st.session_state[key] = value
