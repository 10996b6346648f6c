"""After a run: the time-lapse (scrub through the checkpoints kept while it trained) and the before/after
comparison (a prompt of your choice through the untrained and the trained model).

Both are fragments: moving the slider or choosing a head reruns only that section. The time-lapse draws
from traces recorded during training, so scrubbing never runs a model.
"""
from __future__ import annotations

import streamlit as st

from engine import Trace, run_trace
from engine.train.runs import Snapshot, TrainingRun

from ..patterns import head_figure, matrix_csv, position_labels
from ..plots import fitted, plot_config
from ..server import model_work
from .circuits import circuits_panel
from .figures import next_token_csv, next_token_figure, next_token_table
from .state import PAGE

MAX_PROMPT_CHARS = 400
PLAY_S = 1.2  # seconds per frame when the time-lapse plays
_PLAYING = PAGE.key("playing")  # session key: id of the run whose time-lapse is playing
_FRESH = PAGE.key("play_fresh")  # session key: play was just pressed (show the first frame before moving on)
_COMPARE = PAGE.key("compare")  # session key: (run id, prompt, (before trace, after trace))


def _attention(trace: Trace, layer: int, head: int, title: str, key: str) -> None:
    """One head's pattern, drawn and downloadable as the Attention page draws it."""
    st.plotly_chart(fitted(head_figure(trace.pattern(layer, head), trace.tokens, title, clickable=False)),
                    config=plot_config(f"glassbox-attention-{key}"), key=PAGE.key(f"att_{key}"))
    labels = position_labels(trace.tokens)
    st.download_button("Attention weights (CSV)", matrix_csv(trace.pattern(layer, head), labels, labels),
                       f"glassbox-attention-{key}.csv", "text/csv", key=PAGE.key(f"att_csv_{key}"),
                       icon=":material/download:")


def _next_tokens(trace: Trace, run: TrainingRun, title: str, key: str) -> None:
    """The most likely next tokens after the prompt, drawn and downloadable."""
    table = next_token_table(trace, run.tokenizer)
    st.plotly_chart(fitted(next_token_figure(table, title)), config=plot_config(f"glassbox-next-token-{key}"),
                    key=PAGE.key(f"next_{key}"))
    st.download_button("Next tokens (CSV)", next_token_csv(table), f"glassbox-next-token-{key}.csv", "text/csv",
                       key=PAGE.key(f"next_csv_{key}"), icon=":material/download:")


def _head_picker(run: TrainingRun, name: str) -> tuple[int, int]:
    cfg = run.spec.model
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(cfg.n_layer), key=PAGE.key(f"{name}_layer_{run.id}"),
                         index=cfg.n_layer - 1)
    head = c2.selectbox("Head", range(cfg.n_head), key=PAGE.key(f"{name}_head_{run.id}"))
    return layer, head


def _play(run_id: str, first_step: int, key: str) -> None:
    st.session_state[_PLAYING] = run_id
    st.session_state[_FRESH] = True  # the first frame shows before the first tick moves on
    st.session_state[key] = first_step  # play from the start


def _pause() -> None:
    st.session_state.pop(_PLAYING, None)


def timelapse(run: TrainingRun) -> None:
    """The time-lapse; while it plays, a fragment advances the slider every PLAY_S seconds."""
    playing = st.session_state.get(_PLAYING) == run.id
    st.fragment(run_every=PLAY_S if playing else None)(_timelapse_body)(run, playing)


def _timelapse_body(run: TrainingRun, playing: bool) -> None:
    if (st.session_state.get(_PLAYING) == run.id) != playing:
        st.rerun()  # play or pause pressed: redraw the page so the fragment ticks (or stops ticking)
    snaps = run.snapshots()
    if len(snaps) < 2:
        st.info("The run stopped before its first checkpoint, so there is nothing to scrub through.")
        return
    st.markdown(f"The model was saved {len(snaps)} times while it trained. Drag the slider (or press play) to "
                f"travel through training and watch the fixed prompt *{run.spec.probe}* change: how sure the "
                "model is of the next token, and where each head looks.")
    steps = [s.step for s in snaps]
    key = PAGE.key(f"lapse_step_{run.id}")
    if st.session_state.get(key) not in steps:
        st.session_state[key] = steps[-1]  # open on the trained model
    if playing and not st.session_state.pop(_FRESH, False):
        i = steps.index(st.session_state[key])
        if i + 1 < len(steps):
            st.session_state[key] = steps[i + 1]
        else:
            _pause()  # the last frame stays on screen
    c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
    step = c1.select_slider("Training step", steps, key=key)
    if playing:
        c2.button("Pause", on_click=_pause, icon=":material/pause:", key=PAGE.key("lapse_pause"),
                  use_container_width=True)
    else:
        c2.button("Play", on_click=_play, args=(run.id, steps[0], key), icon=":material/play_arrow:",
                  key=PAGE.key("lapse_play"), use_container_width=True)
    snap: Snapshot = snaps[steps.index(step)]
    layer, head = _head_picker(run, "lapse")
    c = st.columns(3)
    c[0].metric("Step", f"{snap.step:,}")
    c[1].metric("Training loss", f"{snap.loss:.3f}" if snap.loss is not None else "–")
    c[2].metric("Held-out loss", f"{snap.val_loss:.3f}" if snap.val_loss is not None else "–")
    st.markdown(f"**What the model wrote at step {snap.step:,}**")
    st.code(snap.sample or "(nothing: it ended the text at once)", language=None, wrap_lines=True)
    left, right = st.columns(2)
    with left:
        _attention(snap.probe, layer, head, f"Step {snap.step:,}: layer {layer}, head {head}", "lapse")
    with right:
        _next_tokens(snap.probe, run, f"Step {snap.step:,}: what comes next?", "lapse")
    circuits_panel(run, snap.step)  # every checkpoint's heads, this step marked


def _compare_traces(run: TrainingRun, prompt: str) -> tuple[Trace, Trace]:
    cached = st.session_state.get(_COMPARE)
    if cached and cached[0] == (run.id, prompt):
        return cached[1]
    with st.spinner("Running both models…"):
        with model_work():
            before = run_trace(run.model_at(run.snapshots()[0]), run.tokenizer, prompt)
            after = run_trace(run.model, run.tokenizer, prompt)
    st.session_state[_COMPARE] = ((run.id, prompt), (before, after))  # one pair per session
    return before, after


@st.fragment
def before_after(run: TrainingRun) -> None:
    if run.model is None or not run.snapshots():
        return
    prompt = st.text_input("Prompt", value=run.spec.probe, max_chars=MAX_PROMPT_CHARS,
                           key=PAGE.key(f"compare_prompt_{run.id}"),
                           help="Any text: both models read it, and you see where a head looks and what each "
                                "predicts next.")
    if not prompt.strip():
        st.info("Type a prompt to compare the two models.", icon=":material/keyboard:")
        return
    layer, head = _head_picker(run, "compare")
    before, after = _compare_traces(run, prompt)
    if after.n_dropped:
        st.info(f"The prompt is longer than the model's context of {run.spec.model.block_size} tokens: both models "
                f"read its last {len(after) - 1} tokens.", icon=":material/straighten:")
    final = run.status().step
    left, right = st.columns(2)
    with left:
        st.markdown("**Before training** (step 0: random weights)")
        _attention(before, layer, head, f"Before: layer {layer}, head {head}", "before")
        _next_tokens(before, run, "Before: what comes next?", "before")
    with right:
        st.markdown(f"**After training** (step {final:,})")
        _attention(after, layer, head, f"After: layer {layer}, head {head}", "after")
        _next_tokens(after, run, "After: what comes next?", "after")
