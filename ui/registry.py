"""The one list of pages, in the order the sidebar and the home page list them.

A new page is one wing (ui/<wing>/ declaring `PAGE = Page(...)`, with the view settings it owns), its script in
pages/ (which calls `ui.setup_page(<wing>.PAGE)` first, so it works when opened directly by its link) and one
line here. The workshop (links, the tour, the glossary) and the frame (sidebar, page links) read this list and
each Page's settings; nothing else names a page. A page whose script does not exist is not listed.
"""
from __future__ import annotations

from .attention import PAGE as ATTENTION
from .feedforward import PAGE as FEEDFORWARD
from .intervene import PAGE as INTERVENE
from .models import ROOT
from .next_token import PAGE as NEXT_TOKEN
from .page import Page
from .rlhf import PAGE as RLHF
from .scale import PAGE as SCALE
from .room import PAGE as ROOM
from .tokens import PAGE as TOKENS
from .train import PAGE as TRAIN

HOME = Page("home", "Home", "app.py", ":material/home:", "What Glassbox is, and your text split into tokens.",
            favicon="🔬", remote=True)
GLOSSARY = Page("glossary", "Glossary", "pages/7_Glossary.py", ":material/menu_book:",
                "The key takeaways and every term in plain words, each linked to the view that shows it.",
                favicon="📖", remote=True)
PAGES: tuple[Page, ...] = (HOME, TOKENS, ATTENTION, FEEDFORWARD, NEXT_TOKEN, INTERVENE, TRAIN, RLHF, SCALE, ROOM, GLOSSARY)
BY_ID = {p.id: p for p in PAGES}


def page(page_id: str) -> Page:
    """The page with this id. Raises KeyError naming the ids there are."""
    try:
        return BY_ID[page_id]
    except KeyError:
        raise KeyError(f"no page {page_id!r}; the pages are {', '.join(BY_ID)}") from None


def available() -> list[Page]:
    """Registered pages whose script exists."""
    return [p for p in PAGES if (ROOT / p.script).is_file()]
