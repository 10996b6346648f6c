"""The workshop wing: what a speaker and a room of attendees need on top of the pages.

- views: a view (page + settings) in one vocabulary, read from and written to the keys the pages keep
- links: the URL always holds the view; a link opened elsewhere shows the same; "Link to this view"
- tour: the guided tour (steps in tour.toml), its place in the session, the panel with Back and Next
- presenter: presenter mode for a projector
- terms: the glossary's definitions and the key takeaways (glossary.toml); `define` gives a widget's help
- glossary: the Glossary page's sections, each entry linked to its view

ui.state.setup_page calls `sidebar_state`, `arrive` before the page draws anything and `chrome` after the
sidebar; ui.state.remembered calls `sync_url`. Nothing else in a page needs to know about the workshop. The
wing is built on ui.state and the pages' wings, which import `define` from here: so this face imports its
modules when first called, not when it is imported.
"""
from contextlib import AbstractContextManager

from .terms import define


def arrive(page: str) -> None:
    """Before any widget is drawn: a link or a tour step sets the view."""
    from ..errors import error_boundary
    from . import links
    with error_boundary("opening the link"):
        links.arrive(page)


def sidebar_state() -> str:
    """How the page opens its sidebar: collapsed in presenter mode, also when this run's link turns it on."""
    from . import links, presenter
    return "collapsed" if presenter.presenting(links.incoming_present()) else "expanded"


def chrome(page: str) -> None:
    """The sidebar's workshop controls, then at the top of the page: presenter styles, a link's note, the
    tour's panel. Last, the URL takes the view."""
    import streamlit as st

    from ..errors import error_boundary
    from . import links, presenter, tour
    with st.sidebar:
        st.divider()
        with error_boundary("reading the tour"):
            tour.start_button("sidebar")
        presenter.toggle()
        links.link_control(page, key=f"{page}.gb_link")
    presenter.styles()
    links.show_note()
    if presenter.presenting():
        with st.container(horizontal=True, vertical_alignment="center"):
            presenter.leave_button()
            links.link_control(page, key=f"{page}.gb_link_main")
            if not tour.touring():
                with error_boundary("reading the tour"):
                    tour.start_button("top")
    if tour.touring():
        with error_boundary("showing the tour"):
            tour.panel(page)
    links.sync_url()


def sync_url() -> None:
    """Write the session's view into the URL (cheap when it did not change)."""
    from . import links
    links.sync_url()


def folded(label: str) -> AbstractContextManager:
    """A secondary control's container: an expander in presenter mode, the page itself otherwise."""
    from . import presenter
    return presenter.folded(label)


__all__ = ["arrive", "chrome", "define", "folded", "sidebar_state", "sync_url"]
