"""The load test's client (bench/protocol.py) against a live server: it opens a page, changes widgets and keeps the
message cache as a browser does, so bench/bench_protocol.py cannot silently measure nothing."""
from __future__ import annotations

import asyncio
import sys

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
            assert {"attention.text_area", "attention.head", "attention.layer"} <= set(s.widgets)
            assert first.bytes > 10_000 and first.wire_bytes > 0  # the page's figures came

            text = "The protocol client typed this."
            run = await s.set("attention.text_area", text)
            assert run.status in FINISHED and run.exceptions == []
            assert s.url_param("text") == text  # the app took the text: its link holds it
            options = list(s.widget("attention.head").proto.options)
            run = await s.set("attention.head", options[2])
            assert run.status == 3  # the head picker is in a fragment: only the fragment reran
            assert s.url_param("head") == "2"
            with pytest.raises(ProtocolError, match="not among its options"):
                await s.set("attention.head", "no such head")

            await s.goto("Next token")
            slider = s.widget("next_token.temperature")
            run = await s.set("next_token.temperature", slider.proto.options[1])
            assert run.status in FINISHED and s.url_param("temp") == slider.proto.options[1]

            # Back on Attention the unchanged figures come as references to the messages this client kept
            # (a reference to one it never kept would raise).
            again = await s.goto("Attention")
            assert again.status in FINISHED and again.exceptions == []
            assert again.references >= 1
        finally:
            await s.close()

    asyncio.run(visit())
