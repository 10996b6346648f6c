"""Which model a page looks at: the shared default model, a real pretrained model the server offers, or a model
the user's session owns.

- The default model is loaded once per process (`st.cache_resource`) and shared read-only by every session.
- Server models (every sub-folder of GLASSBOX_MODELS_DIR, and Hugging Face Hub models once downloaded into
  GLASSBOX_HUB_DIR) are loaded on first pick, once per process, shared read-only, and kept in a small
  least-recently-used set (`SHARED`): at most GLASSBOX_MAX_MODELS of them, within GLASSBOX_MODEL_BUDGET_MB of
  weights and a trace each, whatever users pick. Each is priced from its config.json before it loads.
- A model a user trains or tunes lives only in that user's `st.session_state`, never in a shared cache.
- NDIF models (when the host offers them, ui/ndif.py) run on NDIF: the choice holds their config, tokenizer and
  meta architecture (engine.remote.RemoteModel), and `ModelChoice.remote` says so to the pages.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from engine import GPT, CheckpointError, pick_device, settings
from engine.model.cost import size_text
from engine.model.hf import load_model
from engine.model.sources import (CURATED, ModelFacts, SourceError, check_folder, fetch_hub_model, folder_name,
                                  local_models, model_budget_bytes, sweep_partials)
from engine.remote.model import counted_params

from .errors import Refused
from .ndif import PREFIX as NDIF
from .ndif import enabled as ndif_enabled
from .ndif import key_panel, offered, opened, remote_model
from .ndif import note as ndif_note
from .lru import ByteLRU

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = ROOT / "models" / "glassbox-stories"
MODEL_ENV = settings.env_name("model")  # optional: another checkpoint folder to serve as the default model
SESSION_MODELS = "models.session"  # session key: {name: ModelChoice} owned by this session
SELECTED = "models.selected"  # session key: name of the model in use (canonical, survives page switches)
_VERSION = "models.version"  # session key: bumps on every registration, so caches never go stale
HUB_DISK_ENV = settings.env_name("hub_disk_mb")  # downloads stop once the Hub folder holds this much
FOLDER, HUB = "folder:", "hub:"  # selection ids of server models: "folder:<name>", "hub:<owner/name>"
NOTICE = "models.notice"  # session key: a model that could not be opened, said once in the sidebar


@dataclass(frozen=True, eq=False)
class ModelChoice:
    name: str  # what the selector shows
    model: GPT
    tokenizer: Any  # a transformers PreTrainedTokenizerFast
    key: str  # identity for caches; changes whenever the weights may have changed
    shared: bool  # True for the process-wide default model: read-only, never mutated

    @property
    def remote(self) -> bool:
        """The model runs on NDIF: this server holds its config, tokenizer and meta architecture only."""
        return self.key.startswith(NDIF)

    @property
    def device(self) -> torch.device:
        return torch.device("meta") if self.remote else next(self.model.parameters()).device

    @property
    def n_params(self) -> int:
        if self.remote:
            return self.model.num_params()  # counted on the meta architecture
        return sum(p.numel() for p in self.model.parameters())  # tied weights are one Parameter: counted once


def default_model_dir() -> Path:
    return settings.current().model or DEFAULT_MODEL_DIR


@st.cache_resource(max_entries=1, show_spinner="Loading the model…")
def _load_shared(folder: str, stamp: int) -> ModelChoice:
    # `stamp` is the weights' modification time: a checkpoint replaced on disk loads fresh, no restart needed.
    model, tokenizer = load_model(folder, pick_device())
    return ModelChoice(Path(folder).name, model, tokenizer, key=f"default:{folder}:{stamp}", shared=True)


def hub_dir() -> Path:
    return settings.current().hub_dir or ROOT / ".cache" / "hub-models"


@dataclass(frozen=True)
class ServerModel:
    """A model the server offers: a local folder, or a Hub model already downloaded."""
    id: str  # "folder:<name>" or "hub:<owner/name>", what the selection holds
    name: str  # what the picker shows
    path: Path
    facts: ModelFacts | None  # None when the folder cannot be used; `problem` says why
    problem: str | None


@st.cache_data(ttl=30, show_spinner=False)
def server_models() -> list[ServerModel]:
    """Every server model, with its facts from config.json (re-read every 30 s, so a folder added shows up)."""
    found = [(FOLDER + m.name, m.name, m.path) for m in local_models()]
    for m in local_models(hub_dir()):
        repo = m.name.replace("--", "/", 1)
        found.append((HUB + repo, repo, m.path))
    out = []
    for sid, name, path in found:
        try:
            out.append(ServerModel(sid, name, path, check_folder(path), None))
        except (SourceError, OSError) as e:
            out.append(ServerModel(sid, name, path, None, str(e)))
    return out


class SharedModels:
    """Server models loaded in this process, shared read-only by every session, least recently used first out.

    At most `GLASSBOX_MAX_MODELS` stay loaded, and their weights plus one trace each stay within the model
    budget: loading one more first lets go of the least recently used. A session still drawing with a model
    that was let go keeps its reference until its page finishes, then the memory is freed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id -> choice, sized by its weights plus one trace; the bounds are read from the settings at each load
        self._loaded: ByteLRU[str, ModelChoice] = ByteLRU(model_budget_bytes, lambda: settings.current().max_models)
        self._loading: dict[str, threading.Lock] = {}

    def loaded(self) -> list[ModelChoice]:
        return self._loaded.values()

    def held_bytes(self) -> int:
        return self._loaded.nbytes

    def get(self, source: ServerModel) -> ModelChoice:
        """The loaded model of `source`, loading it if needed. Raises Refused with a plain sentence."""
        if source.facts is None:
            raise Refused(f"{source.name} cannot be opened: {source.problem}")
        weights = source.path / "model.safetensors"
        stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
        key = f"shared:{source.id}:{stamp}"
        hit = self._loaded.get(source.id)  # a hit is the most recently used now
        if hit is not None and hit.key == key:
            return hit
        with self._lock:
            gate = self._loading.setdefault(source.id, threading.Lock())
        with gate:  # two sessions picking the same model at once load it once
            hit = self._loaded.get(source.id)
            if hit is not None and hit.key == key:
                return hit
            facts, budget = source.facts, model_budget_bytes()
            why = facts.refusal(budget)
            if why:
                raise Refused(f"{source.name} was not loaded. {why}")
            need = facts.weights_bytes + facts.trace_bytes
            self._loaded.pop(source.id)  # an older version of its weights
            self._loaded.make_room(need)  # before loading: the one let go and this one are never both held
            try:
                with st.spinner(f"Loading {source.name} ({size_text(facts.weights_bytes)})…"):
                    model, tokenizer = load_model(source.path, pick_device())
            except CheckpointError as e:
                raise Refused(f"{source.name} could not be loaded: {e}") from None
            choice = ModelChoice(source.name, model, tokenizer, key=key, shared=True)
            self._loaded.put(source.id, choice, nbytes=need)
            return choice

    def clear(self) -> None:
        self._loaded.clear()


SHARED = SharedModels()


def _server_model(sid: str) -> ServerModel | None:
    return next((m for m in server_models() if m.id == sid), None)


def default_model() -> ModelChoice:
    """The shared default model. Raises CheckpointError (plain message) if its folder cannot be loaded."""
    folder = default_model_dir()
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _load_shared(str(folder), stamp)


def shared_model(name: str) -> ModelChoice:
    """A model any session can load by its picker name: the built-in one, or a server model ("folder:gpt2").
    A workshop room plays against one. Raises Refused (a plain sentence) when this server cannot open it."""
    default = default_model()
    if name == default.name:
        return default
    source = _server_model(name) if name.startswith((FOLDER, HUB)) else None
    if source is None:
        raise Refused("The room's model is not offered by this server any more.")
    return SHARED.get(source)


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
    cap = settings.current().session_models_bytes
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
    """The model this session has selected: the default model, a server model, an NDIF model, or one of the
    session's own.

    A model that cannot be opened (gone, over the budget, broken, NDIF off) falls back to the default model with
    a one-line notice in the sidebar, and the selection goes back to the default.
    """
    name = st.session_state.get(SELECTED)
    if isinstance(name, str):
        try:
            return open_choice(name)
        except Refused as e:
            st.session_state[NOTICE] = str(e)
            st.session_state.pop(SELECTED, None)
    return default_model()


def open_choice(name: str) -> ModelChoice:
    """The model a picker value names (ui.models.selector_names): one of this session's, a server model, an NDIF
    model, else the default model. Refused (one sentence) when it cannot be opened."""
    owned = session_models()
    if name in owned:
        return owned[name]
    if name.startswith((FOLDER, HUB)):
        source = _server_model(name)
        if source is None:
            raise Refused(f"{name.split(':', 1)[1]} is no longer offered by this server.")
        return SHARED.get(source)
    if name.startswith(NDIF):
        return ndif_choice(name)
    return default_model()


def ndif_choice(name: str) -> ModelChoice:
    """The choice of an NDIF model by its picker value ("ndif:<repo id>"). Refused when NDIF is off here or the
    model cannot be opened."""
    repo = name[len(NDIF):]
    if not ndif_enabled():
        raise Refused(f"{repo} runs on NDIF, which this server does not offer.")
    model = remote_model(repo)
    return ModelChoice(repo, model, model.tokenizer, key=name, shared=True)


def _sync_selection(widget_key: str) -> None:
    st.session_state[SELECTED] = st.session_state[widget_key]


def _label(default_name: str, owned: dict) -> Any:
    servers = {m.id: m for m in server_models()}
    remote = {NDIF + o.repo_id: o for o in offered()[0]}

    def label(n: str) -> str:
        if n == default_name:
            return f"{n} (built in)"
        if n in servers:
            m = servers[n]
            where = "Hub" if n.startswith(HUB) else "server"
            if m.facts is None:
                return f"{m.name} ({where}: cannot be opened)"
            return f"{m.name} · {describe_size(m.facts.n_params)} ({where})"
        if n in remote:
            return ndif_label(remote[n])
        return f"{n} (yours, this session only)"
    return label


def selector_names() -> list[str]:
    """What the sidebar's picker offers this session, as its values: the built-in model's name, the server models'
    ids ("folder:gpt2", "hub:openai-community/gpt2"), then the session's own models' names."""
    default = default_model().name
    remote = [NDIF + o.repo_id for o in offered()[0]]
    return [default] + [m.id for m in server_models()] + remote + [n for n in session_models() if n != default]


def ndif_label(offer) -> str:
    """'meta-llama/Llama-3.1-70B · 70.6 B (NDIF)': the size once this server holds its config (counted on the
    meta device), nothing before."""
    model = opened(offer.repo_id)
    n = model.num_params() if model is not None else counted_params(offer.repo_id)
    size = f" · {describe_size(n)}" if n else ""
    state = "" if offer.state == "running" else f", {offer.state}"
    return f"{offer.repo_id}{size} (NDIF{state})"


def selected_name() -> str:
    """The picker's value for the model in use (a link holds it)."""
    name = st.session_state.get(SELECTED)
    return name if name in selector_names() else default_model().name


def model_selector(widget_key: str) -> ModelChoice:
    """The sidebar picker: the built-in model, the server's models, this session's models. Returns the one in use.

    `widget_key` must differ per page (Streamlit gives same-key widgets on different pages different ids).
    """
    default = default_model()
    owned = session_models()
    names = selector_names()
    choice = current_model()
    chosen = st.session_state.get(SELECTED) if st.session_state.get(SELECTED) in names else choice.name
    if chosen not in names:
        chosen = default.name
    # Streamlit forgets widget state on pages that don't draw the widget; the canonical key restores it.
    if st.session_state.get(widget_key) != chosen:
        st.session_state[widget_key] = chosen
    st.selectbox(
        "Model", names, key=widget_key, on_change=_sync_selection, args=(widget_key,),
        format_func=_label(default.name, owned),
        help="The built-in model and the server's models are shared by everyone, read-only; models you train "
             "or tune stay in your browser session.")
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.warning(notice, icon=":material/block:")
    source = _server_model(st.session_state.get(SELECTED) or "")
    if source is not None and source.facts is not None:
        st.caption(source.facts.summary())
    if ndif_enabled():
        key_panel(choice.remote)
    ndif_note()
    if settings.current().hub:
        hub_picker(widget_key)
    return choice


def hub_picker(widget_key: str) -> None:
    """Download a model from the Hugging Face Hub onto this server (priced, safetensors only), then open it."""
    with st.expander("Add a model from the Hugging Face Hub"):
        repo = st.selectbox("Model", CURATED, key=widget_key + ".hub_pick",
                            help="A short list of small models Glassbox runs: GPT-2, TinyStories (GPT-Neo), "
                                 "Pythia (GPT-NeoX), SmolLM2 (Llama), Qwen2.5.")
        typed = st.text_input("…or any Hub model id", key=widget_key + ".hub_typed", max_chars=200,
                              placeholder="owner/name")
        if st.button("Download and open", key=widget_key + ".hub_go", icon=":material/download:"):
            open_hub_model((typed or repo).strip())


def _disk_used(folder: Path) -> int:
    """Bytes under the Hub folder, once a killed download's leftovers are gone (they would count)."""
    sweep_partials(folder)
    try:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    except OSError:
        return 0


def open_hub_model(repo_id: str) -> None:
    """Fetch `repo_id` into the Hub folder (or find it there) and select it; a refusal is one line."""
    try:
        have = (hub_dir() / folder_name(repo_id)).is_dir()
    except SourceError as e:
        st.error(str(e), icon=":material/error:")
        return
    cap = settings.current().hub_disk_bytes
    if not have and _disk_used(hub_dir()) >= cap:
        st.error(f"This server's folder for Hub models is full ({size_text(cap)}, {HUB_DISK_ENV}): pick one of the "
                 "models already there, or ask whoever runs it to make room.", icon=":material/hard_drive:")
        return
    bar = st.progress(0.0, text=f"Asking the Hub for {repo_id}…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0,
                     text=f"Downloading {repo_id}: {size_text(done)} of {size_text(total)}")

    try:
        fetch_hub_model(repo_id, hub_dir(), progress)
        sid = HUB + repo_id.strip()
    except SourceError as e:
        bar.empty()
        st.error(str(e), icon=":material/cloud_off:")
        return
    server_models.clear()  # the new folder is listed now, not in 30 s
    bar.empty()
    st.session_state[SELECTED] = sid
    st.rerun()


def describe_size(n: int) -> str:
    """A parameter count in words: '1.09 M', '350 K', '7.2 B'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)
