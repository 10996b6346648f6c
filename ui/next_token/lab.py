"""The Next token page's first two sections: the distribution (every sampling stage, computed and drawn in the
browser from the cached logits of one position) and step-by-step generation. Each is a fragment: the position,
the bar count and the draws rerun it, never the model; a slider moved in the browser only reports its value.
"""
from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from engine import Trace, display_token

from ..errors import error_boundary
from ..models import ModelChoice
from ..text import md
from ..views.sampling import show_lab
from .controls import EXPLAIN, HELP, PRESET_HELP, options, preset_values, settings_applier, snapped
from .draws import continuations_panel, draw_panel
from .generation import generation_panel
from .state import PAGE, POSITION_TEXT, STAGES


def position_picker(trace: Trace) -> int:
    """Which position's prediction to show: the end of the text unless the user picks an earlier one."""
    end = len(trace) - 1
    if st.session_state.get(POSITION_TEXT) != trace.text:
        PAGE.choose("position", end)
        st.session_state[POSITION_TEXT] = trace.text
    if len(trace) < 2:
        return 0
    return st.select_slider(
        "Predict the token after…", range(len(trace)), **PAGE.remembered("position", end, range(len(trace))),
        # the strings only: a widget's format_func lives as long as the session (ui/memory.py)
        format_func=lambda i, tokens=trace.tokens, end=end: f"{i}: {md(tokens[i])}" + (
            " (end of your text)" if i == end else ""),
        help="The model predicts a next token at every position at once; pick an earlier one to compare its "
             "guess with what your text actually says next.")


@st.fragment
def distribution_lab(trace: Trace, choice: ModelChoice) -> None:
    with error_boundary("drawing the distribution"):
        _distribution_lab(trace, choice)


def _distribution_lab(trace: Trace, choice: ModelChoice) -> None:
    """The lab in the browser (ui/views/sampling.py) on the chosen position's cached logits; then the draws,
    which run here with the settings it reported."""
    tok, vocab = choice.tokenizer, choice.model.config.vocab_size
    left, right = st.columns([1.7, 1], gap="large")
    with left:
        pos = position_picker(trace)
    with right:
        n_bars = st.slider("Tokens listed in the charts", 5, 40, **PAGE.remembered("bars", 15, range(5, 41)))
    s = snapped(vocab)
    stage = PAGE.kept("stage", STAGES[0])
    show_lab(trace, pos, lambda i: display_token(tok, i), PAGE.key("lab"),
             {**asdict(s), "stage": stage if stage in STAGES else STAGES[0]}, n_bars, options(vocab), preset_values(),
             PRESET_HELP, {f: text.replace("**", "") for f, text in EXPLAIN.items()}, HELP, STAGES,
             settings_applier(vocab, STAGES))

    st.subheader("Draw from this distribution")
    draw_panel(trace.logits[pos], pos, tok)  # [vocab], cached: no model run
    continuations_panel(choice.model, trace.ids[:pos + 1], pos, tok)


@st.fragment
def generation_lab(choice: ModelChoice, text: str) -> None:
    with error_boundary("generating"):
        generation_panel(choice, text)
