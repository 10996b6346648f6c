"""Preferences you give: the model writes completions of a prompt, side by side, and the user marks the one
they prefer and the one they reject; or a built-in set, labelled by a rule that stands in for human raters.

The pairs belong to this session (`st.session_state[PAIRS]`), like everything a user makes here.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.train.preference import PreferencePair, write_completions
from engine.train.preference_sets import NAMES, SETS, build_pairs, find_set

from ..models import ModelChoice
from ..server import model_work
from ..text import md
from ..inputs import whole_number
from .state import PAGE, remembered

PAIRS = PAGE.key("pairs")  # session key: list[PreferencePair]
DRAFT = PAGE.key("draft")  # session key: (model key, prompt, seed, completions) written for the user to mark
NOTICE = PAGE.key("pairs_notice")  # session key: a line about the last change, shown once
MAX_PAIRS = 64  # every step runs every pair: more would make a tuning run slow for the server
MAX_PROMPT_CHARS = 300
N_COMPLETIONS = 4
COMPLETION_TOKENS = 40
DEFAULT_PROMPT = "Once upon a time, there was a little girl named"
EXAMPLE_PROMPTS = (DEFAULT_PROMPT, "Tom lost his red ball in the park. He", "One day, the little dog found",
                   "Lily wanted to go outside, but it was raining. She")


def pairs() -> list[PreferencePair]:
    return st.session_state.setdefault(PAIRS, [])


def _add(new: list[PreferencePair], what: str) -> None:
    have = pairs()
    room = MAX_PAIRS - len(have)
    have.extend(new[:room])
    cut = f" ({len(new) - room} left out: at most {MAX_PAIRS} pairs)" if len(new) > room else ""
    st.session_state[NOTICE] = f"Added {min(len(new), room)} {what}{cut}."


def builtin_sets(choice: ModelChoice) -> None:
    """Pick a set, see its rule, add its pairs (written by the current model, labelled by the rule)."""
    c1, c2 = st.columns([2, 1])
    with c1:
        keys = [s.key for s in SETS]
        key = st.selectbox("Built-in preference set", keys, format_func=lambda k: find_set(k).title,
                           **remembered("set", keys[0], keys))
    option = ""
    if key == "name":
        with c2:
            option = st.selectbox("The name the rule prefers", NAMES, **remembered("set_name", NAMES[0], NAMES))
    pref = find_set(key)
    st.caption(f"{pref.rule} **A rule labelled these pairs, standing in for the people who rank a model's "
               "answers in real RLHF.** The completions are the current model's own, seeded, so the set is the same "
               "every time.")
    if st.button("Add this set's pairs", key=PAGE.key("add_set"), icon=":material/playlist_add:"):
        with st.spinner("The model writes completions and the rule picks…"), model_work():
            new = build_pairs(choice.model, choice.tokenizer, key, option)
        if new:
            _add(new, f"pair{'s' if len(new) != 1 else ''} labelled by the rule “{pref.title}”")
        else:
            st.session_state[NOTICE] = "The rule could not tell any of this model's completions apart: no pairs added."
        st.rerun()


def _use_example() -> None:
    PAGE.choose("prompt", st.session_state[PAGE.key("example")])


def your_pairs(choice: ModelChoice) -> None:
    """Pick or type a prompt, let the model write completions, mark one preferred and one rejected."""
    st.selectbox("Start from an example prompt", EXAMPLE_PROMPTS, index=None, key=PAGE.key("example"),
                 on_change=_use_example, placeholder="or type your own below")
    c1, c2 = st.columns([4, 1])
    with c1:
        prompt = st.text_input("Prompt", max_chars=MAX_PROMPT_CHARS, **remembered("prompt", DEFAULT_PROMPT),
                               help="The completions continue this text; both sides of a pair share it.")
    with c2:
        seed = whole_number("Seed", 0, 9_999, **remembered("seed", 0),
                            help="The same seed writes the same completions; change it for others.")
    if st.button(f"Write {N_COMPLETIONS} completions", key=PAGE.key("write"), icon=":material/edit_note:"):
        with model_work():
            texts = write_completions(choice.model, choice.tokenizer, prompt, N_COMPLETIONS, COMPLETION_TOKENS, seed)
        st.session_state[DRAFT] = (choice.key, prompt, seed, texts)
    draft = st.session_state.get(DRAFT)
    if not draft or draft[0] != choice.key or draft[1] != prompt:
        return
    texts = draft[3]
    cols = st.columns(N_COMPLETIONS)
    for i, (col, text) in enumerate(zip(cols, texts), 1):
        with col:
            st.markdown(f"**Completion {i}**")
            st.code(text.strip() or "(the model ended the text at once)", language=None, wrap_lines=True)
    numbers = list(range(1, len(texts) + 1))
    c1, c2, c3 = st.columns([1, 1, 1])
    with c1:
        good = st.radio("You prefer", numbers, index=None, horizontal=True, key=PAGE.key("chosen"))
    with c2:
        bad = st.radio("over", numbers, index=None, horizontal=True, key=PAGE.key("rejected"))
    with c3:
        problem = ("Mark one completion you prefer and one you reject." if good is None or bad is None else
                   "Pick two different completions." if good == bad else
                   "These two completions are the same text: pick two that differ."
                   if texts[good - 1] == texts[bad - 1] else "")
        if st.button("Add this pair", key=PAGE.key("add_pair"), disabled=bool(problem), type="primary",
                     icon=":material/thumb_up:", help=problem or None):
            _add([PreferencePair(prompt, texts[good - 1], texts[bad - 1])], "pair marked by you")
            st.rerun()


def pair_table() -> None:
    """The pairs so far, and a way to start again."""
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(md(notice), icon=":material/check:")
    have = pairs()
    if not have:
        st.info("No pairs yet: add a built-in set or mark your own above.", icon=":material/thumbs_up_down:")
        return
    st.dataframe(pd.DataFrame([{"prompt": p.prompt, "preferred": p.chosen.strip(), "rejected": p.rejected.strip(),
                                "labelled by": p.labelled_by} for p in have]), hide_index=True)
    if st.button(f"Remove all {len(have)} pairs", key=PAGE.key("clear"), icon=":material/delete:"):
        st.session_state[PAIRS] = []
        st.rerun()
