"""Tuning with DPO in the background, watched live, and what it changed: the next-token distribution and
completions before and after (same seeds), which parameters moved, and the tuned model as a session model.

The run lives in this session's state; the model it tunes is a copy, so the shared built-in model and every
other session are untouched. Starting it, the live view's frame and keeping its model are ui/runs.py's, shared
with the Train page's training run; this module draws what is particular to tuning.
"""
from __future__ import annotations

import streamlit as st
import torch

from engine import GPT, display_token
from engine.model.arch import family_name
from engine.inspect.params import param_changes
from engine.train.bundle import export_zip
from engine.train.preference import PreferenceError, TuneConfig, next_token_probs, write_completions
from engine.train.tuning import TuneStatus, TuningRun

from ..lru import ByteLRU
from ..models import ModelChoice, describe_size
from ..plots import fitted, plot_config
from ..runs import NOT_KEPT, RunPanel, download_comment
from ..server import model_work, session_id
from ..state import session_alive
from ..text import md
from .figures import before_after_figure, changes_figure, changes_frame, tuning_figure, tuning_frame
from .pairs import pairs
from .state import BETAS, LEARNING_RATES, PAGE, STEPS, remembered

RUN = PAGE.key("run")  # session key: this session's TuningRun (one at a time)
REGISTERED = PAGE.key("registered")  # session key: id of the run whose model is registered as TUNED_MODEL
NOTICE = PAGE.key("notice")  # session key: (kind, message) about starting a run
HEARTBEAT = PAGE.key("heartbeat")  # session key: the live view's last poll (see ui.state.session_alive)
ZIP = PAGE.key("zips")  # session key: (run id, zip bytes)
COMPARED = PAGE.key("compared")  # session key: ByteLRU {(run id, prompt): what the before / after views draw}
TUNED_MODEL = "tuned model"
POLL_S = 0.5
COMPARE_SEEDS = (11, 12, 13)
COMPARE_TOKENS = 40
TOP_TOKENS = 8
COMPARISONS = 8  # before / after views kept per session
# A run stopped before its first step changed nothing: the tuned model is not kept
PANEL = RunPanel(RUN, REGISTERED, NOTICE, HEARTBEAT, ZIP, TUNED_MODEL, "tuning run", "Stop tuning", POLL_S,
                 learned=lambda run: run.status().step > 0)


def current_run() -> TuningRun | None:
    return PANEL.current()


def settings() -> TuneConfig:
    """The three knobs, each with a line on what it does."""
    c = st.columns(3)
    with c[0]:
        beta = st.select_slider("beta", BETAS, **remembered("beta", 0.1, BETAS))
        st.caption("How tightly the tuned model is held to the original. Small: it may drift far to please the "
                   "rule; large: it changes only a little.")
    with c[1]:
        lr = st.select_slider("Learning rate", LEARNING_RATES, format_func="{:g}".format,
                              **remembered("lr", 5e-5, LEARNING_RATES))
        st.caption("How big each step is. Too big and the model soon forgets its English along with the lesson.")
    with c[2]:
        steps = st.slider("Steps", STEPS[0], STEPS[-1], step=STEPS[1] - STEPS[0], **remembered("steps", 30, STEPS))
        st.caption("How many times it goes over all the pairs. Each step is one gradient update on every pair.")
    return TuneConfig(beta=beta, learning_rate=lr, steps=steps)


TUNE_MAX_PARAMS = 20_000_000  # DPO keeps the weights, a frozen reference, gradients and Adam's two moments


def tunable(choice: ModelChoice) -> str | None:
    """Why this model cannot be tuned here, or None. Tuning runs on Glassbox's own GPT, on a CPU, in seconds."""
    if not isinstance(choice.model, GPT):
        what = (f"a {family_name(choice.model.config)} model" if choice.model.config.family != "gpt2" else
                "a GPT-2 variant our GPT does not implement (it runs inside transformers)")
        return (f"Preference tuning runs on Glassbox's own GPT (the built-in model, GPT-2-family models, models you "
                f"train); {md(choice.name)} is {what}, shown as it is. Pick one of those in the sidebar to tune.")
    if choice.n_params > TUNE_MAX_PARAMS:
        return (f"{choice.name} has {describe_size(choice.n_params)} parameters: tuning it would hold about "
                f"{5 * 4 * choice.n_params / 2**30:.1f} GB (weights, a frozen copy, gradients, optimizer state) "
                f"and take minutes per step on a CPU. This server tunes models up to "
                f"{describe_size(TUNE_MAX_PARAMS)} parameters: pick the built-in model, or one you trained.")
    return None


def start(choice: ModelChoice, cfg: TuneConfig) -> None:
    """Start tuning a copy of the current model on this session's pairs, or leave a notice saying why not."""
    if PANEL.busy():
        return
    why = tunable(choice)
    if why:
        PANEL.refuse("warning", why)
        return
    try:
        PANEL.start(lambda: TuningRun(choice.model, choice.tokenizer, pairs(), cfg,
                                      keep_alive=session_alive(HEARTBEAT), reference_name=choice.name,
                                      owner=session_id()))
    except PreferenceError as e:
        PANEL.refuse("error", md(str(e)))


def show_notice() -> None:
    PANEL.show_notice()


def ensure_registered(run: TuningRun) -> bool:
    """Keep a finished run's model as "tuned model" once. Returns True when it did just now."""
    return PANEL.keep_result(run)


def _metrics(run: TuningRun) -> None:
    h = run.status().history
    if not h:
        return
    first, last = h[0], h[-1]
    c = st.columns(4)
    c[0].metric("DPO loss", f"{last.stats.loss:.3f}", f"{last.stats.loss - first.stats.loss:+.3f}",
                delta_color="inverse")
    c[1].metric("Reward margin", f"{last.stats.margin:.2f}", f"{last.stats.margin - first.stats.margin:+.2f}")
    c[2].metric("Pairs preferred as told", f"{last.stats.accuracy:.0%}")
    c[3].metric("KL from the original", f"{last.kl:.3f} nats",
                help="Per completion token: how far the tuned model's next-token distributions have moved from "
                     "the original's. 0 means unchanged.")


def _chart(run: TuningRun) -> None:
    s = run.status()
    st.plotly_chart(fitted(tuning_figure(s.history, s.steps)), config=plot_config("dpo-tuning"),
                    key=PAGE.key(f"tuning_{run.id}_{s.state}"))
    st.caption("Both log-probabilities often fall while the margin grows: DPO only asks that the chosen "
               "completion gain *relative to the rejected one and to the original*. Pushing the rejected one down "
               "hard is the cheapest way there, and a completion written once by a sampler was never likely to "
               "begin with. That is expected, and one reason real pipelines keep the tuned model close to the "
               "original (beta, few steps).")


def _running(run: TuningRun, s: TuneStatus) -> None:
    st.progress(s.fraction, text=f"Step {s.step} of {s.steps}")
    _metrics(run)
    _chart(run)


def live_view(run: TuningRun) -> None:
    """While tuning: a fragment refreshed every POLL_S. Afterwards: the final state, drawn once."""
    PANEL.live_view(run, _running, _finished, PAGE.key("leave_line"), PAGE.key("stop"))


def _finished(run: TuningRun, s: TuneStatus) -> None:
    _metrics(run)
    if s.history:
        _chart(run)
        st.download_button("Download every step (CSV)", tuning_frame(s.history).to_csv(index=False),
                           "glassbox-dpo-steps.csv", "text/csv", key=PAGE.key("steps_csv"),
                           icon=":material/download:")


def _compare(run: TuningRun, prompt: str) -> dict:
    """Everything the before / after views draw, for one prompt; computed once per run and prompt, and kept in
    this session (it is this session's tuned model: never in a process-wide cache)."""
    cache: ByteLRU[tuple[str, str], dict] = st.session_state.setdefault(COMPARED, ByteLRU(max_entries=COMPARISONS))
    key = (run.id, prompt)
    data = cache.get(key)
    if data is None:
        with model_work():
            data = _compare_now(run.reference, run.model, run.tokenizer, prompt)
        cache.put(key, data)
    return data


def _compare_now(ref, tuned, tok, prompt: str) -> dict:
    before, after = next_token_probs(ref, tok, prompt), next_token_probs(tuned, tok, prompt)
    ids = torch.cat([before.topk(TOP_TOKENS).indices, after.topk(TOP_TOKENS).indices]).unique().tolist()
    ids.sort(key=lambda i: -float(before[i] + after[i]))
    ids = ids[:TOP_TOKENS + 2]
    return {"labels": [display_token(tok, i) for i in ids], "before": [float(before[i]) for i in ids],
            "after": [float(after[i]) for i in ids],
            "texts": [(write_completions(ref, tok, prompt, 1, COMPARE_TOKENS, seed)[0],
                       write_completions(tuned, tok, prompt, 1, COMPARE_TOKENS, seed)[0]) for seed in COMPARE_SEEDS]}


def what_changed(run: TuningRun) -> None:
    """The next-token distribution and completions of a prompt before and after, with the same seeds."""
    prompts = list(dict.fromkeys(p.prompt for p in run.pairs))
    prompt = st.selectbox("Prompt", prompts, **remembered("compare_prompt", prompts[0], prompts),
                          help="One of the prompts you tuned on; the tuned model may also have changed elsewhere.")
    data = _compare(run, prompt)
    name = run.reference_name
    st.plotly_chart(fitted(before_after_figure(data["labels"], data["before"], data["after"],
                                               "The next token, before and after tuning")),
                    config=plot_config("dpo-next-token"), key=PAGE.key("before_after"))
    st.caption(f"Grey: **{md(name)}** as it was (the frozen reference). Blue: the tuned copy. The most likely next "
               "tokens of either model are listed.")
    st.markdown(f"**Completions with the same seeds** ({', '.join(map(str, COMPARE_SEEDS))}): the only thing that "
                "differs is the weights.")
    for seed, (old, new) in zip(COMPARE_SEEDS, data["texts"]):
        c1, c2 = st.columns(2)
        c1.code(old.strip(), language=None, wrap_lines=True)
        c2.code(new.strip(), language=None, wrap_lines=True)
        c1.caption(f"before · seed {seed}")
        c2.caption(f"after · seed {seed}")


def black_box(run: TuningRun) -> None:
    changes = param_changes(run.reference, run.model)
    st.plotly_chart(fitted(changes_figure(changes)), config=plot_config("dpo-parameter-changes"),
                    key=PAGE.key("changes"))
    st.download_button("Every parameter group (CSV)", changes_frame(changes).to_csv(index=False),
                       "glassbox-dpo-parameter-changes.csv", "text/csv", key=PAGE.key("changes_csv"),
                       icon=":material/download:")
    st.markdown("Every one of the model's parameters moved a little. The chart says **where** the weights changed "
                "most, relative to their size; it does **not** say **why** the behaviour changed, or what else "
                "changed with it. Alignment adjusts what the model does; it does not make its inner logic any "
                "easier to read. Look inside the tuned model on the other pages (choose **tuned model** in the "
                "sidebar) to compare its attention and neurons with the original's.")


def use_model(run: TuningRun) -> None:
    kept = st.session_state.get(REGISTERED)
    if kept == f"not kept:{run.id}":  # no memory left for it: it can still be downloaded
        st.markdown(NOT_KEPT)
    elif kept == run.id:
        st.markdown(f"The tuned model is **{TUNED_MODEL}** in the sidebar's model selector, on every page, for as "
                    "long as this browser tab stays open (yours, this session only). To keep it, download it.")
    else:
        return
    cached = st.session_state.get(ZIP)
    if not cached or cached[0] != run.id:
        cfg = run.cfg
        card = "\n".join([
            "# A Glassbox model tuned with DPO", "",
            f"Tuned in the Glassbox app from **{run.reference_name}** with Direct Preference "
            f"Optimization on {len(run.pairs)} preference pairs: beta {cfg.beta:g}, learning rate "
            f"{cfg.learning_rate:g}, {run.status().step} steps, AdamW.", "",
            "Labelled by: " + ", ".join(sorted({p.labelled_by for p in run.pairs})) + ".", ""])
        cached = (run.id, export_zip(run.model, run.tokenizer, "glassbox-tuned-model", card=card,
                                      comment=download_comment()))
        st.session_state[ZIP] = cached
    st.download_button("Download the tuned model (.zip, Hugging Face format)", cached[1],
                       "glassbox-tuned-model.zip", "application/zip", key=PAGE.key("zip"),
                       icon=":material/download:")
