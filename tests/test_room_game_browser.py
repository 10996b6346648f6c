"""The workshop room in real browsers: a presenter and three attendees, each in their own browser context (their
own cookies and session), play a round end to end; and a server killed with SIGKILL in the middle of a round
comes back on the same database with every submitted guess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, _free_port, _healthy, open_app, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = "Once upon a time, there was a little"
EXCEPTION = "[data-testid='stException']"
# The reveal's chart as the browser holds it: the room's bars (trace 0), label -> count.
COUNTS_JS = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return null;
  const room = plot.data[0], out = {};
  room.x.forEach((label, i) => { if (room.customdata[i][0]) out[label] = room.customdata[i][0]; });
  return out;
}"""


def _tab(browser, url: str, width: int = 1280, height: int = 800):
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    open_app(tab, url)
    return context, tab


def _open_room(tab) -> str:
    tab.get_by_role("button", name="Open a room").click()
    tab.wait_for_selector(".gb-room-code")
    wait_for_app(tab)
    return tab.inner_text(".gb-room-code").strip()


def _open_round(tab, number: int) -> None:
    tab.get_by_role("combobox", name="Prompt for the next round").click()  # a typed prompt
    tab.get_by_role("option", name="Type a prompt").click()
    wait_for_app(tab)
    box = tab.get_by_role("textbox", name="Your prompt")
    box.fill(PROMPT)
    box.press("Control+Enter")
    wait_for_app(tab)
    tab.get_by_role("button", name=f"Open round {number}").click()
    tab.wait_for_selector(f"text=Round {number} is open")
    wait_for_app(tab)


def _join_and_guess(browser, link: str, name: str, word: str):
    context, tab = _tab(browser, link, 1000, 900)
    tab.get_by_role("textbox", name="Your name on the leaderboard (optional)").fill(name)
    tab.get_by_role("button", name="Join").click()
    tab.wait_for_selector("text=what comes next?", timeout=60_000)  # the open round, found by the page itself
    wait_for_app(tab)
    tab.get_by_role("textbox", name="Your guess: one word or token").fill(word)
    tab.get_by_role("button", name="Send my guess").click()
    tab.wait_for_selector("text=Counted.")
    return context, tab


def _answers(tab, number: int) -> str:
    metric = tab.locator("[data-testid='stMetric']", has_text=f"Answers in round {number}")
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_a_presenter_and_three_attendees_play_a_round(browser, tmp_path) -> None:
    env = {"GLASSBOX_ROOM_DB": f"sqlite:///{tmp_path / 'rooms.db'}"}
    with streamlit_server(tmp_path / "streamlit.log", env) as base:
        contexts = []
        try:
            context, presenter = _tab(browser, base + "/Room?present=1")
            contexts.append(context)
            code = _open_room(presenter)
            link = presenter.inner_text(".gb-room-link").strip()
            assert link == f"{base}/Room?room={code}"
            qr = presenter.locator("[data-testid='stImage'] img").first
            assert qr.get_attribute("src") and qr.bounding_box()["width"] >= 320, "a QR code at presenter size"
            _open_round(presenter, 1)
            guesses = {"Ann": "girl", "Bob": "boy", "Cat": "girl"}
            attendees = {}
            for name, word in guesses.items():  # each joins by the link, as a phone scanning the code would
                context, tab = _join_and_guess(browser, link, name, word)
                contexts.append(context)
                attendees[name] = tab
            presenter.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => "
                "m.innerText.includes('Answers in round 1') && m.innerText.includes('3'))", timeout=10_000)
            assert _answers(presenter, 1) == "3", "counted on the presenter's screen without a click"
            presenter.get_by_role("button", name="Close round 1 and reveal").click()
            presenter.wait_for_selector(".js-plotly-plot")
            wait_for_app(presenter)
            counts = presenter.evaluate(COUNTS_JS)
            assert counts == {"␣girl": 2, "␣boy": 1}, "the histogram's counts are the guesses"
            for name, tab in attendees.items():
                tab.wait_for_selector(".js-plotly-plot", timeout=15_000)  # the reveal reaches them by itself
                wait_for_app(tab)
                assert tab.evaluate(COUNTS_JS) == counts
                assert f"Your guess ␣{guesses[name]}" in tab.inner_text("[data-testid='stMain']")
                assert tab.locator(EXCEPTION).count() == 0
            board = presenter.inner_text("[data-testid='stMain']")
            assert "Leaderboard" in board and presenter.locator(EXCEPTION).count() == 0
        finally:
            for context in contexts:
                context.close()


def _start(log: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **env})
    deadline = time.monotonic() + 90
    while not _healthy(f"http://127.0.0.1:{port}"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.5)
    return proc


def test_a_server_killed_mid_round_loses_no_guess(browser, tmp_path) -> None:
    env = {"GLASSBOX_ROOM_DB": f"sqlite:///{tmp_path / 'rooms.db'}"}
    port, log = _free_port(), tmp_path / "streamlit.log"
    base = f"http://127.0.0.1:{port}"
    proc = _start(log, port, env)
    contexts = []
    try:
        context, presenter = _tab(browser, base + "/Room")
        contexts.append(context)
        code = _open_room(presenter)
        with presenter.expect_download() as saved:  # the presenter keeps the key, as the page suggests
            presenter.get_by_role("button", name="Save the presenter key").click()
        key = Path(saved.value.path()).read_text()
        _open_round(presenter, 1)
        for name, word in (("Ann", "girl"), ("Bob", "boy"), ("Cat", "dog")):
            contexts.append(_join_and_guess(browser, f"{base}/Room?room={code}", name, word)[0])
        os.killpg(proc.pid, signal.SIGKILL)  # no shutdown, no flush: the process is gone
        proc.wait()
        proc = _start(log, port, env)  # the same database, a fresh process with no sessions
        context, again = _tab(browser, base + "/Room")
        contexts.append(context)
        again.get_by_text("Take back a room you opened").click()
        again.get_by_role("textbox", name="Room code").last.fill(code)
        again.get_by_label("Presenter key (the file you saved)").fill(key)
        again.get_by_role("button", name="Present this room").click()
        again.wait_for_selector("text=Round 1 is open")
        wait_for_app(again)
        assert _answers(again, 1) == "3", "every guess submitted before the kill is there"
        again.get_by_role("button", name="Close round 1 and reveal").click()
        again.wait_for_selector(".js-plotly-plot")
        wait_for_app(again)
        assert again.evaluate(COUNTS_JS) == {"␣girl": 1, "␣boy": 1, "␣dog": 1}
    finally:
        for context in contexts:
            context.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
