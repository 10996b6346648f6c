"""Which model a page looks at: the shared default model, or a model the user's session owns.

The default model is loaded once per process (`st.cache_resource`) and shared read-only by every session.
A model a user trains lives only in that user's `st.session_state`, never in a shared cache.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from engine import GPT, pick_device
from engine.model.hf import load_model

from .errors import Refused

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = ROOT / "models" / "glassbox-stories"
MODEL_ENV = "GLASSBOX_MODEL"  # optional: another checkpoint folder to serve as the default model
SESSION_MODELS = "session_models"  # session key: {name: ModelChoice} owned by this session
SELECTED = "model_name"  # session key: name of the model in use (canonical, survives page switches)
_VERSION = "session_model_version"  # session key: bumps on every registration, so caches never go stale
SESSION_MODELS_ENV = "GLASSBOX_SESSION_MODELS_MB"
SESSION_MODELS_MB = 300  # the weights one session's own models may hold together: thirty sessions, bounded


@dataclass(frozen=True, eq=False)
class ModelChoice:
    name: str  # what the selector shows
    model: GPT
    tokenizer: Any  # a transformers PreTrainedTokenizerFast
    key: str  # identity for caches; changes whenever the weights may have changed
    shared: bool  # True for the process-wide default model: read-only, never mutated

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())  # tied weights are one Parameter: counted once


def default_model_dir() -> Path:
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL_DIR)


@st.cache_resource(max_entries=1, show_spinner="Loading the model…")
def _load_shared(folder: str, stamp: int) -> ModelChoice:
    # `stamp` is the weights' modification time: a checkpoint replaced on disk loads fresh, no restart needed.
    model, tokenizer = load_model(folder, pick_device())
    return ModelChoice(Path(folder).name, model, tokenizer, key=f"default:{folder}:{stamp}", shared=True)


def default_model() -> ModelChoice:
    """The shared default model. Raises CheckpointError (plain message) if its folder cannot be loaded."""
    folder = default_model_dir()
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _load_shared(str(folder), stamp)


def model_bytes(model: GPT) -> int:
    """Bytes of a model's weights (a tied weight counted once, as `parameters()` lists it)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def session_models() -> dict[str, ModelChoice]:
    """Models this session owns, by name (empty until a page registers one)."""
    return st.session_state.setdefault(SESSION_MODELS, {})


def register_session_model(name: str, model: GPT, tokenizer: Any, select: bool = True) -> ModelChoice:
    """Give this session its own model (e.g. one the user trained); other sessions never see it.

    Registering again under the same name replaces the model; cached traces of the old one are not reused.
    """
    name = name.strip()
    if not name:
        raise ValueError("a session model needs a name")
    if name == default_model_dir().name:
        raise ValueError(f"{name!r} is the default model's name; choose another")
    others = sum(model_bytes(c.model) for n, c in session_models().items() if n != name)
    cap = int(float(os.environ.get(SESSION_MODELS_ENV) or SESSION_MODELS_MB) * 2**20)
    if others + model_bytes(model) > cap:
        raise Refused(f"Your models in this session would hold {(others + model_bytes(model)) / 2**20:,.0f} MB of "
                      f"weights, more than the {cap / 2**20:,.0f} MB this server keeps per session: the new one was "
                      "not kept. Download a model you want to keep, then reload the page to start afresh.")
    version = st.session_state.get(_VERSION, 0) + 1
    st.session_state[_VERSION] = version
    choice = ModelChoice(name, model, tokenizer, key=f"session:{version}:{name}", shared=False)
    session_models()[name] = choice
    if select:
        st.session_state[SELECTED] = name
    return choice


def keep_run_model(run_id: str, name: str, model: GPT, tokenizer: Any, done_key: str, notice_key: str) -> bool:
    """Register the model a background run made as `name`, once per run (`done_key` remembers the run). True
    when it did just now; a model over the session's cap is not kept, and `notice_key` gets the message."""
    if st.session_state.get(done_key) in (run_id, f"not kept:{run_id}"):
        return False
    try:
        register_session_model(name, model, tokenizer, select=False)
    except Refused as e:  # over this session's memory for models: said once, not on every rerun
        st.session_state[notice_key] = ("error", str(e))
        st.session_state[done_key] = f"not kept:{run_id}"
        return False
    st.session_state[done_key] = run_id
    return True


def forget_session_model(name: str) -> None:
    """Drop a session model; if it was in use, the default model takes over."""
    session_models().pop(name, None)
    if st.session_state.get(SELECTED) == name:
        st.session_state.pop(SELECTED)


def current_model() -> ModelChoice:
    """The model this session has selected (the default model unless the user picked one of theirs)."""
    owned = session_models()
    name = st.session_state.get(SELECTED)
    return owned[name] if name in owned else default_model()


def _sync_selection(widget_key: str) -> None:
    st.session_state[SELECTED] = st.session_state[widget_key]


def model_selector(widget_key: str) -> ModelChoice:
    """The sidebar selector: the default model plus this session's models. Returns the one in use.

    `widget_key` must differ per page (Streamlit gives same-key widgets on different pages different ids).
    """
    default = default_model()
    names = [default.name] + [n for n in session_models() if n != default.name]
    chosen = current_model().name
    # Streamlit forgets widget state on pages that don't draw the widget; the canonical key restores it.
    if st.session_state.get(widget_key) != chosen:
        st.session_state[widget_key] = chosen
    st.selectbox(
        "Model", names, key=widget_key, on_change=_sync_selection, args=(widget_key,),
        format_func=lambda n: f"{n} (built in)" if n == default.name else f"{n} (yours, this session only)",
        help="The built-in model is shared by everyone; models you train stay in your browser session.",
    )
    return current_model()


def describe_size(n: int) -> str:
    """A parameter count in words: '1.09 M', '350 K', '7.2 B'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)
