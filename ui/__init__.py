"""Glassbox UI: the only Streamlit-aware shared code. Pages import from here; engine never imports ui.

Shared by every page (this package's modules): page setup and the sidebar (state, pages), the model
choice (models), cached traces (cache), the error boundary (errors), token chips (chips), figure toolbars
(plots) and escaping (text). Each page's own builders live in its wing: tokens/, attention/, feedforward/,
next_token/, train/, rlhf/; workshop/ adds the guided tour, presenter mode, links to the exact view and the
glossary on top of every page (setup_page calls it).

A page is thin:

    choice = ui.setup_page("Attention", "👀")
    text = ui.text_input_area()
    trace = ui.trace_or_stop(text, choice)
    ...draw from `trace` with ui builders...
"""
from .cache import context_message, get_encoding, get_trace, trace_or_stop
from .chips import MAX_CHIPS, chips_html, show_token_chips, token_overview
from .errors import Refused, error_boundary
from .models import (ModelChoice, current_model, default_model, forget_session_model, register_session_model,
                     session_models)
from .pages import PAGES, PageInfo, available_pages, page_links
from .state import MAX_CHARS, cap_text, get_text, set_text, setup_page, text_input_area, widget_key

__all__ = [
    "MAX_CHARS", "MAX_CHIPS", "PAGES", "ModelChoice", "PageInfo", "Refused", "available_pages", "cap_text",
    "chips_html", "context_message", "current_model", "default_model", "error_boundary", "forget_session_model",
    "get_encoding", "get_text", "get_trace", "page_links", "register_session_model", "session_models",
    "set_text", "setup_page", "show_token_chips", "text_input_area", "token_overview", "trace_or_stop",
    "widget_key",
]
