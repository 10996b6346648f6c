"""The workshop wing: what a speaker and a room of attendees need on top of the pages.

- views: a view (page + settings) read from and applied to the session, over each Page's declared settings
- links: the URL always holds the view; a link opened elsewhere shows the same; "Link to this view"
- tour: the guided tour (steps in tour.toml), its place in the session, the panel with Back and Next
- presenter: presenter mode for a projector
- glossary: the Glossary page's sections, each entry linked to its view (the words are ui/terms.py's)

The workshop reads ui.registry's pages and their settings and knows no wing's internals. ui.frame calls
`sidebar_state`, `arrive` before the page draws anything and `chrome` after the sidebar, and hands `sync_url`
to ui.state, so a remembered widget drawn in a fragment updates the URL too.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import streamlit as st

from ..errors import error_boundary
from ..page import Page
from . import links, presenter, tour


def arrive(page: Page) -> None:
    """Before any widget is drawn: a link or a tour step sets the view."""
    with error_boundary("opening the link"):
        links.arrive(page)


def sidebar_state() -> str:
    """How the page opens its sidebar: collapsed in presenter mode, also when this run's link turns it on."""
    return "collapsed" if presenter.presenting(links.incoming_present()) else "expanded"


def chrome(page: Page) -> None:
    """The sidebar's workshop controls, then at the top of the page: presenter styles, a link's note, the
    tour's panel. Last, the URL takes the view."""
    with st.sidebar:
        st.divider()
        with error_boundary("reading the tour"):
            tour.start_button("sidebar")
        presenter.toggle()
        links.link_control(page, key=page.key("gb_link"))
    presenter.styles()
    links.show_note()
    if presenter.presenting():
        with st.container(horizontal=True, vertical_alignment="center"):
            presenter.leave_button()
            links.link_control(page, key=page.key("gb_link_main"))
            if not tour.touring():
                with error_boundary("reading the tour"):
                    tour.start_button("top")
    if tour.touring():
        with error_boundary("showing the tour"):
            tour.panel(page)
    links.sync_url()


def sync_url() -> None:
    """Write the session's view into the URL (cheap when it did not change)."""
    links.sync_url()


def folded(label: str) -> AbstractContextManager:
    """A secondary control's container: an expander in presenter mode, the page itself otherwise."""
    return presenter.folded(label)


__all__ = ["arrive", "chrome", "folded", "sidebar_state", "sync_url"]
