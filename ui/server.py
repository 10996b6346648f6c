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

Training and tuning runs are not counted here: they take a slot of their own (engine/train/background.py),
on engine.model.device.run_threads() threads; ui/runs.py draws them.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import settings

FORWARD_THREADS = settings.current().forward_threads
MAX_FORWARDS = settings.current().max_forwards
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
