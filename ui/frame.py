"""The frame every page is drawn in: page setup, the sidebar (pages, model picker, model facts, the workshop's
controls), the shared text box, and links to pages. The one module above the workshop; pages call it first:

    choice = ui.setup_page(attention.PAGE)
    text = ui.text_input_area()
"""
from __future__ import annotations

import math

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from engine import CheckpointError, describe
from engine.model.arch import differences, family_name

from .chips import CSS as CHIP_CSS
from .live_text import CSS as LIVE_CSS
from .live_text import live_updates
from .memory import visitor
from .models import ModelChoice, describe_size, model_selector
from .page import Page
from .registry import HOME, available
from .server import FORWARD_THREADS, MAX_FORWARDS, prepare_process
from .state import PAGE, TEXT, cap_text, get_text, on_view_change, widget_key
from .text import md
from .workshop import arrive, chrome, folded, sidebar_state, sync_url

AREA_WIDGET = "text_area"  # the multi-line text box, on every page; commits on Ctrl+Enter or leaving the box
LIVE_WIDGET = "live_text"  # beside the box where tokens follow the typing (ui/live_text.py)
APPLY_HINT = ("On Home and the Tokens page the tokens follow as you type; the pages that run the model apply a "
              "change on Ctrl+Enter (⌘+Enter on a Mac) or when you click outside the box.")
MODEL_WIDGET = "model_select"  # the sidebar model selector
PAGE_CSS = """
[data-testid="stSidebar"] [data-testid="stCaptionContainer"] { font-size: 0.95rem; }
"""

on_view_change(sync_url)  # a remembered widget drawn in a fragment updates the URL too (once per process)


def setup_page(page: Page) -> ModelChoice:
    """Call first on every page (including when the page is opened directly by its URL).

    Sets the page title, draws the sidebar, and returns the model this session uses.
    Stops the page with a plain message if the model cannot be loaded.
    """
    st.set_page_config(page_title=f"{page.title} · Glassbox", page_icon=page.favicon, layout="wide",
                       initial_sidebar_state=sidebar_state())  # presenter mode folds it
    st.html(f"<style>{CHIP_CSS}{PAGE_CSS}{LIVE_CSS}</style>")  # style-only HTML takes no space in the page
    st.session_state[PAGE] = page.id
    _drop_impossible_values()
    visitor()  # this session's holdings, for the server-wide memory budget and the reaper (ui/memory.py)
    get_text()
    arrive(page)  # a link or a tour step sets the view before any widget is drawn
    with st.sidebar:
        for each in available():  # Streamlit's own list would show file names, e.g. "app"
            _link(each)
        st.divider()
        try:
            choice = model_selector(widget_key(MODEL_WIDGET))
        except (CheckpointError, RuntimeError, OSError) as e:
            # A missing or broken model folder, or GLASSBOX_DEVICE naming a device this machine lacks.
            st.error(f"The model could not be loaded: {md(str(e))}")
            st.stop()
        _model_facts(choice)
    prepare_process()  # once per process: thread policy, gc.freeze (ui/server.py)
    chrome(page)  # the tour, presenter mode, "Link to this view"; the URL takes the view
    if choice.remote and not page.remote:
        _needs_a_local_model(choice)
    return choice


def _needs_a_local_model(choice: ModelChoice) -> None:
    """A page that runs its model here, with an NDIF model picked: one sentence, the pages that draw it, stop."""
    st.info(f"{md(choice.name)} runs on NDIF, where a page asks only for what it draws. This page runs its model "
            "on this server: pick one of this server's models in the sidebar, or open a page that looks inside "
            "NDIF models:", icon=":material/cloud:")
    for each in available():
        if each.remote and each.id not in (HOME.id, "glossary"):
            _link(each)
    st.stop()


def _drop_impossible_values() -> None:
    """Forget any session value that is a NaN or an infinity, or a widget value that cannot be read back: no
    widget here offers one, but a hand-made websocket message can send it, and it would break every later run
    of that session (NaN equals nothing, so it would never be replaced). The widget shows its default again."""
    for key in list(st.session_state.keys()):
        try:
            value = st.session_state[key]
        except (ValueError, TypeError, OverflowError):  # a widget value Streamlit cannot read back (int(nan))
            value = math.nan
        if isinstance(value, float) and not math.isfinite(value):
            del st.session_state[key]


def _model_facts(choice: ModelChoice) -> None:
    cfg = choice.model.config
    kv = f" ({cfg.n_kv_head} key/value)" if cfg.n_kv_head < cfg.n_head else ""
    family = choice.model.family_name if choice.remote else family_name(cfg)
    st.markdown(
        f"**{md(choice.name)}**  \n"
        f"{family} architecture, {describe_size(choice.n_params)} parameters  \n"
        f"{_plural(cfg.n_layer, 'layer')} × {_plural(cfg.n_head, 'head')}{kv}, width {cfg.n_embd}  \n"
        f"context: {cfg.block_size:,} tokens  \n"
        f"vocabulary: {cfg.vocab_size:,} tokens"
    )
    notes = differences(cfg)
    if notes:
        with st.expander("How it differs from GPT-2"):
            st.markdown("\n".join(f"- {n}" for n in notes))
    if choice.remote:
        return  # where it runs, and what is sent there, is said under the picker (ui.ndif.key_panel)
    # The server's policy, not this thread's current setting (set once per process, after the first sidebar).
    per_pass = describe(choice.device, FORWARD_THREADS)
    st.caption(f"Runs on {per_pass}" + (f" per forward pass, {MAX_FORWARDS} at once" if choice.device.type == "cpu"
                                         else ""))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _sync_text(key: str) -> None:
    st.session_state[TEXT] = st.session_state.get(key) or ""


def text_input_area(label: str = "Your text", live: bool = False) -> str:
    """The shared text box, the same on every page. Returns the text capped at MAX_CHARS (possibly empty),
    with a note if capped.

    Always a multi-line box, which keeps a pasted text exactly, line breaks included (a one-line box updates as
    you type, but the browser turns the line breaks of a pasted text into spaces, silently: the same story then
    has other tokens on another page). Streamlit's multi-line box commits on Ctrl+Enter or on leaving it; with
    `live` (pages that only split the text) it also reports the text as the user types (ui/live_text.py).
    Every page says which in the same words (APPLY_HINT).
    """
    text = get_text()
    key = widget_key(AREA_WIDGET)
    # Only write the widget's state when it differs: rewriting it on every run could undo keystrokes that
    # arrive while the page is rerunning.
    if st.session_state.get(key) != text:
        st.session_state[key] = text
    with folded(label):  # presenter mode folds the box away, one click opens it
        st.text_area(label, key=key, on_change=_sync_text, args=(key,), height=140,
                     placeholder="Type or paste text here.")
        if live:
            live_updates(key, widget_key(LIVE_WIDGET))
        st.caption(APPLY_HINT)
    return cap_text(get_text())


def page_links() -> None:
    """A link to every available page but Home, each with its one-line description."""
    pages = [p for p in available() if p.id != HOME.id]
    if not pages:
        st.caption("No other pages are installed yet.")
        return
    for page in pages:
        if _link(page):
            st.caption(page.blurb)


def link_to(page: Page, caption: str = "") -> None:
    """A link to one page, with a line under it; nothing where the running app does not know the page."""
    if _link(page) and caption:
        st.caption(caption)


def _link(page: Page) -> bool:
    """Draw a link to `page` if the running app knows it (a script run on its own, as in tests, does not)."""
    try:
        st.page_link(page.script, label=page.title, icon=page.icon)
    except StreamlitPageNotFoundError:
        return False
    return True
