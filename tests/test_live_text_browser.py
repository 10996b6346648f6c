"""Live token splitting in a real browser: on Home and the Tokens page the chips follow the typing before
anything is pressed (the box reports its text 150 ms after the last key, ui/live_text.py); keystrokes typed
while the page reruns are kept; line breaks are kept; a page that runs the model waits for Ctrl+Enter."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, open_app, wait_for_app
from engine import encode, load_tokenizer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHIP = ".gb-chip"
CHIPS = ".gb-chips"  # the first set on a page is the text's (the Tokens page compares tokenizers below it)
TEXT_BOX = "[data-testid='stTextArea'] textarea"
EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


def _chips_become(tab, n: int) -> None:
    tab.wait_for_function(f"() => document.querySelector('{CHIPS}')?.querySelectorAll('{CHIP}').length === {n}",
                          timeout=60_000)


@pytest.mark.parametrize("path", ["/", "/Tokens_and_vectors"])
def test_chips_follow_typing_before_anything_is_pressed(page, app_server: str, tokenizer, path: str) -> None:
    open_app(page, app_server + path)
    page.wait_for_selector(CHIP)
    box = page.locator(TEXT_BOX)
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Delete")
    first = "The dog ran"
    box.press_sequentially(first, delay=20)
    _chips_become(page, len(encode(tokenizer, first)))  # no Ctrl+Enter, no click outside: the box is focused
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    # Keep typing while that rerun draws, a line break included: nothing typed is lost or undone.
    more = " to the park.\nThen it ran home again, and again, and again."
    box.press_sequentially(more, delay=15)
    text = first + more
    _chips_become(page, len(encode(tokenizer, text)))
    assert box.input_value() == text
    assert "↵" in page.locator(CHIPS).first.inner_text()  # the line break is a token of its own
    wait_for_app(page)
    assert box.input_value() == text
    assert page.locator(EXCEPTION).count() == 0
    page.wait_for_url(re.compile(r"text=The\+dog\+ran\+to\+the\+park"))  # the link holds the typed text


def test_the_typed_text_reaches_the_next_page(page, app_server: str) -> None:
    open_app(page, app_server)
    box = page.locator(TEXT_BOX)
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    box.press_sequentially("A cat sat on the mat.", delay=20)
    page.wait_for_url(re.compile(r"text=A\+cat\+sat"))  # reported while typing: the session has the text
    # Leaving the box also commits it (Streamlit's own text area). A click on a link that leaves the box sends
    # that commit after the page change, and Streamlit then reruns Home: the click is lost. Leave it first.
    page.keyboard.press("Tab")
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Attention").click()
    page.wait_for_url(re.compile(r"/Attention"))
    wait_for_app(page)
    page.wait_for_function(f"() => document.querySelector(\"{TEXT_BOX}\").value === 'A cat sat on the mat.'",
                           timeout=60_000)


def test_a_page_that_runs_the_model_waits_for_ctrl_enter(page, app_server: str) -> None:
    open_app(page, app_server + "/Attention")
    box = page.locator(TEXT_BOX)
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    box.press_sequentially("Typing here runs nothing yet.", delay=20)
    page.wait_for_timeout(1500)  # ten times the report delay: a live box would have reported long ago
    assert "Typing" not in page.url
    box.press("ControlOrMeta+Enter")
    page.wait_for_url(re.compile(r"text=Typing\+here"))
    wait_for_app(page)
    assert page.locator(EXCEPTION).count() == 0


def test_the_folded_box_of_presenter_mode_reports_too(page, app_server: str, tokenizer) -> None:
    open_app(page, app_server + "/?present=1")
    page.wait_for_selector(CHIP)
    assert not page.locator(TEXT_BOX).is_visible()  # folded into one line
    page.locator("[data-testid='stExpander'] summary", has_text="Your text").click()
    box = page.locator(TEXT_BOX)
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    text = "Slides show this."
    box.press_sequentially(text, delay=20)
    _chips_become(page, len(encode(tokenizer, text)))
    assert box.input_value() == text
