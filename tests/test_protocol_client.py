"""The load test's client (bench/protocol.py) against a live server: it opens a page, changes widgets and keeps the
message cache as a browser does, so bench/bench_protocol.py cannot silently measure nothing."""
from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from protocol import ProtocolError, Session, user_key  # noqa: E402

FINISHED = (0, 3)  # FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY


def test_user_key_is_read_from_an_element_id() -> None:
    assert user_key("$$ID-2eace4c85b84c7b4045ac8e68ac58518-attention.layer") == "attention.layer"
    assert user_key("$$ID-2eace4c85b84c7b4045ac8e68ac58518-a-key-with-dashes") == "a-key-with-dashes"
    assert user_key("$$ID-d4550e7a007caa716051f6c7acaab573-None") is None  # a widget without a key
    assert user_key("") is None and user_key("plain") is None


@pytest.mark.slow
def test_client_opens_a_page_and_changes_widgets(app_server: str) -> None:
    async def visit() -> None:
        s = Session(app_server, timeout_s=90)
        try:
            first = await s.open("/Attention")
            assert first.status in FINISHED and first.exceptions == []
            assert {"attention.text_area", "attention.view"} <= set(s.widgets)
            assert first.bytes > 10_000 and first.wire_bytes > 0  # the page's view data came

            text = "The protocol client typed this."
            run = await s.set("attention.text_area", text)
            assert run.status in FINISHED and run.exceptions == []
            assert s.url_param("text") == text  # the app took the text: its link holds it
            # The head is picked in the browser (ui/views): the view reports it, as its JavaScript does.
            sel = dict(s.view_data("attention.view")["sel"])
            run = await s.report("attention.view", {**sel, "head": 2})
            assert run.status == 3 and run.exceptions == []  # the view is in a fragment: only the fragment reran
            assert s.url_param("head") == "2"  # the server took note (the browser already drew it)
            with pytest.raises(ProtocolError, match="not a view drawn in the browser"):
                await s.report("attention.text_area", {"head": 1})

            await s.goto("Next token")
            lab = s.view_data("next_token.lab")
            temps = lab["options"]["temperature"]
            run = await s.report("next_token.lab", {**lab["sel"], "temperature": temps[1]})
            assert run.status in FINISHED and run.exceptions == []
            assert float(s.url_param("temp")) == temps[1]

            # Back on Attention the view opens on the head the browser reported: the server kept it across pages.
            again = await s.goto("Attention")
            assert again.status in FINISHED and again.exceptions == []
            assert s.view_data("attention.view")["sel"]["head"] == 2
        finally:
            await s.close()

    # Its own thread and event loop: an earlier test's sync Playwright may hold this thread's.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, visit()).result()
