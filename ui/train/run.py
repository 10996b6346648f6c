"""The Train page's run: starting it, the live view while it trains in the background, and what to do with
the result (it becomes "my model" in this session; download it as a zip; upload a zip again).

The run lives in this session's state and belongs to it: other sessions never see it. It stops by itself
when the browser session ends (ui.state.session_alive). Starting it, the live view's frame and keeping its
model are ui/runs.py's, shared with the RLHF page's tuning run; this module draws what is particular to training.
"""
from __future__ import annotations

import streamlit as st

from engine import pick_device
from engine.model.cost import TraceBudget, size_text
from engine.train.background import RunState
from engine.train.budget import check_memory
from engine.train.bundle import MAX_CONTEXT, MAX_HEADS, MAX_LAYERS, MAX_ZIP_BYTES, BundleError, export_zip, import_zip
from engine.train.corpus import Prepared
from engine.train.runs import RunStatus, TrainingRun
from engine.train.runspec import RunSpec

from ..models import register_session_model
from ..plots import fitted, plot_config
from ..runs import NOT_KEPT, RunPanel, download_comment
from ..server import session_id
from ..state import session_alive
from ..text import md
from .figures import duration, loss_figure, loss_table
from .state import ESTIMATE, PAGE

RUN = PAGE.key("run")  # session key: this session's TrainingRun (one at a time)
REGISTERED = PAGE.key("registered")  # session key: id of the run whose model is registered as MY_MODEL
NOTICE = PAGE.key("notice")  # session key: (kind, message) about starting a run, shown once after a rerun
UPLOAD_NOTICE = PAGE.key("upload_notice")  # session key: the same, about an uploaded zip
ZIPS = PAGE.key("zips")  # session key: (run id, zip bytes)
UPLOADED = PAGE.key("uploaded_zip")  # session key: file id of the last zip imported
HEARTBEAT = PAGE.key("heartbeat")  # session key: {"t": monotonic time of the last poll} (see session_alive)
MY_MODEL, UPLOADED_MODEL = "my model", "uploaded model"
POLL_S = 2.0  # the live view redraws this often: often enough to watch, rarely enough to cost the run little
# kept_step 0: nothing was learned (or only what diverged), so "my model" stays what it was
PANEL = RunPanel(RUN, REGISTERED, NOTICE, HEARTBEAT, ZIPS, MY_MODEL, "training run", "Stop training", POLL_S,
                 learned=lambda run: run.kept_step > 0)


def current_run() -> TrainingRun | None:
    return PANEL.current()


def start_run(spec: RunSpec, data: Prepared, init=None) -> None:
    """Start training in the background, or leave a notice saying why not."""
    if PANEL.busy():
        return
    problem = check_memory(spec.model, spec.train.batch_size, spec.n_snapshots, pick_device())
    if problem:
        PANEL.refuse("error", problem)
        return
    PANEL.start(lambda: TrainingRun(spec, data, keep_alive=session_alive(HEARTBEAT), owner=session_id(),
                                    expected_s=st.session_state.get(ESTIMATE), init=init))


def show_notice(key: str = NOTICE) -> None:
    PANEL.show_notice(key)


def ensure_registered(run: TrainingRun) -> bool:
    """Keep a finished run's model as "my model" once. Returns True when it did just now."""
    return PANEL.keep_result(run)


def _progress_line(s: RunStatus) -> str:
    if s.state is RunState.QUEUED:
        return "Waiting for the training slot…"
    left = f" · about {duration(s.eta_s)} left" if s.eta_s is not None else ""
    return f"Step {s.step:,} of {s.max_steps:,}{left}"


def _metrics(s: RunStatus) -> None:
    c = st.columns(4)
    c[0].metric("Training loss", f"{s.losses[-1][1]:.3f}" if s.losses else "–")
    c[1].metric("Held-out loss", f"{s.val_losses[-1][1]:.3f}" if s.val_losses else "–")
    c[2].metric("Tokens per second", f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–")
    c[3].metric("Elapsed", duration(s.elapsed_s))


def _sample(s: RunStatus, step: int | None = None) -> None:
    if s.sample:
        st.markdown(f"**What the model writes now** (step {step if step is not None else s.step:,}; "
                    "the same random seed every time, so every change comes from training)")
        st.code(s.sample, language=None, wrap_lines=True)


def _chart(run: TrainingRun, s: RunStatus) -> None:
    st.plotly_chart(fitted(loss_figure(s, run.spec.model.vocab_size)), config=plot_config("glassbox-loss"),
                    key=PAGE.key(f"loss_{run.id}_{s.state}"))


def _running(run: TrainingRun, s: RunStatus) -> None:
    st.progress(s.fraction, text=_progress_line(s))
    _metrics(s)
    _chart(run, s)
    _sample(s, run.snapshots()[-1].step if s.n_snapshots else None)


def _finished(run: TrainingRun, s: RunStatus) -> None:
    if s.step:
        _metrics(s)
        _chart(run, s)
        st.download_button("Download the losses (CSV)", loss_table(s).to_csv(index=False), "glassbox-losses.csv",
                           "text/csv", key=PAGE.key("loss_csv"), icon=":material/download:")
        _sample(s)


def live_view(run: TrainingRun) -> None:
    """While training: refreshed every POLL_S, so only this part reruns and the rest of the page stays usable.
    Afterwards: the final state, drawn once."""
    PANEL.live_view(run, _running, _finished, PAGE.key("leave_line"), PAGE.key("stop"))


def _zip(run: TrainingRun) -> bytes:
    cached = st.session_state.get(ZIPS)
    if cached and cached[0] == run.id:
        return cached[1]
    data = export_zip(run.model, run.tokenizer, "glassbox-my-model", card=run.model_card(),
                      comment=download_comment())
    st.session_state[ZIPS] = (run.id, data)
    return data


def use_model(run: TrainingRun) -> None:
    """The result: selectable as "my model" everywhere in this session, and downloadable; only downloadable
    where the memory for visitors' models had no room for it (an hour's training is never lost to that)."""
    kept = st.session_state.get(REGISTERED)
    if kept == f"not kept:{run.id}":
        st.markdown(NOT_KEPT)
    elif kept == run.id:
        st.markdown(f"Your model is now **{MY_MODEL}** in the sidebar's model selector, on every page of the app, "
                    "for as long as this browser tab stays open: look inside it the way you look inside the built-in "
                    "one. Nobody else sees it. To keep it, download it; you can upload the zip again later.")
    else:
        return
    data = _zip(run)
    st.download_button("Download my model (.zip, Hugging Face format)", data, "glassbox-my-model.zip",
                       "application/zip", key=PAGE.key("zip"), icon=":material/download:")
    if len(data) > MAX_ZIP_BYTES:
        st.caption(f"This zip is {size_text(len(data))}, more than the {size_text(MAX_ZIP_BYTES)} this page takes "
                   "back: transformers loads it, but uploading it here again will be refused.")


def upload_model() -> None:
    """Load a zip downloaded earlier: validated, then selectable as "uploaded model"."""
    show_notice(UPLOAD_NOTICE)
    # Streamlit refuses a file over server.maxUploadSize with only a red icon, so the label says the limit.
    budget = TraceBudget.from_env()
    f = st.file_uploader(
        f"A model zip downloaded from this page (safetensors only, up to {size_text(MAX_ZIP_BYTES)})", type=["zip"],
        key=PAGE.key("upload_zip"),
        help=f"Up to {MAX_LAYERS} layers, {MAX_HEADS} heads and {MAX_CONTEXT:,} tokens of context, and small enough "
             f"that one look inside it over its whole context holds at most {size_text(budget.max_bytes)} and takes "
             f"at most {budget.max_seconds:g} s on this server.")
    if f is None or st.session_state.get(UPLOADED) == f.file_id:
        return
    st.session_state[UPLOADED] = f.file_id  # once per file: a refusal is not retried on every rerun
    try:
        with st.spinner("Checking and loading the zip…"):
            model, tokenizer = import_zip(f.getvalue(), budget=budget)
    except BundleError as e:
        st.session_state[UPLOAD_NOTICE] = ("error", md(f"{f.name} was not loaded. {e}"))
    else:
        register_session_model(UPLOADED_MODEL, model.to(pick_device()), tokenizer, select=False)
        cfg = model.config
        st.session_state[UPLOAD_NOTICE] = (
            "success", f"Loaded {md(f.name)} ({cfg.n_layer} layers, {cfg.n_head} heads, width {cfg.n_embd}) as "
            f"**{UPLOADED_MODEL}**: choose it in the sidebar's model selector on any page.")
    st.rerun()  # redraw the sidebar so its selector lists the model

