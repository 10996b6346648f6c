"""A real browser against a real server: pages open by direct URL, token splitting, pasted line breaks kept,
no HTML injection.

The direct-URL test comes first in this file so it meets a freshly started server, as a workshop attendee
opening a link would.
"""
from __future__ import annotations

import re

import pytest
from streamlit.source_util import page_icon_and_name

from conftest import ROOT, open_app, wait_for_app
from engine import encode, load_tokenizer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
CHIP = ".gb-chip"
TEXT_BOX = "[data-testid='stTextArea'] textarea"


def _page_urls() -> list[tuple[str, str]]:
    """(test id, URL path) for every script in pages/ (found at collection time), then the home page.

    Pages come first: the very first request to the fresh server is then a page opened directly by its link.
    """
    urls = []
    for script in sorted((ROOT / "pages").glob("*.py")):
        if script.name.startswith(".") or script.name == "__init__.py":
            continue
        # Streamlit's own rule for the URL of a pages/ script ("2_👀_Attention.py" -> "/Attention").
        urls.append((script.name, "/" + page_icon_and_name(script)[1]))
    return urls + [("home", "/")]


PAGE_URLS = _page_urls()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


def _chip_count_becomes(tab, n: int) -> None:
    tab.wait_for_function(f"() => document.querySelectorAll('{CHIP}').length === {n}", timeout=60_000)


def _type(tab, text: str) -> None:
    """Type into the text box and apply it with Ctrl+Enter, as the caption under every box says."""
    box = tab.locator(TEXT_BOX)
    box.fill("")
    box.press_sequentially(text, delay=15)
    box.press("ControlOrMeta+Enter")


@pytest.mark.parametrize("path", [u for _, u in PAGE_URLS], ids=[i for i, _ in PAGE_URLS])
def test_page_opens_by_direct_url(page, app_server: str, path: str) -> None:
    open_app(page, app_server + path)
    # Streamlit answers an unknown page with a "Page not found" dialog and the home page at "/".
    assert page.url.split("?")[0] == app_server + path  # the query holds the view (ui/workshop/links.py)
    assert page.locator("[role='dialog']").count() == 0
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
    # The page ran the shared setup itself: its title and the sidebar's model facts come from ui.setup_page.
    assert page.title().endswith("· Glassbox")
    assert "parameters" in page.inner_text("[data-testid='stSidebar']")


def test_typing_updates_chips(page, app_server: str, tokenizer) -> None:
    open_app(page, app_server)
    page.wait_for_selector(CHIP)
    before = page.locator(CHIP).count()
    text = "The dog ran to the park, and then the dog ran home again."
    expected = len(encode(tokenizer, text))
    assert expected != before
    _type(page, text)
    _chip_count_becomes(page, expected)
    assert page.locator(TEXT_BOX).input_value() == text
    wait_for_app(page)
    assert page.locator(EXCEPTION).count() == 0


def test_pasted_line_breaks_are_kept_on_every_page(page, app_server: str, tokenizer) -> None:
    """A pasted story keeps its line breaks (a one-line box once made them spaces: other tokens at home than
    on the Attention page), and the next page reads the same text."""
    open_app(page, app_server)
    page.wait_for_selector(CHIP)
    story = "Once upon a time, a fox lived in the wood.\nShe liked the rain.\n\nOne day she met a bear.\n"
    box = page.locator(TEXT_BOX)
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.insert_text(story)  # what a paste does: the whole text arrives in one input event
    box.press("ControlOrMeta+Enter")
    n = len(encode(tokenizer, story))
    _chip_count_becomes(page, n)
    assert box.input_value() == story
    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Attention").click()  # same session
    page.wait_for_url(re.compile(r"/Attention(\?|$)"))  # the query holds the view
    wait_for_app(page)
    page.wait_for_function(f"() => document.querySelector(\"{TEXT_BOX}\").value === {story!r}",
                           timeout=60_000)


def test_html_in_text_shows_as_text(page, app_server: str, tokenizer) -> None:
    open_app(page, app_server)
    page.wait_for_selector(CHIP)
    text = "<img src=x onerror=alert(1)> <b>bold</b>"
    _type(page, text)
    _chip_count_becomes(page, len(encode(tokenizer, text)))
    wait_for_app(page)
    assert page.locator("img[src='x']").count() == 0
    assert page.locator(".gb-chips b").count() == 0
    shown = "".join(page.locator(CHIP).all_inner_texts())
    assert shown == text.replace(" ", "␣")
