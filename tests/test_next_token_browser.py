"""The Next token page in a real browser: moving the temperature slider redraws the bars, and greedy (T = 0)
draws the same token twice."""
from __future__ import annotations

import pytest

from conftest import open_app, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PATH = "/Next_token"
CHART = "[data-testid='stPlotlyChart']"
EXCEPTION = "[data-testid='stException']"


def _bar_texts(tab) -> list[str]:
    """The text on the bars of the first chart (the distribution), as drawn in the page's SVG."""
    tab.wait_for_selector(f"{CHART} .bartext")
    return tab.locator(CHART).first.locator(".bartext").all_text_contents()  # SVG text has no innerText


def _temperature_thumb(tab):
    slider = tab.locator("[data-testid='stSlider']").filter(has_text="Temperature")
    return slider.locator("input[type='range']")  # Streamlit's thumb: a hidden range input, keyboard-driven


def _main_text(tab) -> str:
    return tab.inner_text("[data-testid='stMain']")


def test_moving_the_temperature_changes_the_bars(page, app_server: str) -> None:
    open_app(page, app_server + PATH)
    before = _bar_texts(page)
    thumb = _temperature_thumb(page)
    assert thumb.get_attribute("aria-valuetext") == "1"
    thumb.focus()
    for _ in range(5):  # 1 -> 0.5, one option per key
        thumb.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector(\"[data-testid='stSlider'] input[type='range']\")"
                           ".getAttribute('aria-valuetext') === '0.5'")
    wait_for_app(page)
    page.wait_for_function(
        "(old) => { const t = [...document.querySelectorAll(\"[data-testid='stPlotlyChart']\")][0]"
        ".querySelectorAll('.bartext'); return t.length && [...t].map(e => e.textContent).join('|') !== old; }",
        arg="|".join(before), timeout=60_000)
    after = _bar_texts(page)
    assert after != before
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in _main_text(page)


def test_greedy_draws_the_same_token_twice(page, app_server: str) -> None:
    open_app(page, app_server + PATH)
    thumb = _temperature_thumb(page)
    thumb.focus()
    thumb.press("Home")  # the first option: 0, greedy
    page.wait_for_function("() => document.querySelector(\"[data-testid='stSlider'] input[type='range']\")"
                           ".getAttribute('aria-valuetext') === '0 · greedy'")
    wait_for_app(page)
    page.get_by_text("T = 0: greedy.").wait_for()
    draw = page.get_by_role("button", name="Draw one token")
    for n in (1, 2):
        draw.click()
        page.wait_for_function(f"() => document.querySelectorAll('.gb-nt-draw').length === {n}", timeout=60_000)
        wait_for_app(page)
    first, second = page.locator(".gb-nt-draw").all_inner_texts()
    assert first == second and first.strip()
    assert page.locator(EXCEPTION).count() == 0
