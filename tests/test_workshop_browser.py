"""The workshop in a real browser: the whole tour walked by pressing Next with every request outside the app
blocked, presenter mode at 1280x720 with each step's main figure on screen without scrolling, and a link
copied from a changed view opening the same view on a fresh server."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from conftest import open_app, streamlit_server, wait_for_app
from ui.qr import qr_svg
from ui.workshop import tour

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
MAIN, SIDEBAR = "[data-testid='stMain']", "[data-testid='stSidebar']"
PANEL = ".st-key-gb_tour"
STEPS = tour.steps()

# The element's box and the room below the tour's panel, in the viewport's coordinates.
BOX_JS = """(selector) => {
  const el = document.querySelector(selector), bar = document.querySelector(%r);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, height: r.height, below: bar ? bar.getBoundingClientRect().bottom : 0,
          room: window.innerHeight};
}""" % PANEL


def _offline(context, base: str) -> list[str]:
    """Block every request that is not to the app's own address; the list collects what was asked for."""
    asked: list[str] = []
    own = urlsplit(base).netloc

    def route(r) -> None:
        if urlsplit(r.request.url).netloc == own:
            r.continue_()
        else:
            asked.append(r.request.url)
            r.abort()
    context.route("**/*", route)
    return asked


def _no_failure(tab, where: str) -> None:
    assert tab.locator(EXCEPTION).count() == 0, where
    assert "Something went wrong" not in tab.inner_text(MAIN), where


def _next(tab, step: tour.Step) -> None:
    """Next, as a reader would press it: the button, or Page Down (a presenter's clicker) every third step."""
    if step.number % 3 == 0:
        tab.locator(PANEL).hover()  # focus stays off the inputs: a shortcut does not fire while typing
        tab.keyboard.press("PageDown")
    else:
        tab.locator(PANEL).get_by_role("button", name=re.compile("^(Next|Finish)")).click()


def test_pressing_next_walks_the_whole_tour_offline(browser, app_server: str) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    asked = _offline(context, app_server)
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        open_app(tab, app_server)
        tab.locator(SIDEBAR).get_by_role("button", name="Take the guided tour").click()
        for step in STEPS:
            tab.wait_for_url(re.compile(rf"[?&]tour={step.number}(&|$)"))
            wait_for_app(tab)
            tab.locator(step.figure).first.wait_for(state="visible")
            assert tab.locator(PANEL).inner_text().startswith(f"Step {step.number} of {len(STEPS)}")
            _no_failure(tab, step.title)
            _next(tab, step)
        wait_for_app(tab)
        assert tab.locator(PANEL).count() == 0  # Finish leaves the tour
        _no_failure(tab, "after the tour")
        assert asked == []  # nothing the app needs comes from outside: no fonts, scripts or tiles
    finally:
        context.close()


def test_presenter_mode_shows_each_steps_figure_without_scrolling(browser, app_server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        open_app(tab, app_server + "/?present=1")
        assert tab.get_attribute(SIDEBAR, "data-collapsed") == "true"
        # Presenter mode's style lands with the first run; wait for it rather than read a frame too early.
        tab.wait_for_function("parseFloat(getComputedStyle(document.documentElement).fontSize) >= 20", timeout=30_000)
        tab.locator(MAIN).get_by_role("button", name="Take the guided tour").click()
        for step in STEPS:
            tab.wait_for_url(re.compile(rf"[?&]tour={step.number}(&|$)"))
            wait_for_app(tab)
            tab.locator(step.figure).first.wait_for(state="visible")
            # The page brings the figure under the panel once it has drawn; the test itself never scrolls.
            tab.wait_for_function(f"""() => {{ const b = ({BOX_JS})({step.figure!r});
                return b && b.height > 20 && b.top >= b.below - 2 && b.bottom <= b.room; }}""", timeout=30_000)
            assert "present=1" in tab.url
            _no_failure(tab, step.title)
            _next(tab, step)
    finally:
        context.close()


@pytest.fixture
def fresh_server(tmp_path) -> str:
    """A second server that has served nobody yet, as an attendee's copy of the link would meet."""
    with streamlit_server(tmp_path / "fresh.log") as base:
        yield base


def test_a_copied_link_opens_the_same_view_on_a_fresh_server(browser, app_server: str, fresh_server: str) -> None:
    from playwright.sync_api import expect  # here, so a machine without playwright skips instead of failing
    context = browser.new_context(viewport={"width": 1366, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    text = "The owl and the cat went to sea. The owl sang to the cat."
    try:
        open_app(tab, app_server + "/Attention")
        box = tab.locator("[data-testid='stTextArea'] textarea")
        box.fill(text)
        box.press("ControlOrMeta+Enter")
        wait_for_app(tab)
        # All heads draws its pickers in the browser (ui/views): they reach the session, and the URL, too.
        tab.wait_for_selector(".gb-v-attention[data-draws]:not([data-draws='0'])")
        tab.locator(".gb-v-attention select[data-role='layer']").select_option("3")
        tab.wait_for_url(re.compile(r"layer=3"))
        tab.locator(".gb-v-attention select[data-role='head']").select_option("1")
        tab.wait_for_url(re.compile(r"head=1"))
        wait_for_app(tab)
        tab.get_by_role("tab", name="How a weight is made").click()
        wait_for_app(tab)
        tab.wait_for_url(re.compile(r"head=1"))  # changing a control updates the URL
        assert "layer=3" in tab.url and "tab=how-a-weight-is-made" in tab.url
        tab.locator(SIDEBAR).get_by_role("button", name=re.compile("Link to this view")).click()
        tab.get_by_role("button", name="Copy link").click()
        copied = tab.evaluate("navigator.clipboard.readText()")
        assert copied == tab.locator(".gb-link-url").first.input_value()
        assert copied.startswith(app_server + "/Attention?")
        # The same link as a QR code, drawn on the server from the session's view: exactly the copied link.
        tab.locator("[data-testid='stPopoverBody']").get_by_text("Show it as a QR code").click()
        image = tab.locator("[data-testid='stPopoverBody'] [data-testid='stImage'] img").first
        image.wait_for()
        svg = tab.evaluate("async (src) => await (await fetch(src)).text()", image.get_attribute("src"))
        modules = re.compile(r'class="qrline"[^>]*\sd="([^"]+)"')  # the code's dark modules, as segno draws them
        assert modules.search(svg).group(1) == modules.search(qr_svg(copied)).group(1)
    finally:
        context.close()

    other = browser.new_context(viewport={"width": 1366, "height": 900})  # another attendee, another server
    tab = other.new_page()
    tab.set_default_timeout(90_000)
    try:
        open_app(tab, fresh_server + copied[len(app_server):])
        _no_failure(tab, "the copied link")
        expect(tab.locator("[data-testid='stTextArea'] textarea")).to_have_value(text)  # a cold browser: wait
        for label, value in (("Layer", "3"), ("Head", "1")):
            expect(tab.locator(MAIN).get_by_role("combobox", name=label, exact=True)).to_have_value(value)
        expect(tab.get_by_role("tab", name="How a weight is made")).to_have_attribute("aria-selected", "true")
        tab.locator(".st-key-attention-weights_bar").wait_for(state="visible")
        assert "could not be used" not in tab.inner_text(MAIN)
    finally:
        other.close()
