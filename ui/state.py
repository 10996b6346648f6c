"""Page setup and the text a user works on.

Every page calls `setup_page` first: page config, styles, the sidebar (model selector, model facts, device).

The text is one per session, shared by every page: a presenter types it once and every page shows it.
Streamlit deletes the state of widgets a page does not draw, and gives same-key widgets on different pages
different identities. So the canonical text lives in a plain session key (`TEXT`), each page's text widget
has its own key (prefixed with the page's name), and the widget is synced to `TEXT` both ways: filled from it
before drawing, copied back to it by an `on_change` callback. The model selector works the same way.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import CheckpointError, describe
from engine.model.arch import differences, family_name

from .chips import CSS as CHIP_CSS
from .models import ModelChoice, describe_size, model_selector
from .pages import sidebar_nav
from .server import prepare_process
from .text import md

TEXT = "text"  # session key: the canonical text (not a widget key)
PAGE = "current_page"  # session key: the name of the page this run draws, set by setup_page
AREA_WIDGET = "text_area"  # the multi-line text box, on every page; commits on Ctrl+Enter or leaving the box
APPLY_HINT = "Press Ctrl+Enter (⌘+Enter on a Mac) or click outside the box to apply changes."
MODEL_WIDGET = "model_select"  # the sidebar model selector
DEFAULT_TEXT = "Once upon a time, a little fox found a shiny red ball in the garden."
MAX_CHARS = 5_000  # the most characters any view looks at; the rest stays in the box, ignored
HEARTBEAT_S = 60.0  # without a runtime, a background run outlives its last poll by this long

PAGE_CSS = """
[data-testid="stSidebar"] [data-testid="stCaptionContainer"] { font-size: 0.95rem; }
"""


def setup_page(title: str, icon: str = "🔬") -> ModelChoice:
    """Call first on every page (including when the page is opened directly by its URL).

    Sets the page title, draws the sidebar, and returns the model this session uses.
    Stops the page with a plain message if the model cannot be loaded.
    """
    st.set_page_config(page_title=f"{title} · Glassbox", page_icon=icon, layout="wide",
                       initial_sidebar_state=workshop().sidebar_state())  # presenter mode folds it
    st.html(f"<style>{CHIP_CSS}{PAGE_CSS}</style>")  # style-only HTML takes no space in the page
    st.session_state[PAGE] = title
    get_text()
    workshop().arrive(title)  # a link or a tour step sets the view before any widget is drawn
    with st.sidebar:
        sidebar_nav()
        st.divider()
        try:
            choice = model_selector(widget_key(MODEL_WIDGET))
        except (CheckpointError, RuntimeError, OSError) as e:
            # A missing or broken model folder, or GLASSBOX_DEVICE naming a device this machine lacks.
            st.error(f"The model could not be loaded: {e}")
            st.stop()
        _model_facts(choice)
    prepare_process()  # once per process: thread policy, gc.freeze (ui/server.py)
    workshop().chrome(title)  # the tour, presenter mode, "Link to this view"; the URL takes the view
    return choice


def workshop():
    """The workshop wing (ui/workshop), imported when first used: it is built on this module."""
    from . import workshop as wing
    return wing


def _model_facts(choice: ModelChoice) -> None:
    cfg = choice.model.config
    kv = f" ({cfg.n_kv_head} key/value)" if cfg.n_kv_head < cfg.n_head else ""
    st.markdown(
        f"**{md(choice.name)}**  \n"
        f"{family_name(cfg)} architecture, {describe_size(choice.n_params)} parameters  \n"
        f"{_plural(cfg.n_layer, 'layer')} × {_plural(cfg.n_head, 'head')}{kv}, width {cfg.n_embd}  \n"
        f"context: {cfg.block_size:,} tokens  \n"
        f"vocabulary: {cfg.vocab_size:,} tokens"
    )
    notes = differences(cfg)
    if notes:
        with st.expander("How it differs from GPT-2"):
            st.markdown("\n".join(f"- {n}" for n in notes))
    st.caption(f"Runs on {describe(choice.device)}")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def get_text() -> str:
    """The session's text (the full text as typed; `text_input_area` returns it capped at MAX_CHARS)."""
    return st.session_state.setdefault(TEXT, DEFAULT_TEXT)


def set_text(text: str) -> None:
    """Replace the session's text (e.g. an example button); every text box shows it on the next draw."""
    st.session_state[TEXT] = text


def widget_key(name: str) -> str:
    """A widget key unique to the current page: `Home.text_area`, `Attention.layer`, ..."""
    return f"{st.session_state.get(PAGE, 'page')}.{name}"


def _sync_text(key: str) -> None:
    st.session_state[TEXT] = st.session_state.get(key) or ""


def text_input_area(label: str = "Your text") -> str:
    """The shared text box, the same on every page. Returns the text capped at MAX_CHARS (possibly empty),
    with a note if capped.

    Always a multi-line box, which keeps a pasted text exactly, line breaks included. A one-line box would
    update as you type, but the browser turns the line breaks of a pasted text into spaces, silently: the
    same story then has other tokens on another page. Streamlit's multi-line box commits on Ctrl+Enter or on
    leaving it, and every page says so in the same words (APPLY_HINT).
    """
    text = get_text()
    key = widget_key(AREA_WIDGET)
    # Only write the widget's state when it differs: rewriting it on every run could undo keystrokes that
    # arrive while the page is rerunning.
    if st.session_state.get(key) != text:
        st.session_state[key] = text
    with workshop().folded(label):  # presenter mode folds the box away, one click opens it
        st.text_area(label, key=key, on_change=_sync_text, args=(key,), height=140,
                     placeholder="Type or paste text here.")
        st.caption(APPLY_HINT)
    return cap_text(get_text())


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


def kept_key(page: str, name: str) -> str:
    """The canonical session key of a remembered widget: `Attention.kept.layer`."""
    return f"{page}.kept.{name}"


def _copy_kept(widget: str, kept: str, then: Callable[[], None] | None) -> None:
    st.session_state[kept] = st.session_state[widget]
    if then is not None:
        then()


def remembered(page: str, name: str, default: Any, options: Sequence[Any] | None = None,
               then: Callable[[], None] | None = None) -> dict[str, Any]:
    """Keyword arguments for a widget whose value survives closed tabs and page changes: key and on_change
    (which keeps the new value, then calls `then`). Use as `st.slider("Steps", 5, 100, **remembered(...))`.

    Streamlit forgets the state of widgets a run does not draw, so the value lives in a canonical key
    (`kept_key`) and fills the widget before it is drawn. The kept value falls back to `default` when it is
    not among `options` (another model, a shorter text). A value written to the widget's key (as
    `st.session_state["Feed-forward.tab"] = ...` does) is kept too.
    """
    kept, widget = kept_key(page, name), f"{page}.{name}"
    # A widget drawn in the last run holds the latest value (or one code wrote to its key); one that was not
    # drawn (another page, a closed tab) has been forgotten by Streamlit, and the kept value fills it.
    value = st.session_state[widget] if widget in st.session_state else st.session_state.get(kept, default)
    if options is not None and value not in options:
        value = default
    st.session_state[kept] = value
    if st.session_state.get(widget) != value:
        st.session_state[widget] = value
    workshop().sync_url()  # the URL holds the view (a fragment's rerun reaches here too)
    return dict(key=widget, on_change=_copy_kept, args=(widget, kept, then))


def kept_value(page: str, name: str, default: Any = None) -> Any:
    return st.session_state.get(kept_key(page, name), default)


def choose(page: str, name: str, value: Any) -> None:
    """Set a remembered widget's value (from a callback: a click on a figure)."""
    st.session_state[kept_key(page, name)] = value
    st.session_state[f"{page}.{name}"] = value
