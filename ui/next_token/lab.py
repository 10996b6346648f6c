"""The Next token page's first two sections: the distribution (every sampling stage, drawn live from the cached
logits) and step-by-step generation. Each is a fragment: moving a sampling control reruns it, not the model.
"""
from __future__ import annotations

import streamlit as st

from engine import Trace, display_token, sampling_stages
from engine.generation.sampling_lab import blame, removed_by, top_tokens

from ..errors import error_boundary
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..terms import define
from ..text import md
from .controls import preset_buttons, settings_controls
from .draws import continuations_panel, draw_panel
from .figures import distribution_figure, token_label
from .generation import generation_panel
from .stages import STAGES, show_stage
from .state import PAGE, POSITION_TEXT


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
    tok, vocab = choice.tokenizer, choice.model.config.vocab_size
    preset_buttons()
    summary = st.container()
    left, right = st.columns([1, 1.7], gap="large")
    with left:
        s = settings_controls(vocab)
        pos = position_picker(trace)
        n_bars = st.slider("Tokens listed in the charts", 5, 40, **PAGE.remembered("bars", 15, range(5, 41)))
    logits = trace.logits[pos]  # [vocab], cached: no model run from here on
    stages = sampling_stages(logits, s)
    masks = removed_by(logits, s)
    top = top_tokens(stages, n_bars)
    labels = [token_label(tok, t) for t in top.ids]
    actual = trace.ids[pos + 1] if pos + 1 < len(trace) else None
    with summary:
        m = st.columns(4)
        m[0].metric("Can be drawn", f"{top.n_kept:,}", help=f"tokens left after the filters, of {vocab:,}")
        m[1].metric("Entropy", f"{stages.entropy_after:.2f} bits",
                    help=f"bits of choice left after the filters ({stages.entropy_before:.2f} before them)")
        best = int(stages.order[0])
        m[2].metric("Top token", md(display_token(tok, best)),  # metric values are Markdown
                    help=f"the most likely token: {float(stages.probs_after[best]):.1%} after the filters")
        m[3].metric("Filtered out", f"{float(stages.probs_before[~stages.kept].sum()):.1%}",
                    help="probability (at this temperature) taken from the removed tokens and shared out "
                         "among the kept ones")
    with right:
        if s.greedy:
            st.info("**T = 0: greedy.** The most likely token gets probability 1 and every other token 0, "
                    "so generation always picks the same token.", icon=":material/target:")
        st.plotly_chart(fitted(distribution_figure(top, labels, blame(masks, top.ids), actual=actual,
                                                   title="What the next token is drawn from")),
                        key=PAGE.key("distribution"), config=plot_config("glassbox-next-token"))
        st.caption("Bars: the probability each token is drawn with after temperature and filters, renormalised "
                   "to add up to 100% (blue: can be drawn; orange, pink, light blue or grey: removed, by the "
                   "filter named). ◇: its probability before the filters. Colours: Okabe-Ito, colour-blind safe.")
        if actual is not None:
            # HTML, not Markdown: token text may hold *, _, $ or backticks; token_label escapes it.
            st.markdown(f'<div class="gb-nt-note">In your text the next token is <code>{token_label(tok, actual)}'
                        f"</code>: the model gave it {float(stages.probs_before[actual]):.2%} at this temperature "
                        f"({float(stages.probs_after[actual]):.2%} after the filters).</div>",
                        unsafe_allow_html=True)

    st.subheader("Stage by stage")
    stage = st.segmented_control("Stage", STAGES, label_visibility="collapsed",
                                 **PAGE.remembered("stage", STAGES[0]),
                                 help=define("logit", "Each stage of turning the model's scores into the "
                                                      "distribution above."))
    show_stage(stage or STAGES[0], stages, masks, s, [token_label(tok, t) for t in stages.order[:n_bars].tolist()])

    st.subheader("Draw from this distribution")
    draw_panel(logits, s, pos, tok)
    continuations_panel(choice.model, trace.ids[:pos + 1], s, pos, tok)


@st.fragment
def generation_lab(choice: ModelChoice, text: str) -> None:
    with error_boundary("generating"):
        generation_panel(choice, text)
