"""How one server process shares its cores between everyone's sessions: one policy, set once at start-up.

A workshop puts thirty sessions on one small server (two cores here, less on Community Cloud). Measured with
bench/bench_room.py, three things decide how long each waits:

- Threads per forward pass. Two torch threads per forward on a busy two-core box are 5-10x slower than one,
  since every thread waits for a core another session holds. Every page's model work runs on
  FORWARD_THREADS threads (default 1; GLASSBOX_FORWARD_THREADS overrides).
- Forward passes at once. At most MAX_FORWARDS run together (default: the core count;
  GLASSBOX_MAX_FORWARDS overrides); the rest wait their turn behind a spinner, not a frozen page.
- Garbage collection. Streamlit runs a full collection after every rerun (runner.postScriptGC). With torch,
  transformers, plotly and pandas loaded that walks about 460,000 objects: 0.2 s of a core per rerun, most of
  a fragment's cost. `gc.freeze()` after the model and every page's modules have loaded moves those objects
  out of the collector's sight (they live as long as the process anyway); what sessions create is still
  collected after each rerun.

Training and tuning runs are not counted here: they take a slot of their own (engine/train/runs.py), on
engine.model.device.run_threads() threads.
"""
from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

THREADS_ENV, FORWARDS_ENV = "GLASSBOX_FORWARD_THREADS", "GLASSBOX_MAX_FORWARDS"


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


FORWARD_THREADS = _setting(THREADS_ENV, 1)
MAX_FORWARDS = _setting(FORWARDS_ENV, os.cpu_count() or 1)
_gate = threading.BoundedSemaphore(MAX_FORWARDS)
_prepared = threading.Event()
_prepare_lock = threading.Lock()


def prepare_process() -> None:
    """Once per process, after the shared model has loaded: the thread policy and gc.freeze (every page's
    modules are loaded by then: ui.registry imports every wing). Cheap on every later call."""
    if _prepared.is_set():
        return
    with _prepare_lock:
        if _prepared.is_set():
            return
        torch.set_num_threads(FORWARD_THREADS)  # also the default of threads started later (script runs)
        gc.collect()
        gc.freeze()
        _prepared.set()


@contextmanager
def model_work() -> Iterator[None]:
    """Wrap every forward pass a page runs: it waits for one of MAX_FORWARDS places (with a spinner when it has
    to wait, in a page), and a page's thread runs on FORWARD_THREADS torch threads."""
    if not _gate.acquire(blocking=False):
        if get_script_run_ctx() is not None:
            with st.spinner("Waiting for a free processor core: others are running the model right now…"):
                _gate.acquire()
        else:
            _gate.acquire()
    try:
        if get_script_run_ctx() is not None and torch.get_num_threads() != FORWARD_THREADS:
            torch.set_num_threads(FORWARD_THREADS)  # a page's thread; a helper thread keeps its own cap
        yield
    finally:
        _gate.release()


def session_id() -> str | None:
    """This browser session's id (the owner of its runs in the server's line), or None outside a page."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def place_in_line(place: int | None, wait_s: float | None, what: str) -> None:
    """A queued run's place and expected wait, in words."""
    if place is None:
        st.info(f"Starting your {what}…", icon=":material/hourglass_top:")
        return
    ahead = "you are next" if place == 1 else f"{place - 1} run{'s' if place > 2 else ''} ahead of yours"
    when = (f" Expected wait: about {max(1, round(wait_s / 60))} min." if wait_s and wait_s >= 60 else
            f" Expected wait: about {max(1, round(wait_s))} s." if wait_s else
            " The wait cannot be estimated yet (the run ahead has only just started).")
    st.info(f"Waiting in line for this server's training slot: {ahead}.{when} Your {what} starts by itself; "
            "keep this tab open.", icon=":material/hourglass_top:")


def watch_run(run, heartbeat_key: str, what: str, when_done: Callable[[], object], leave_key: str) -> bool:
    """The top of a background run's live view (a fragment that reruns every few seconds): note the poll for
    ui.state.session_alive; once the run has ended, call `when_done` and redraw the whole page; while it waits
    in line, show its place and a way out. True when the run is running and the caller draws its progress."""
    st.session_state.setdefault(heartbeat_key, {"t": 0.0})["t"] = time.monotonic()
    s = run.status()
    if not s.active:
        when_done()
        st.rerun()  # the whole page: the results appear, the sidebar lists the new model
    if s.state == "queued":
        place_in_line(s.place, s.wait_s, what)
        st.button("Take it out of the line", on_click=run.stop, kwargs={"wait": False}, icon=":material/close:",
                  key=leave_key)
        return False
    return True
