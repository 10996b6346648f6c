"""The Next token page on a model that runs on NDIF: the distribution at one position, every sampling stage and
draws from it, drawn from that position's whole logits, which one request brings back (256 KB for Llama's
128,256 tokens in bf16, the numbers the model computed).

The position is the page's remembered setting; picking another position asks for its logits (one more job,
shared by every session asking the same). The sampling lab is the page's own, drawn in the browser from those
logits (ui/views/sampling.py); draws run here. Generating step by step, scoring a text's surprise and the hosted
comparison run a model many times over; they stay with the models this server runs.
"""
from __future__ import annotations

import streamlit as st

from dataclasses import asdict

from engine import display_token
from engine.model.trace import encode_for_model
from engine.remote import TraceRequest

from ..cache import reading
from ..models import ModelChoice
from ..ndif import figure
from ..text import md
from ..views.sampling import show_lab
from .controls import EXPLAIN, HELP, PRESET_HELP, options, preset_values, settings_applier, snapped
from .draws import draw_panel
from .state import PAGE, POSITION_TEXT, STAGES


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
               f"; every probability below is computed from them, in your browser. The job took {sel.seconds:.1f} s, "
               f"queue and network included. The entropy of the whole distribution, computed on NDIF: "
               f"{figure(float(sel.entropy[pos]), 3, 2)} bits.")
    vocab = cfg.vocab_size
    n_bars = st.slider("Tokens listed in the charts", 5, 40, **PAGE.remembered("bars", 15, range(5, 41)))
    settings = snapped(vocab)
    stage = PAGE.kept("stage", STAGES[0])
    show_lab(sel, pos, lambda i: display_token(tok, i), PAGE.key("ndif_lab"),
             {**asdict(settings), "stage": stage if stage in STAGES else STAGES[0]}, n_bars, options(vocab),
             preset_values(), PRESET_HELP, {f: text.replace("**", "") for f, text in EXPLAIN.items()}, HELP, STAGES,
             settings_applier(vocab, STAGES))
    st.subheader("Draw from this distribution")
    draw_panel(logits, pos, tok)
    st.info("Generating step by step, the surprise of a text and the hosted comparison run a model once per "
            "token: on this page they run on the models this server runs.", icon=":material/info:")
