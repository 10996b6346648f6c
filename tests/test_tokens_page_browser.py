"""The "Tokens and vectors" page in a real browser: typing changes the chips, a 20,000-character paste gets a
clear message instead of a hang, and every tab opens cleanly."""
from __future__ import annotations

import pytest

from conftest import ROOT, open_app, wait_for_app
from engine import encode, load_tokenizer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

URL = "/Tokens_and_vectors"
EXCEPTION = "[data-testid='stException']"
MAIN_CHIPS = "document.querySelector('.gb-chips')"  # the first chip block is the page's own text
TABS = ("Compare tokenizers", "Watch BPE learn", "Tokenization pitfalls", "Vectors")


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


def _main_chip_count_becomes(tab, n: int) -> None:
    tab.wait_for_function(f"() => {MAIN_CHIPS} && {MAIN_CHIPS}.querySelectorAll('.gb-chip').length === {n}",
                          timeout=60_000)


def _main_text(tab) -> str:
    return tab.inner_text("[data-testid='stMain']")


def test_typing_changes_the_chips(page, app_server: str, tokenizer) -> None:
    open_app(page, app_server + URL)
    from playwright.sync_api import expect  # here, so a machine without playwright skips instead of failing
    box = page.get_by_label("Your text")
    # The script can report "notRunning" a frame before the box shows its text: wait for the text itself.
    expect(box).not_to_have_value("", timeout=60_000)
    first = len(encode(tokenizer, box.input_value()))
    _main_chip_count_becomes(page, first)
    text = "A tiny owl sat in the old oak tree."
    box.fill("")
    box.press_sequentially(text, delay=15)
    box.press("ControlOrMeta+Enter")  # applies it, as the caption under every text box says
    _main_chip_count_becomes(page, len(encode(tokenizer, text)))
    wait_for_app(page)
    shown = page.evaluate(f"() => Array.from({MAIN_CHIPS}.querySelectorAll('.gb-chip')).map(c => c.innerText)")
    assert "".join(shown) == text.replace(" ", "␣")
    assert page.locator(EXCEPTION).count() == 0


def test_pasting_20000_characters_shows_a_message(page, app_server: str, tokenizer) -> None:
    open_app(page, app_server + URL)
    huge = ("The fox ran far away, over the hill and into the wood. " * 400)[:20_000]
    box = page.get_by_label("Your text")
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.insert_text(huge)  # what a paste does: the whole text arrives in one input event
    box.press("ControlOrMeta+Enter")
    page.get_by_text("Glassbox looks at the first 5,000").wait_for(timeout=60_000)
    wait_for_app(page)
    main = _main_text(page)
    assert "Your text has 20,000 characters" in main
    assert "will not see" in main  # 5,000 characters are far more than the context holds
    n = len(encode(tokenizer, huge[:5_000]))
    page.wait_for_function(f"() => document.querySelectorAll('.gb-left-out .gb-chip').length === {n - 255}")
    assert page.locator(EXCEPTION).count() == 0
    assert box.input_value() == huge  # nothing typed is lost; the rest is only ignored


def test_every_tab_opens(page, app_server: str) -> None:
    open_app(page, app_server + URL)
    for name in TABS:
        page.get_by_role("tab", name=name).click()
        wait_for_app(page)
        assert page.locator(EXCEPTION).count() == 0
        assert "Something went wrong" not in _main_text(page)
    assert page.locator(".js-plotly-plot").count() == 3  # the Vectors tab's three plots
