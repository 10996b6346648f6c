"""The Glossary page's two sections, the key takeaways and the terms (ui.workshop.terms), each entry linked to
the view that shows it on the running model."""
from __future__ import annotations

import streamlit as st

from . import links, tour, views
from .terms import Entry, takeaways, terms


def view_of(entry: Entry) -> tuple[str, dict[str, str]]:
    """The page and the link parameters of an entry's `see` (a `text` names one of tour.toml's [texts]).
    Raises ValueError for a page or a setting the app does not have."""
    see = dict(entry.see)
    page = see.pop("page", None)
    if page not in tour.page_files():
        raise ValueError(f"{entry.name}: `see` needs a page, one of {sorted(tour.page_files())}")
    view = {k: tour.param_text(v) for k, v in see.items()}
    unknown = set(view) - set(views.settings_of(page))
    if unknown:
        raise ValueError(f"{entry.name}: {page} has no setting {sorted(unknown)}")
    if "text" in view:
        if view["text"] not in tour.texts():
            raise ValueError(f"{entry.name}: no text named {view['text']!r} in tour.toml's [texts]")
        view["text"] = tour.texts()[view["text"]]
    return page, view


def _see_link(entry: Entry, label: str) -> None:
    page, view = view_of(entry)
    links.view_link(page, view, label.format(page=page))


def show_takeaways() -> None:
    with st.container(key="gb_takeaways"):
        cols = st.columns(3)
        for i, t in enumerate(takeaways()):
            with cols[i % 3].container(border=True, height="stretch"):
                st.markdown(f"**{i + 1}. {t.name}**  \n{t.text}")
                _see_link(t, "See it: {page}")


def show_terms() -> None:
    for term in sorted(terms().values(), key=lambda t: t.name.lower()):
        st.markdown(f"**{term.name}**  \n{term.text}")
        _see_link(term, "Where it shows: {page}")
