"""Shared fixtures: a Streamlit server running app.py (one per test session) and one headless Chromium.

Browser tests skip when no browser can be launched, unless GLASSBOX_REQUIRE_BROWSER=1 (then they fail).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_S = 90  # the machine may be busy training; a cold start can take a while
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def streamlit_server(log_path: Path, env: dict[str, str] | None = None, script: str = "app.py",
                     args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run `streamlit run <script> <args>` on a free port with `env` added to the environment; yield its base
    URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", *args]
    with open(log_path, "wb") as log:
        # Its own process group, so stopping it reaches anything it started and nothing else.
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start (exit code {proc.poll()}):\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server started in its own process group: SIGTERM, then SIGKILL if it is still there after 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `streamlit run app.py` on a free port; yield its base URL; stop it after the session."""
    # A run outlives its closed tab by 30 s here, not the 90 s a user gets: the tab-close test waits for it.
    # Typed hosted endpoints may be private here: the hosted test's fake server is on 127.0.0.1, a local server.
    with streamlit_server(tmp_path_factory.mktemp("server") / "streamlit.log",
                          {"GLASSBOX_RECONNECT_GRACE_S": "30", "GLASSBOX_HOSTED_ALLOW_PRIVATE": "1"}) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session (Debian's if installed, else Playwright's own)."""
    required = os.environ.get("GLASSBOX_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        if required:
            pytest.fail("GLASSBOX_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        options = {"executable_path": str(CHROMIUM)} if CHROMIUM.exists() else {}
        try:
            b = p.chromium.launch(args=CHROMIUM_ARGS, **options)
        except Error as e:
            if required:
                pytest.fail(f"GLASSBOX_REQUIRE_BROWSER=1 but no browser could be launched: {e}")
            pytest.skip(f"no browser could be launched: {e}")
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server: str) -> Iterator[object]:
    """A fresh browser tab (a fresh Streamlit session). Fails the test if anything in the page opened a
    dialog (an injected `alert(1)` would)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield tab
    context.close()
    assert dialogs == [], f"the page opened dialogs: {dialogs}"


def wait_for_app(tab) -> None:
    """Wait until the script run finished, as Streamlit's own e2e tests do (`wait_for_app_run`): a short
    pause first so a run that is about to start is not missed, then connected and not running."""
    tab.wait_for_timeout(250)
    tab.wait_for_selector(APP_CONNECTED, timeout=60_000)
    tab.wait_for_selector(APP_IDLE, timeout=60_000)
    tab.wait_for_timeout(100)


def open_app(tab, url: str) -> None:
    """Navigate and wait for the first script run to finish."""
    tab.goto(url)
    tab.wait_for_selector("[data-testid='stAppViewContainer']", state="attached", timeout=60_000)
    wait_for_app(tab)
