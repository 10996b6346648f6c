"""Cached data for the Feed-forward page: the logit lens and residual contributions of a trace, and the
neuron explorer's reference set with its per-model atlas.

Everything here is derived from a cached Trace or from the models, never from widgets, so choosing a layer,
neuron or position never computes it again. Like traces (ui/cache.py), results for the shared default model
are cached process-wide and results for a session's own model only in that session.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from engine import Trace
from engine.inspect import neurons as nrn
from engine.inspect.lens import Contributions, Lens, contributions, logit_lens
from engine.model.device import cap_threads, run_threads

from ..models import ModelChoice, default_model
from ..server import model_work
from .state import PAGE

T = TypeVar("T")
SHARED_ENTRIES = 16  # as ui/cache.py: one entry per (model, text) the shared trace cache may hold
SESSION_ENTRIES = 4
_SESSION_KEY = PAGE.key("derived")  # session key: {(kind, model key, text): result}
# The reference set's size, read at call time (tests make it smaller). 24 stories x 128 tokens: enough that
# most neurons show a clear peak, few enough to write in seconds on one CPU core.
REFERENCE_STORIES = 24
REFERENCE_TOKENS = nrn.REFERENCE_TOKENS


@st.cache_resource(max_entries=SHARED_ENTRIES, show_spinner=False)
def _shared(kind: str, model_key: str, text: str, _compute: Callable[[], Any]) -> Any:
    return _compute()  # keyed by (kind, model_key, text); `_compute` is not hashed


def _per_trace(kind: str, choice: ModelChoice, trace: Trace, compute: Callable[[], T]) -> T:
    if choice.shared:
        return _shared(kind, choice.key, trace.text, compute)
    cache: dict[tuple[str, str, str], Any] = st.session_state.setdefault(_SESSION_KEY, {})
    key = (kind, choice.key, trace.text)
    if key not in cache:
        while len(cache) >= SESSION_ENTRIES:
            cache.pop(next(iter(cache)))  # oldest first
        cache[key] = compute()
    return cache[key]


def get_lens(choice: ModelChoice, trace: Trace) -> Lens:
    """The logit lens of `trace` (a trace of `choice`'s model), computed once per (model, text)."""
    return _per_trace("lens", choice, trace, lambda: logit_lens(choice.model, trace))


def get_contributions(choice: ModelChoice, trace: Trace) -> Contributions:
    """Norms and direct logit contributions of every part, computed once per (model, text)."""
    return _per_trace("contributions", choice, trace, lambda: contributions(choice.model, trace))


def _capped(compute: Callable[[], T]) -> T:
    """Run `compute` in a helper thread using at most half the CPU cores (as a training run does).

    On a busy 2-core server, torch's default of one thread per core makes these many small steps 10x
    slower than one thread (the threads wait on each other); a helper thread keeps the cap off the page.
    """
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            cap_threads(run_threads())
            with model_work():  # one of the server's places for a forward pass (ui/server.py)
                result["value"] = compute()
        except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
            result["error"] = e

    worker = threading.Thread(target=body, name="glassbox-reference", daemon=True)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@st.cache_resource(max_entries=1, show_spinner=False)
def _reference_texts(default_key: str, n_stories: int, n_tokens: int, _default: ModelChoice) -> tuple[str, ...]:
    # Once per process and default model: the default model writes the stories, whichever model is studied.
    prompts = nrn.REFERENCE_PROMPTS[:n_stories]
    return _capped(lambda: nrn.generate_reference_texts(_default.model, _default.tokenizer, prompts, n_tokens))


@st.cache_resource(max_entries=2, show_spinner=False)
def _shared_atlas(model_key: str, texts: tuple[str, ...], _choice: ModelChoice) -> nrn.NeuronAtlas:
    return _build_atlas(_choice, texts)


def _build_atlas(choice: ModelChoice, texts: tuple[str, ...]) -> nrn.NeuronAtlas:
    n = len(texts)
    reference = nrn.tokenize_reference(texts, choice.tokenizer, choice.model.config.block_size,
                                       nrn.REFERENCE_PROMPTS[:n])
    return _capped(lambda: nrn.build_atlas(choice.model, reference))


def get_atlas(choice: ModelChoice) -> nrn.NeuronAtlas:
    """Every neuron's top examples on the reference set, for `choice`'s model (built on first use)."""
    default = default_model()
    with st.spinner(f"Building the reference set once for this server: the built-in model writes "
                    f"{REFERENCE_STORIES} short stories (a few seconds)…"):
        texts = _reference_texts(default.key, REFERENCE_STORIES, REFERENCE_TOKENS, default)
    with st.spinner("Reading the reference stories with this model…"):
        if choice.shared:
            return _shared_atlas(choice.key, texts, choice)
        cache: dict[tuple[str, tuple[str, ...]], nrn.NeuronAtlas] = st.session_state.setdefault(
            PAGE.key("atlas"), {})
        key = (choice.key, texts)
        if key not in cache:
            cache.clear()  # one session model's atlas at a time: it is the largest thing a session holds
            cache[key] = _build_atlas(choice, texts)
        return cache[key]


def describe_reference() -> str:
    """What the reference set is, in one paragraph."""
    s = nrn.REFERENCE_SAMPLING
    return (f"The examples come from a fixed reference set: {REFERENCE_STORIES} short stories that the built-in "
            f"model wrote itself, each from a fixed opening line and up to {REFERENCE_TOKENS} new tokens "
            f"(random seed {nrn.REFERENCE_SEED}, temperature {s.temperature:g}, top-k {s.top_k}). It is "
            "written once per server, offline, and every model you look at reads the same stories. "
            "Each example is a different story; the start marker is left out.")
