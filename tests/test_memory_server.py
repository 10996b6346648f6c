"""The reaper (ui/memory.py) against a real Streamlit server: a session whose tab closes is kept for
server.disconnectedSessionTTL and then ended: what its state held is freed, the server-wide budget stops
counting it, and its model zip's download address, which works without cookies, stops working (404).

Two sessions speak Streamlit's websocket protocol (bench/st_client.py) to `streamlit run tests/memory_app.py`
on 127.0.0.1: a holder (a value in its state, a 3 MB trace in the budget's count, a model zip offered for
download) and a probe (what the server holds, said on its page)."""
from __future__ import annotations

import asyncio
import io
import re
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.st_client import Client
from conftest import streamlit_server

TTL_S = 2  # server.disconnectedSessionTTL here; Streamlit's default is 120 s
ENDED_S = 60  # TTL + the app's grace + a reaper pass, with room for a busy machine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def _get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET with no cookies and no session: what anyone holding the address gets."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError):  # not listening (yet)
        return 0, b""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    log_path = tmp_path_factory.mktemp("memory-server") / "streamlit.log"
    args = ("--server.fileWatcherType", "none", "--server.disconnectedSessionTTL", str(TTL_S),
            "--browser.gatherUsageStats", "false")
    with streamlit_server(log_path, {"GLASSBOX_SESSIONS_MB": "64"}, "tests/memory_app.py", args) as base:
        yield base, log_path


def _line(client: Client, name: str) -> str:
    found = re.search(rf"^{name} ?(.*)$", client.texts(), re.MULTILINE)
    assert found, f"no {name!r} line on the page: {client.texts()!r}"
    return found.group(1)


def _download_url(client: Client) -> str:
    urls = [inner.url for what, inner in client.elements.values() if what == "download_button"]
    assert len(urls) == 1, client.elements
    return urls[0]


async def _session_ends(base: str) -> dict:
    holder = Client(base, "", query="role=holder")
    await holder.connect()
    assert not holder.errors, holder.errors
    sid = _line(holder, "session")
    url = base + _download_url(holder)
    probe = Client(base, "", query="role=probe")
    await probe.connect()
    seen = {"open": {"visitors": _line(probe, "visitors").split(), "held": _line(probe, "held"),
                     "budget": int(_line(probe, "budget bytes"))},
            "url": url, "sid": sid, "download open": _get(url)}
    await holder.close()
    deadline = time.monotonic() + ENDED_S
    while True:
        await asyncio.sleep(1)
        await probe.run()
        if sid not in _line(probe, "visitors").split() or time.monotonic() > deadline:
            break
    await asyncio.sleep(2)  # the reaper's next pass removes the download files the ended session left
    await probe.run()
    seen["ended"] = {"visitors": _line(probe, "visitors").split(), "held": _line(probe, "held"),
                     "budget": int(_line(probe, "budget bytes"))}
    seen["download ended"] = _get(url)
    await probe.close()
    return seen


def test_a_closed_session_is_ended_and_its_download_goes_with_it(server) -> None:
    base, log_path = server
    # Its own thread and event loop: an earlier test's sync Playwright may hold this thread's.
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, _session_ends(base)).result()
    assert seen["sid"] in seen["open"]["visitors"] and seen["open"]["held"] == "1"
    assert seen["open"]["budget"] == 3 * 2**20, "the holder's trace is in the server-wide count"
    status, body = seen["download open"]
    assert status == 200, "the download works while its session lives (without cookies: its address is the key)"
    assert zipfile.ZipFile(io.BytesIO(body)).comment.startswith(b"Glassbox download ")
    assert re.fullmatch(r".*/media/[0-9a-f]{32}\.zip", seen["url"]), seen["url"]

    assert seen["sid"] not in seen["ended"]["visitors"], "the reaper ended the closed session"
    assert seen["ended"]["held"] == "0", "what only its state held was freed"
    assert seen["ended"]["budget"] == 0, "the budget no longer counts its trace"
    assert seen["download ended"][0] == 404, "its download address stopped working"
    log = log_path.read_text()
    assert "failed" not in log and "Traceback" not in log, "every step through Streamlit's internals worked"
