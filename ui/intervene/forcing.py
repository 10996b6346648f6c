"""The Force a token tab: the model continues your text; at any step of any branch, pick another candidate and
let it go on from there. The branches side by side, each forced token outlined."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from engine import Trace
from engine.intervene.forcing import MAX_STEPS, branch, candidates
from engine.model.tokenizer import start_id

from ..models import ModelChoice
from ..text import md
from .controls import Drawing, drawing, prompt_ids
from .data import kept, shown
from .figures import heat_html
from .state import PAGE

BRANCHES = PAGE.key("branches")  # session key: {"of": (model, text ids, drawing), "forced": [forced steps, ...]}
MAX_BRANCHES = 4
CANDIDATES = 8
TAIL = 12  # tokens of the prompt shown before each branch
Forced = tuple[tuple[int, int], ...]  # (step, token id), in step order
NOTES = """**What this shows.** How much one token steers everything after it: the model continues whatever it is
given as fluently as it can, so a single forced word can send the story somewhere else entirely.

**What it does not show.** Which branch is "right", or what the model "meant": before the forced step the
branches are the same text, after it both use the same random numbers at every step, and what differs is the
model's answer to the forced token."""


@dataclass(frozen=True)
class Branch:
    """One branch, compact: the tokens it took, what each step drew, and each step's top candidates."""
    forced: Forced
    tokens: tuple[int, ...]
    drawn: tuple[int, ...]
    candidates: tuple[tuple[tuple[int, float], ...], ...]


def _run(choice: ModelChoice, ids: list[int], draw: Drawing, forced: Forced) -> Branch:
    steps = branch(choice.model, ids, draw.n_new, draw.settings, draw.seed, dict(forced),
                   stop_id=start_id(choice.tokenizer))
    return Branch(forced, tuple(s.step.token_id for s in steps), tuple(s.drawn for s in steps),
                  tuple(tuple(candidates(s.step, CANDIDATES)) for s in steps))


def _state(of: tuple) -> dict:
    state = st.session_state.get(BRANCHES)
    if state is None or state["of"] != of:  # another model, text or drawing: start again from the original
        state = {"of": of, "forced": [()]}
        st.session_state[BRANCHES] = state
    return state


def _name(i: int, b: Branch, choice: ModelChoice) -> str:
    if not b.forced:
        return "the original"
    k, t = b.forced[-1]
    return f"branch {i}: step {k} forced to “{shown(choice, t)}”"


def _force(branches: list[Branch]) -> None:
    """The button's callback: a new branch from the chosen one, forced at the chosen step (runs before the
    page reruns, so the new branch is drawn at once)."""
    state = st.session_state[BRANCHES]
    src = branches[st.session_state[PAGE.key("force_from")]]
    step, token = st.session_state[PAGE.key("force_step")], st.session_state[PAGE.key("force_token")]
    forced = tuple(sorted({**{k: v for k, v in src.forced if k < step}, step: token}.items()))
    if forced in state["forced"]:
        return
    if len(state["forced"]) >= MAX_BRANCHES:
        state["forced"].pop(1)  # the oldest branch after the original makes room
    state["forced"].append(forced)


def _clear() -> None:
    st.session_state[BRANCHES]["forced"] = [()]


def _show(choice: ModelChoice, i: int, b: Branch, tail: list[str]) -> None:
    st.markdown(f"**{md(_name(i, b, choice))}**")
    forced_at = {k for k, _ in b.forced}
    toks = [shown(choice, t) for t in b.tokens]
    probs = [dict(c) for c in b.candidates]
    titles = [f"step {k}: {probs[k].get(t, 0):.1%}" + (f"; forced (the draw was {shown(choice, b.drawn[k])})"
                                                        if k in forced_at else "") for k, t in enumerate(b.tokens)]
    head = ["…", *tail]
    st.html(heat_html([*head, *toks], None, ["your text"] * len(head) + titles,
                      [len(head) + k for k in sorted(forced_at)], muted=len(head)))


def _valid(key: str, options: list) -> None:
    """Forget a picker's value that the options no longer hold (another branch, a shorter one)."""
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)


def forcing_tab(choice: ModelChoice, trace: Trace) -> None:
    st.markdown("The model continues your text one token at a time. Pick any step of any branch, take another "
                "candidate there, and let the model go on: the branches side by side.")
    draw = drawing(max_new=min(MAX_STEPS, 40))
    ids = prompt_ids(trace)
    if len(ids) >= choice.model.config.block_size:
        st.info("Your text fills the model's context: there is no room for new tokens. Shorten it.",
                icon=":material/straighten:")
        return
    state = _state((choice.key, tuple(ids), draw))
    branches = [kept(choice, ("branch", tuple(ids), draw, f), lambda f=f: _run(choice, ids, draw, f),
                     "Writing…") for f in state["forced"]]
    if not branches[0].tokens:
        st.info("The model ended the story at once: there is nothing to branch from.")
        return
    tail = list(trace.tokens[-TAIL:])
    for start in range(0, len(branches), 2):
        cols = st.columns(2)
        for col, i in zip(cols, range(start, min(start + 2, len(branches)))):
            with col:
                _show(choice, i, branches[i], tail)
    st.caption(f"Outlined: a forced token (hover any token for its probability at that step). {draw.describe()}; "
               f"at most {MAX_BRANCHES} branches at once.")
    c = st.columns([1.4, 1, 1.4])
    _valid(PAGE.key("force_from"), list(range(len(branches))))
    src = c[0].selectbox("Branch from", range(len(branches)), key=PAGE.key("force_from"),
                         format_func=lambda i: _name(i, branches[i], choice))
    b = branches[src]
    _valid(PAGE.key("force_step"), list(range(len(b.tokens))))
    step = c[1].selectbox("At step", range(len(b.tokens)), key=PAGE.key("force_step"),
                          format_func=lambda k: f"{k}: {shown(choice, b.tokens[k])}")
    options = [(t, p) for t, p in b.candidates[step] if t != b.tokens[step]]
    probs = dict(options)
    _valid(PAGE.key("force_token"), list(probs))
    c[2].selectbox("Take instead", [t for t, _ in options], key=PAGE.key("force_token"),
                   format_func=lambda t: f"{shown(choice, t)}  ({probs[t]:.1%})",
                   help="The step's most likely tokens before any sampling filter, with their probabilities.")
    c = st.columns(2)
    c[0].button("Force it and go on", on_click=_force, args=(branches,), key=PAGE.key("force"),
                icon=":material/call_split:", type="primary")
    c[1].button("Clear the branches", on_click=_clear, key=PAGE.key("clear"), disabled=len(branches) == 1)
    st.markdown(NOTES)
