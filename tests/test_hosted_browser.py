"""The hosted-model section in a real browser: type an endpoint, a model and a key into the Next token page,
ask, and see the hosted model's bars next to ours; the key shows nowhere in the page, the URL or the server log.

The app server (tests/conftest.py) starts without GLASSBOX_HOSTED_* settings, so everything is typed, as a
workshop attendee would; the fake OpenAI-compatible server runs in this test on 127.0.0.1."""
from __future__ import annotations

import math

import pytest
from conftest import open_app, wait_for_app
from hosted_fake import KEY, MODEL, STEPS, FakeServer

from ui.next_token.figures import fmt_prob

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PATH = "/Next_token"
CHART = "[data-testid='stPlotlyChart']"
EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def server():
    s = FakeServer()
    yield s
    s.stop()


def _type(tab, label: str, value: str) -> None:
    box = tab.locator(f"input[aria-label^='{label}']")  # the field, not its help button
    box.fill(value)
    box.press("Enter")  # a text_input commits on Enter
    wait_for_app(tab)


def _bar_texts(chart) -> list[str]:
    return [t.strip() for t in chart.locator(".bartext").all_text_contents()]  # SVG text has no innerText


def test_typed_endpoint_shows_hosted_bars_beside_ours(page, app_server: str, server, tmp_path_factory) -> None:
    open_app(page, app_server + PATH)
    page.get_by_text("Off.", exact=False).first.wait_for()
    _type(page, "Base URL", server.base_url)
    _type(page, "Model id", MODEL)
    _type(page, "API key", KEY)
    page.get_by_role("button", name="Ask for its next-token candidates").click()
    wait_for_app(page)
    hosted = page.locator(CHART).filter(has_text=f"Hosted: {MODEL}")
    ours = page.locator(CHART).filter(has_text="Ours: ")
    hosted.locator(".bartext").first.wait_for()
    texts = _bar_texts(hosted)
    for _, logprob in STEPS[0][1]:
        assert fmt_prob(math.exp(logprob)) in texts  # 50.0%, 30.0%, 10.0%, 5.0%, 1.00%: what the server sent
    assert any(t.endswith("not reported") for t in texts)
    assert _bar_texts(ours)
    a, b = ours.bounding_box(), hosted.bounding_box()
    assert a["x"] + a["width"] <= b["x"] + 1 and abs(a["y"] - b["y"]) < 40  # side by side, ours on the left
    assert server.requests[-1]["key"] == KEY and server.requests[-1]["path"] == "/v1/chat/completions"

    # The key is nowhere to be read: not in the page's text, the URL, or the app server's log.
    assert KEY not in page.inner_text("body") and KEY not in page.url
    logs = list(tmp_path_factory.getbasetemp().glob("server*/streamlit.log"))
    assert logs and all(KEY not in p.read_text(errors="replace") for p in logs)
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
