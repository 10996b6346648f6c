"""The Train page in a real browser: start the tiny preset, watch the loss chart grow and a sample appear,
stop, then look at the trained model on the Attention page. And a run stops by itself when its tab closes.
"""
from __future__ import annotations

import pytest

from conftest import ROOT, open_app, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
SIDEBAR = "[data-testid='stSidebar']"
ARTIFACTS = ROOT / "test-artifacts"
PROGRESS = "text=/Step [0-9,]+ of [0-9,]+/"
LOSS_POINTS = """() => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.data && p.data.length
        && p.data[0].name === 'training text');
    return plot ? plot.data[0].x.length : 0;
}"""


def _start(tab, preset: str) -> None:
    tab.get_by_role("button", name=preset).click()
    wait_for_app(tab)
    tab.get_by_role("button", name="Start training").click()


def test_train_tiny_watch_stop_and_inspect_my_model(page, app_server: str) -> None:
    open_app(page, f"{app_server}/Train")
    _start(page, "tiny: 30 seconds")
    page.wait_for_selector(PROGRESS, timeout=60_000)
    page.wait_for_function(f"({LOSS_POINTS})() >= 5", timeout=60_000)
    first = page.evaluate(LOSS_POINTS)
    page.wait_for_function(f"({LOSS_POINTS})() > {first + 10}", timeout=60_000)  # the chart grows live
    page.wait_for_selector("text=What the model writes now", timeout=60_000)
    sample = page.locator("[data-testid='stCode']").first.inner_text()
    assert sample.strip()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "train-live.png"), full_page=True)

    page.get_by_role("button", name="Stop training").click()
    page.wait_for_selector("text=Stopped by you", timeout=60_000)
    wait_for_app(page)
    page.wait_for_selector("text=6. Use your model")
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(ARTIFACTS / "train-done.png"), full_page=True)

    # The trained model is this session's: pick it on the Attention page (the sidebar selector).
    attention = (ROOT / "pages" / "2_Attention.py").is_file()
    page.locator(f"{SIDEBAR} a", has_text="Attention" if attention else "Home").first.click()
    wait_for_app(page)
    page.locator(f"{SIDEBAR} [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="my model (yours, this session only)").click()
    wait_for_app(page)
    facts = page.inner_text(SIDEBAR)
    assert "my model" in facts and "2 layers × 4 heads, width 64" in facts and "context: 64 tokens" in facts
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")


def test_a_run_stops_when_its_tab_closes(browser, app_server: str) -> None:
    first = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = first.new_page()
    tab.set_default_timeout(60_000)
    open_app(tab, f"{app_server}/Train")
    _start(tab, "small: 3 minutes")
    tab.wait_for_selector(PROGRESS, timeout=60_000)
    first.close()  # the session ends; its run should stop well before its 3 minutes are up

    second = browser.new_context(viewport={"width": 1366, "height": 900})
    other = second.new_page()
    other.set_default_timeout(60_000)
    try:
        open_app(other, f"{app_server}/Train")
        other.get_by_role("button", name="tiny: 30 seconds").click()
        wait_for_app(other)
        other.get_by_role("button", name="Start training").click()
        wait_for_app(other)
        # The closed tab's run still holds the slot (30 s of grace for a reconnect on the test server), so this
        # one waits in line, then starts by itself once that run has stopped.
        other.wait_for_selector("text=Waiting in line", timeout=60_000)
        stop = other.get_by_role("button", name="Stop training")
        stop.wait_for(timeout=120_000)  # 30 s of grace plus slack on a busy machine
        stop.click()
        other.wait_for_selector("text=Stopped by you", timeout=60_000)
    finally:
        second.close()


def test_f5_on_train_keeps_the_training_text_and_settings(page, app_server: str) -> None:
    """A reload is a fresh session: only the URL carries the view back (ui/train/state.py's settings)."""
    pasted = "The otter kept a smooth pebble in her pocket and counted it every night.\n" * 12
    open_app(page, f"{app_server}/Train")
    page.get_by_role("radio", name="Paste text").check(force=True)
    wait_for_app(page)
    box = page.get_by_label("Text to train on")
    box.fill(pasted)
    box.press("Control+Enter")
    wait_for_app(page)
    layers = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").filter(has_text="Layers").first
    option = page.get_by_role("option", name="3", exact=True).first
    for _ in range(3):  # a click that lands while the page redraws focuses the box without opening it
        layers.click()
        try:
            option.wait_for(timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError; try again
            page.keyboard.press("Escape")
    option.click()
    wait_for_app(page)
    page.wait_for_function("() => new URL(location.href).searchParams.get('n_layer') === '3'")
    assert "corpus=paste-text" in page.url

    page.reload()
    page.wait_for_selector("[data-testid='stAppViewContainer']", state="attached")
    wait_for_app(page)
    assert page.get_by_role("radio", name="Paste text").is_checked()
    assert page.get_by_label("Text to train on").input_value() == pasted
    assert page.get_by_role("combobox", name="Layers").input_value() == "3"
    assert page.locator(EXCEPTION).count() == 0
