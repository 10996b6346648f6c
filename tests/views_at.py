"""AppTest helpers for the views drawn in the browser (ui/views): what a view was sent, and the browser reporting a
view back, as its state value `view` arrives from a real browser (no JavaScript runs in AppTest)."""
from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest


def component(at: AppTest, key: str):
    """The view mounted under widget key `key` ("attention.view")."""
    found = [c for c in at.get("bidi_component") if c.key == key]
    assert found, f"no view {key!r}; views: {[c.key for c in at.get('bidi_component')]}"
    return found[0]


def sent(at: AppTest, key: str) -> dict[str, Any]:
    """The data view `key` was sent in the last run."""
    return json.loads(component(at, key).proto.json)


def floats(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def ints(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<i4")


def report(at: AppTest, key: str, view: dict[str, Any]) -> AppTest:
    """Run the page as the browser does after view `key` reported `view` (its state value, as setStateValue sends
    it), with every other widget as it is."""
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=component(at, key).proto.id, json_value=json.dumps({"view": view})))
    return at._run(states)
