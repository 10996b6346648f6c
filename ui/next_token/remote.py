"""The Next token page on a model that runs on NDIF: the distribution at one position, every sampling stage and
draws from it, drawn from that position's whole logits, which one request brings back (256 KB for Llama's
128,256 tokens in bf16, the numbers the model computed).

The position is the page's remembered setting; picking another position asks for its logits (one more job,
shared by every session asking the same). The sampling controls, stages and draws are the page's own, run on
those logits here. Generating step by step, scoring a text's surprise and the hosted comparison run a model
many times over; they stay with the models this server runs.
"""
from __future__ import annotations

import streamlit as st

from engine import display_token, sampling_stages
from engine.generation.sampling_lab import blame, removed_by, top_tokens
from engine.model.trace import encode_for_model
from engine.remote import TraceRequest

from ..cache import reading
from ..models import ModelChoice
from ..ndif import figure
from ..plots import fitted, plot_config
from ..terms import define
from ..text import md
from .controls import preset_buttons, settings_controls
from .draws import draw_panel
from .figures import distribution_figure, token_label
from .stages import STAGES, show_stage
from .state import PAGE, POSITION_TEXT


def remote_view(text: str, choice: ModelChoice) -> None:
    """The distribution lab for an NDIF model: a position (a job), then every stage live from its logits."""
    tok, cfg = choice.tokenizer, choice.model.config
    enc, _ = encode_for_model(tok, text, cfg.block_size)  # the positions, before anything is asked
    end = len(enc.ids) - 1
    if st.session_state.get(POSITION_TEXT) != text:
        PAGE.choose("position", end)
        st.session_state[POSITION_TEXT] = text
    positions = range(len(enc.ids))
    pos = end if end < 1 else st.select_slider(
        "Predict the token after…", positions, **PAGE.remembered("position", end, positions),
        format_func=lambda i: f"{i}: {md(enc.tokens[i])}" + (" (end of your text)" if i == end else ""),
        help="Each position's logits are one request to NDIF, kept for every session on this server.")
    sel = reading(text, choice, TraceRequest(logits_at=(pos,)))
    if sel is None:
        return  # the job's state is drawn in its place
    logits = sel.final_logits(pos)  # [vocab]: the model's own bf16 numbers, here in float32
    st.caption(f"The logits came back from NDIF as the model computed them, in {str(sel.dtype).removeprefix('torch.')}"
               f"; every probability below is computed from them here. The job took {sel.seconds:.1f} s, queue "
               f"and network included. The entropy of the whole distribution, computed on NDIF: "
               f"{figure(float(sel.entropy[pos]), 3, 2)} bits.")
    preset_buttons()
    summary = st.container()
    left, right = st.columns([1, 1.7], gap="large")
    with left:
        s = settings_controls(cfg.vocab_size)
        n_bars = st.slider("Tokens listed in the charts", 5, 40, **PAGE.remembered("bars", 15, range(5, 41)))
    stages = sampling_stages(logits, s)
    masks = removed_by(logits, s)
    top = top_tokens(stages, n_bars)
    actual = sel.ids[pos + 1] if pos + 1 < len(sel) else None
    with summary:
        m = st.columns(3)
        m[0].metric("Can be drawn", f"{top.n_kept:,}", help=f"tokens left after the filters, of {cfg.vocab_size:,}")
        m[1].metric("Entropy", f"{stages.entropy_after:.2f} bits", help="bits of choice left after the filters")
        best = int(stages.order[0])
        m[2].metric("Top token", md(display_token(tok, best)),
                    help=f"the most likely token: {float(stages.probs_after[best]):.1%} after the filters")
    with right:
        st.plotly_chart(fitted(distribution_figure(top, [token_label(tok, t) for t in top.ids],
                                                   blame(masks, top.ids), actual=actual,
                                                   title="What the next token is drawn from")),
                        key=PAGE.key("ndif_distribution"), config=plot_config("glassbox-ndif-next-token"))
    st.subheader("Stage by stage")
    stage = st.segmented_control("Stage", STAGES, label_visibility="collapsed", **PAGE.remembered("stage", STAGES[0]),
                                 help=define("logit", "Each stage of turning the model's scores into the "
                                                      "distribution above."))
    show_stage(stage or STAGES[0], stages, masks, s, [token_label(tok, t) for t in stages.order[:n_bars].tolist()])
    st.subheader("Draw from this distribution")
    draw_panel(logits, s, pos, tok)
    st.info("Generating step by step, the surprise of a text and the hosted comparison run a model once per "
            "token: on this page they run on the models this server runs.", icon=":material/info:")
