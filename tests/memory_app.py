"""A Streamlit app for tests/test_memory_server.py: a session that holds what a visitor's session holds (a trace
in the budget's count, a value in its state, a model zip offered for download), and a probe session that
says what the server holds. Run by `streamlit run tests/memory_app.py`; `?role=holder` or `?role=probe`."""
from __future__ import annotations

import gc
import sys
import types
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from engine.train.bundle import export_zip  # noqa: E402
from engine_fixtures import tiny_model, tokenizer  # noqa: E402 - tests/ is on the path: this script's folder
from ui import memory  # noqa: E402
from ui.lru import ByteLRU  # noqa: E402
from ui.runs import download_comment  # noqa: E402

memory.REAP_S, memory.GRACE_S = 0.5, 0.5  # the reaper looks often and ends a session soon after Streamlit's TTL

# What outlives a script run: a module of its own, made on the first run.
probe = sys.modules.get("glassbox_memory_probe")
if probe is None:
    probe = types.ModuleType("glassbox_memory_probe")
    probe.held = weakref.WeakSet()  # every Held object still alive

    class Held:  # a value only a holder session's state refers to
        pass
    probe.Held = Held
    sys.modules[probe.__name__] = probe

me = memory.visitor()
role = st.query_params.get("role", "")
if role == "holder":
    if "held" not in st.session_state:
        st.session_state["held"] = probe.Held()
        probe.held.add(st.session_state["held"])
        cache = ByteLRU(None, 4, size=len)
        cache.put("trace", bytearray(3 * 2**20))  # a 3 MB "trace", counted by the server-wide budget
        st.session_state["traces"] = cache
        st.session_state["zip_bytes"] = export_zip(tiny_model(), tokenizer(), "glassbox-my-model",
                                             comment=download_comment())
    me.traces = st.session_state["traces"]
    st.download_button("Download my model (.zip, Hugging Face format)", st.session_state["zip_bytes"],
                       "glassbox-my-model.zip", "application/zip", key="zip")
    st.text(f"session {me.session_id}")
elif role == "probe":
    gc.collect()
    ids = sorted(v.session_id for v in memory.visitors())
    st.text(f"visitors {' '.join(ids)}")
    st.text(f"held {len(probe.held)}")
    st.text(f"budget bytes {memory.held_bytes()}")
