"""The server's sharing policy (ui/server.py): at most MAX_FORWARDS forward passes at once, on FORWARD_THREADS
threads in a page, and the process prepared once (gc.freeze)."""
from __future__ import annotations

import gc
import threading
import time

import pytest
import torch

import ui.server as server
from engine import settings


def test_at_most_max_forwards_run_at_once(monkeypatch):
    monkeypatch.setattr(server, "_gate", threading.BoundedSemaphore(2))
    inside, most, lock = [0], [0], threading.Lock()

    def work() -> None:
        with server.model_work():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most[0] == 2 and inside[0] == 0


def test_a_failing_forward_gives_its_place_back(monkeypatch):
    monkeypatch.setattr(server, "_gate", threading.BoundedSemaphore(1))
    try:
        with server.model_work():
            raise ValueError("boom")
    except ValueError:
        pass
    assert server._gate.acquire(blocking=False)  # free again
    server._gate.release()


def test_the_process_is_prepared_once(monkeypatch):
    monkeypatch.setattr(server, "_prepared", threading.Event())
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the policy's thread count: not for the tests
    server.prepare_process()
    frozen = gc.get_freeze_count()
    assert frozen > 100_000  # torch, transformers, plotly, pandas: out of the collector's way
    server.prepare_process()
    assert gc.get_freeze_count() == frozen  # a second call does nothing
    gc.unfreeze()
    assert torch.get_num_threads() == threads


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GLASSBOX_FORWARD_THREADS", "3")
    assert settings.current().forward_threads == 3
    monkeypatch.setenv("GLASSBOX_FORWARD_THREADS", "zero")  # a bad value is named, not silently replaced
    with pytest.raises(settings.SettingError, match="GLASSBOX_FORWARD_THREADS must be a whole number"):
        settings.current()


def test_a_session_keeps_its_models_within_a_memory_cap(monkeypatch):
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        import ui
        from engine_fixtures import tiny_model, tokenizer
        from ui.errors import Refused

        ui.models.register_session_model("first", tiny_model(seed=1), tokenizer())
        try:
            ui.models.register_session_model("second", tiny_model(seed=2), tokenizer())
        except Refused as e:
            st.error(str(e))
        ui.models.register_session_model("first", tiny_model(seed=3), tokenizer())  # replacing one is fine

    from ui.models import model_bytes
    from engine_fixtures import tiny_model
    one = model_bytes(tiny_model())
    monkeypatch.setenv("GLASSBOX_SESSION_MODELS_MB", str(1.5 * one / 2**20))
    at = AppTest.from_function(script).run()
    assert not at.exception
    assert "more than the" in at.error[0].value and "per session" in at.error[0].value
    assert set(at.session_state["models.session"]) == {"first"}


def test_a_run_model_over_the_cap_is_refused_once(monkeypatch):
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from engine_fixtures import tiny_model, tokenizer
        from ui.models import keep_run_model

        kept = [keep_run_model("run1", "my model", tiny_model(), tokenizer(), "done", "notice") for _ in range(2)]
        st.write(kept, st.session_state.get("notice"), st.session_state.get("done"))

    monkeypatch.setenv("GLASSBOX_SESSION_MODELS_MB", "0.001")
    at = AppTest.from_function(script).run()
    assert not at.exception
    assert at.session_state["done"] == "not kept:run1" and at.session_state["notice"][0] == "error"
    assert "models.session" not in at.session_state or not at.session_state["models.session"]
