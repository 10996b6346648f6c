"""The page registry: one line per page, in the order the home page lists them.

To add a page: put its script in pages/ (it calls `ui.setup_page` first, so it also works when opened
directly by its URL) and add one `PageInfo` line to PAGES, e.g.
`PageInfo("pages/2_Attention.py", "Attention", ":material/visibility:", "Which tokens each position looks at.")`.
Material icons render everywhere; emoji need an emoji font on the viewing machine.
Entries whose file does not exist are not listed, so a line may land before its page.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from .models import ROOT


@dataclass(frozen=True)
class PageInfo:
    file: str  # script path relative to the repository root, e.g. "pages/2_Attention.py"
    title: str  # link text
    icon: str  # an emoji or a Material icon name, e.g. ":material/visibility:"
    blurb: str  # one line: what the page shows


HOME = PageInfo("app.py", "Home", ":material/home:", "What Glassbox is, and your text split into tokens.")
PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/1_Tokens_and_vectors.py", "Tokens and vectors", ":material/token:",
             "Text becomes tokens, tokens become vectors: chips, tokenizers compared, BPE learning live."),
    PageInfo("pages/2_Attention.py", "Attention", ":material/visibility:",
             "Which earlier tokens each position looks at, head by head, and how each weight is made."),
    PageInfo("pages/3_Feed_forward.py", "Feed-forward", ":material/hub:",
             "What each layer adds: MLP neurons, the residual stream, the logit lens, where the parameters live."),
    PageInfo("pages/4_Next_token.py", "Next token", ":material/casino:",
             "How probabilities become text: temperature, top-k/top-p/min-p, step-by-step generation, surprise."),
    PageInfo("pages/5_Train.py", "Train", ":material/model_training:",
             "Train a small transformer, watch it learn, then look inside the model you trained."),
    PageInfo("pages/6_Pretraining_vs_RLHF.py", "Pre-training vs RLHF", ":material/thumbs_up_down:",
             "Tell the model which completions you prefer and tune it with DPO: what changes, and what does not."),
    PageInfo("pages/7_Glossary.py", "Glossary", ":material/menu_book:",
             "The key takeaways and every term in plain words, each linked to the view that shows it."),
)


def available_pages() -> list[PageInfo]:
    """Registered pages whose script exists."""
    return [p for p in PAGES if (ROOT / p.file).is_file()]


def page_links() -> None:
    """A link to every available page, each with its one-line description."""
    pages = available_pages()
    if not pages:
        st.caption("No other pages are installed yet.")
        return
    for page in pages:
        if _link(page):
            st.caption(page.blurb)


def sidebar_nav() -> None:
    """The page list at the top of the sidebar (Streamlit's own list would show file names, e.g. "app")."""
    for page in [HOME, *available_pages()]:
        _link(page)


def link_to(file: str, caption: str = "") -> None:
    """A link to one registered page (by script path), with a line under it; nothing if it is not there."""
    for page in PAGES:
        if page.file == file and _link(page) and caption:
            st.caption(caption)


def _link(page: PageInfo) -> bool:
    """Draw a link to `page` if the running app knows it (a script run on its own, as in tests, does not)."""
    try:
        st.page_link(page.file, label=page.title, icon=page.icon)
    except StreamlitPageNotFoundError:
        return False
    return True
