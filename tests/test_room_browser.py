"""Many people on one server, in real browsers: four attendees at once see no error and only their own text
and models, and a session whose connection drops and comes back keeps its text, its model choice and the
model it tuned (bench/bench_room.py is the thirty-attendee version)."""
from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT, open_app, wait_for_app
from netcut import CuttableProxy

sys.path.insert(0, str(ROOT / "bench"))
from bench_room import INTERACTIONS, run_room  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIDEBAR = "[data-testid='stSidebar']"
TEXT_BOX = "[data-testid='stMain'] textarea, [data-testid='stMain'] input[type='text']"


def test_four_attendees_at_once_see_no_error_and_only_their_own_text(app_server: str) -> None:
    # Its own thread and event loop: the session's sync Playwright (the `browser` fixture) holds this one's.
    with ThreadPoolExecutor(1) as pool:
        room = pool.submit(asyncio.run, run_room(app_server, 4, timeout_s=420, stagger_s=0.2)).result()
    assert room.errors == []
    for what in INTERACTIONS:
        assert len(room.latencies[what]) == 4, what  # every attendee did everything


def test_a_dropped_connection_keeps_the_session(page, app_server: str) -> None:
    port = int(app_server.rsplit(":", 1)[1])
    proxy = CuttableProxy(port)
    try:
        open_app(page, proxy.url + "/Pretraining_vs_RLHF")
        page.get_by_role("button", name="Add this set's pairs").click()
        page.wait_for_selector("text=/Added [0-9]+ pairs/", timeout=60_000)
        wait_for_app(page)
        page.get_by_role("button", name="Tune a copy of the model on these pairs").click()
        page.wait_for_selector("text=/Tuned for [0-9]+ steps/", timeout=180_000)
        wait_for_app(page)
        page.locator(f"{SIDEBAR} [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name="tuned model (yours, this session only)").click()
        wait_for_app(page)
        page.locator(f"{SIDEBAR} a", has_text="Home").first.click()
        wait_for_app(page)
        box = page.locator(TEXT_BOX).first
        mine = "My own words, typed before the Wi-Fi went."
        box.fill(mine)
        box.press("Control+Enter")
        wait_for_app(page)

        proxy.cut(20)  # every connection closed, none accepted for 20 s
        page.wait_for_selector("[data-testid='stApp']:not([data-test-connection-state='CONNECTED'])")
        page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=120_000)
        wait_for_app(page)
        assert page.locator(TEXT_BOX).first.input_value() == mine
        facts = page.inner_text(SIDEBAR)
        assert "tuned model" in facts  # still the model in use: the server kept the session and its model
        page.locator(f"{SIDEBAR} a", has_text="Attention").first.click()  # and it still works
        wait_for_app(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert "tuned model" in page.inner_text(SIDEBAR)
    finally:
        proxy.close()
