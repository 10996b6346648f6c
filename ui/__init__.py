"""Glassbox UI: the only Streamlit-aware code. Pages import from here; engine never imports ui.

A strict stack, bottom to top (tests/test_layout.py enforces it: no import up the stack, no wing importing another
wing, no circle):

- leaves: models, cache, errors, text, colours, server, lru, runs (know no page)
- terms (the glossary's words), state (session state), plots, chips, view (the link vocabulary)
- page: `Page(key, title, script, icon, blurb, settings)`, one declared object per page
- wings, one per page: tokens, attention, feedforward, next_token, intervene, train, rlhf (each declares its
  PAGE; never another wing, never the workshop)
- registry: PAGES, the one list of pages
- workshop: links, the tour, presenter mode, the glossary page (reads PAGES and Page.settings)
- frame: page setup, the sidebar, the text box, page links
- this face, for pages/ and app.py

A page is thin:

    choice = ui.setup_page(attention.PAGE)
    text = ui.text_input_area()
    trace = ui.trace_or_stop(text, choice)
    ...draw from `trace` with its wing's builders...
"""
from .cache import get_trace, trace_or_stop
from .chips import token_overview
from .errors import Refused, error_boundary
from .frame import link_to, page_links, setup_page, text_input_area
from .models import ModelChoice
from .state import widget_key

__all__ = ["ModelChoice", "Refused", "error_boundary", "get_trace", "link_to", "page_links", "setup_page",
           "text_input_area", "token_overview", "trace_or_stop", "widget_key"]
