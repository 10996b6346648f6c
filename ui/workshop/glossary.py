"""The Glossary page's two sections, the key takeaways and the terms (ui.terms), each entry linked to the view
that shows it on the running model."""
from __future__ import annotations

import streamlit as st

from ..page import Page
from ..registry import BY_ID
from ..terms import Entry, takeaways, terms
from .links import view_link
from .tour import param_text, texts
from .views import settings_of


def view_of(entry: Entry) -> tuple[Page, dict[str, str]]:
    """The page and the link parameters of an entry's `see` (a `text` names one of tour.toml's [texts]).
    Raises ValueError for a page or a setting the app does not have."""
    see = dict(entry.see)
    page = BY_ID.get(see.pop("page", None))
    if page is None:
        raise ValueError(f"{entry.name}: `see` needs a page, one of {', '.join(BY_ID)}")
    view = {k: param_text(v) for k, v in see.items()}
    unknown = set(view) - set(settings_of(page))
    if unknown:
        raise ValueError(f"{entry.name}: {page.title} has no setting {sorted(unknown)}")
    if "text" in view:
        if view["text"] not in texts():
            raise ValueError(f"{entry.name}: no text named {view['text']!r} in tour.toml's [texts]")
        view["text"] = texts()[view["text"]]
    return page, view


def _see_link(entry: Entry, label: str) -> None:
    page, view = view_of(entry)
    view_link(page, view, label.format(page=page.title))


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
