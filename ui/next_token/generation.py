"""Step-by-step generation: a run per session (`st.session_state[RUN]`), grown by
engine.generation.sampling_lab.advance (which calls engine.generation.sampling.generate_steps), undone,
restarted, replayed.

A run belongs to a model and a prompt; when either changes, a fresh run starts from the new prompt.
"""
from __future__ import annotations

import html
import logging
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import display_token, encode
from engine.model.tokenizer import start_id
from engine.generation.sampling_lab import Run, StepRecord, advance

from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..server import model_work
from ..inputs import whole_number
from .controls import current_settings, describe
from .figures import DRAWN, KEPT, distribution_figure, fmt_prob, layout, token_label
from .kv_cache import kv_section
from .state import PAGE, RUN, RUN_SEED
from .surprise import prob_colour

LOG = logging.getLogger("glassbox.ui")
SEED = RUN_SEED
VIEW = PAGE.key("view")  # widget key: which step (1-based) is shown
N_STEPS = PAGE.key("n_steps")  # widget key: how many tokens "Run" generates
ERROR = PAGE.key("error")  # session key: a message from the last failed step
MAX_STEPS = 600  # per run: enough to go well past a 256-token window, small enough to keep in a session
MAX_PER_CLICK = 300
MAX_TEXT_TOKENS = 800  # tokens drawn in the text view; earlier ones are counted, not drawn
REPLAY_SECONDS = 20  # a replay takes at most this long, however many steps


def _key(choice: ModelChoice, text: str) -> str:
    return f"{choice.key}\x00{text}"


def current_run(choice: ModelChoice, text: str) -> Run:
    """The session's run for this model and prompt (a fresh one if either changed)."""
    run: Run | None = st.session_state.get(RUN)
    seed = int(st.session_state.get(SEED, 0))
    if run is None or run.key != _key(choice, text) or run.seed != seed:  # a new seed starts over
        eot = start_id(choice.tokenizer)
        prompt = (eot, *encode(choice.tokenizer, text).ids)  # the start marker first, as the model was trained
        run = Run(_key(choice, text), prompt, seed=seed)
        st.session_state[RUN] = run
    return run


def _set(run: Run) -> None:
    st.session_state[RUN] = run
    st.session_state[VIEW] = max(1, len(run.steps))


def _advance(choice: ModelChoice, text: str, n: int) -> None:
    run = current_run(choice, text)
    n = min(int(n), MAX_STEPS - len(run.steps))
    st.session_state.pop(ERROR, None)
    try:
        with model_work():
            run = advance(choice.model, run, n, current_settings())
    except Exception:  # a step that fails leaves the run as it was, with a plain message
        LOG.exception("Glassbox: generation failed")
        st.session_state[ERROR] = "The model could not generate the next token; the run is unchanged."
    _set(run)


def _undo(choice: ModelChoice, text: str) -> None:
    _set(current_run(choice, text).undone())


def _restart(choice: ModelChoice, text: str) -> None:
    st.session_state.pop(RUN, None)
    _set(current_run(choice, text))


def controls(choice: ModelChoice, text: str) -> tuple[Run, bool]:
    """The buttons and the seed; returns the run and whether Replay was pressed (in this run)."""
    run = current_run(choice, text)
    full = len(run.steps) >= MAX_STEPS
    args = (choice, text)
    c = st.columns([1.2, 1.6, 1, 1, 1, 1.2])
    c[0].button("Next token", key=PAGE.key("step"), on_click=_advance, args=(*args, 1), disabled=full,
                type="primary", width="stretch", help="Run the model once and draw one token.")
    with c[1]:
        n = whole_number("Tokens per run", 1, MAX_PER_CLICK, 20, key=N_STEPS, label_visibility="collapsed",
                            help=f"How many tokens 'Run' generates (1 to {MAX_PER_CLICK}).")
    c[2].button(f"Run {int(n)}", key=PAGE.key("run_n"), on_click=_advance, args=(*args, n), disabled=full,
                width="stretch", help="Generate this many tokens, one model run each.")
    c[3].button("Undo", key=PAGE.key("undo"), on_click=_undo, args=args, disabled=not run.steps,
                width="stretch", help="Take back the last token.")
    c[4].button("Start over", key=PAGE.key("restart"), on_click=_restart, args=args, disabled=not run.steps,
                width="stretch", help="Forget the generated tokens and start again from your text.")
    replay = c[5].button("▶ Replay", key=PAGE.key("replay"), disabled=len(run.steps) < 2, width="stretch",
                         help="Play the run again, step by step.")
    # Changing the seed starts over: current_run makes a new run when the seed differs from the run's.
    whole_number("Seed", 0, 2**31 - 1, key=SEED, where=st.columns([1, 2])[0],
                    help="Step i of a run draws with a generator seeded from (seed, i). The same seed and "
                         "settings give the same run every time; changing the seed starts over.")
    if full:
        st.caption(f"A run holds at most {MAX_STEPS} tokens: undo or start over to continue.")
    if ERROR in st.session_state:
        st.error(st.session_state[ERROR], icon=":material/error:")
    return run, replay


def run_html(run: Run, upto: int, tokenizer) -> str:
    """The prompt and the first `upto` generated tokens; generated ones coloured by the probability they were
    drawn with, the last one outlined, and tokens outside the model's window (at that step) struck through."""
    ids = run.ids[:len(run.prompt_ids) + upto]
    n_cut = run.steps[upto - 1].n_cut if upto else 0
    n_prompt = len(run.prompt_ids)
    first = max(0, len(ids) - MAX_TEXT_TOKENS)
    parts = ['<div class="gb-nt-text">']
    if first:
        parts.append(f'<span class="gb-nt-tok gb-nt-cut">… {first:,} earlier tokens not drawn …</span> ')
    for i in range(first, len(ids)):
        raw = display_token(tokenizer, ids[i], show_whitespace=False)
        classes, style = ["gb-nt-tok"], ""
        if i < n_cut:
            classes.append("gb-nt-cut")
            title = f"token {i}: outside the model's window, it no longer sees this"
        elif i < n_prompt:
            title = f"token {i}: your text" if i or ids[0] != start_id(tokenizer) else \
                "the start marker the model reads first"
        else:
            step = run.steps[i - n_prompt]
            bg, fg = prob_colour(step.prob)
            style = f"background:{bg};color:{fg}"
            title = f"step {i - n_prompt + 1}: drawn with probability {fmt_prob(step.prob)}"
        if i == len(ids) - 1 and upto:
            classes.append("gb-nt-drawn")
        shown = html.escape(raw.replace("\n", "↵"))
        style_attr = f' style="{style}"' if style else ""
        parts.append(f'<span class="{" ".join(classes)}" title="{html.escape(title, quote=True)}"{style_attr}>'
                     f'{shown}</span>' + ("<br>" if "\n" in raw else ""))
    parts.append("</div>")
    return "".join(parts)


def step_summary(step: StepRecord, index: int, n: int, tokenizer, vocab_size: int, run_seed: int) -> str:
    """One line of HTML about a step (token text escaped)."""
    tok = token_label(tokenizer, step.token_id)
    rank = "the model's top choice" if step.rank == 1 else f"the model's #{step.rank:,} choice"
    cut = f" {step.n_cut:,} earlier tokens were outside its window." if step.n_cut else ""
    return (f'<div class="gb-nt-step">Step {index} of {n} drew <code class="gb-nt-drawn-token">{tok}</code> '
            f"with probability <b>{fmt_prob(step.prob)}</b> ({fmt_prob(step.prob_before)} before the filters), {rank}; "
            f"{step.top.n_kept:,} of {vocab_size:,} tokens could be drawn. The model saw {step.n_context:,} "
            f"tokens.{cut} <span style=\"color:#555\">Settings: {html.escape(describe(step.settings))}, "
            f"run seed {run_seed}.</span></div>")


def step_figure(step: StepRecord, index: int, tokenizer) -> go.Figure:
    labels = [token_label(tokenizer, t) for t in step.top.ids]
    return distribution_figure(step.top, labels, drawn=step.token_id,
                               title=f"Step {index}: the distribution it drew from")


def show_step(run: Run, index: int, tokenizer, vocab_size: int, key: str) -> None:
    step = run.steps[index - 1]
    st.markdown(step_summary(step, index, len(run.steps), tokenizer, vocab_size, run.seed),
                unsafe_allow_html=True)
    st.plotly_chart(fitted(step_figure(step, index, tokenizer)), key=key, config=plot_config(f"glassbox-step-{index}"))


def steps_figure(run: Run) -> go.Figure:
    """Every step: the probability of the token it drew, and the entropy it drew from."""
    steps = list(run.steps)
    x = list(range(1, len(steps) + 1))
    fig = go.Figure()
    fig.add_bar(x=x, y=[s.prob for s in steps], name="probability of the drawn token", marker_color=KEPT,
                hovertemplate="step %{x}: %{y:.1%}<extra></extra>")
    fig.add_scatter(x=x, y=[s.entropy_after for s in steps], name="entropy drawn from (bits, right axis)",
                    yaxis="y2", mode="lines+markers", line=dict(color=DRAWN, width=2), marker=dict(size=5),
                    hovertemplate="step %{x}: %{y:.2f} bits<extra></extra>")
    full = next((i for i, s in enumerate(steps, 1) if s.n_cut), None)
    if full:
        fig.add_vline(x=full - 0.5, line_dash="dash", line_color="#444", annotation_text="window full",
                      annotation_position="top left")
    layout(fig, "The whole run", height=360, barmode="overlay",
           yaxis=dict(title="probability", tickformat=".0%", range=[0, 1.02], gridcolor="#e5e5e5"),
           yaxis2=dict(title="bits", overlaying="y", side="right", rangemode="tozero", showgrid=False),
           xaxis=dict(title="step"))
    return fig


def steps_table(run: Run, tokenizer) -> pd.DataFrame:
    return pd.DataFrame([{
        "step": i, "token": display_token(tokenizer, s.token_id), "id": s.token_id, "probability": s.prob,
        "before filters": s.prob_before, "rank": s.rank, "entropy (bits)": s.entropy_after,
        "tokens that could be drawn": s.top.n_kept, "temperature": s.settings.temperature,
        "top-k": s.settings.top_k, "top-p": s.settings.top_p, "min-p": s.settings.min_p, "run seed": run.seed,
        "step seed": s.seed, "tokens seen": s.n_context, "tokens cut": s.n_cut,
    } for i, s in enumerate(run.steps, 1)])


def replay(run: Run, tokenizer, vocab_size: int, text_slot, step_slot) -> None:
    """Play the run step by step in the two placeholders (the rest of the page stays as it is)."""
    delay = min(0.7, REPLAY_SECONDS / len(run.steps))
    for i in range(1, len(run.steps) + 1):
        text_slot.markdown(run_html(run, i, tokenizer), unsafe_allow_html=True)
        with step_slot.container():
            show_step(run, i, tokenizer, vocab_size, key=PAGE.key(f"replay_{i}"))
        time.sleep(delay)


def generation_panel(choice: ModelChoice, text: str) -> None:
    """The whole step-by-step section: controls, the text so far, the chosen step, the run, its table."""
    run, replaying = controls(choice, text)
    vocab, block = choice.model.config.vocab_size, choice.model.config.block_size
    st.caption("Each step uses the sampling settings above at the moment you click, and records them.")
    n = len(run.steps)
    view = n
    if n >= 2:
        if not 1 <= st.session_state.get(VIEW, 0) <= n:
            st.session_state[VIEW] = n
        view = st.slider("Show step", 1, n, key=VIEW,
                         help="Scrub back through the run: the text and the distribution as they were then.")
    text_slot, step_slot = st.empty(), st.empty()
    if replaying:
        replay(run, choice.tokenizer, vocab, text_slot, step_slot)
        return
    text_slot.markdown(run_html(run, view, choice.tokenizer), unsafe_allow_html=True)
    if not n:
        st.caption("Press **Next token** to see the model pick the first token after your text.")
    else:
        step = run.steps[view - 1]
        if step.n_cut:
            st.info(f"The text is now longer than the model's window of {block:,} tokens: the first {step.n_cut:,} "
                    "(struck through) no longer reach the model. It generates as if they were never there.",
                    icon=":material/straighten:")
        with step_slot.container():
            show_step(run, view, choice.tokenizer, vocab, key=PAGE.key("step_chart"))
            st.plotly_chart(fitted(steps_figure(run)), key=PAGE.key("run_chart"), config=plot_config("glassbox-run"))
            with st.expander("Every step as a table (download as CSV from its toolbar)"):
                st.dataframe(steps_table(run, choice.tokenizer), hide_index=True)
    kv_section(choice, run, view)  # the same step, as the key/value cache held it
