"""The server's half of live token splitting (ui/live_text.py), run with AppTest: which pages report the text as
it is typed, and what a report does (the browser's half: tests/test_live_text_browser.py)."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from ui.live_text import EVENT, key_class
from ui.state import MAX_CHARS

TIMEOUT = 60
LIVE = {"app.py": True, "pages/1_Tokens_and_vectors.py": True, "pages/2_Attention.py": False,
        "pages/3_Feed_forward.py": False, "pages/4_Next_token.py": False}


def run(script: str) -> AppTest:
    return AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT).run()


def live_components(at: AppTest) -> list:
    return [c for c in at.get("bidi_component") if c.proto.component_name == "glassbox.live_text"]


def report(at: AppTest, value: object) -> AppTest:
    """Run the page as the browser does after the component reported `value`: every widget's state, plus the
    component's trigger (AppTest has no handle on a custom component, so its trigger state is made here)."""
    (component,) = live_components(at)
    states = at._tree.get_widget_states()
    trigger = f"$$STREAMLIT_INTERNAL_KEY_{component.proto.id}__events"
    states.widgets.append(WidgetState(id=trigger, json_trigger_value=json.dumps({"event": EVENT, "value": value})))
    return at._run(states)


def chip_text(at: AppTest) -> str:
    (chips,) = [m.value for m in at.markdown if 'class="gb-chips"' in m.value]
    return re.sub(r"<[^>]+>", "", chips)


@pytest.mark.parametrize("script", sorted(LIVE))
def test_only_pages_that_do_not_run_the_model_report_while_typing(script: str) -> None:
    at = run(script)
    assert not at.exception
    found = live_components(at)
    assert len(found) == int(LIVE[script])
    if found:  # it watches this page's box, and is hidden by its key
        page = at.session_state["state.page"]
        assert json.loads(found[0].proto.json)["box"] == key_class(f"{page}.text_area")
        assert found[0].proto.id.endswith(f"{page}.live_text")


def test_a_report_becomes_the_text_every_page_shows() -> None:
    at = report(run("app.py"), "The dog ran\nhome.")
    assert not at.exception
    assert at.session_state["state.text"] == "The dog ran\nhome."
    assert chip_text(at) == "The␣dog␣ran↵home."  # the chips follow, the line break kept
    assert at.query_params["text"] == "The dog ran\nhome."  # the link holds it
    # The box holds it too once the browser has committed it (in the browser a box being typed in is not
    # overwritten, in AppTest the server's value shows).
    assert at.text_area(key="home.text_area").value == "The dog ran\nhome."
    other = AppTest.from_file(str(ROOT / "pages/2_Attention.py"), default_timeout=TIMEOUT)
    other.session_state["state.text"] = at.session_state["state.text"]  # what a page change carries
    assert other.run().text_area(key="attention.text_area").value == "The dog ran\nhome."


def test_a_long_report_gets_the_cap_note_and_nonsense_is_ignored() -> None:
    at = report(run("pages/1_Tokens_and_vectors.py"), "word " * (MAX_CHARS // 5 + 10))
    assert not at.exception
    assert any(f"looks at the first {MAX_CHARS:,}" in i.value for i in at.info)
    before = at.session_state["state.text"]
    at = report(at, {"not": "a text"})  # a hand-made message: no text, nothing changes
    assert not at.exception and at.session_state["state.text"] == before
