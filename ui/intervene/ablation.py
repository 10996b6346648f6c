"""The Ablation tab: switch off a head, a whole MLP layer or one neuron (set to zero or to its mean) and compare
the next token, a completion with the same seed, and the loss on a held-out story, before and after."""
from __future__ import annotations

import streamlit as st

from engine import Trace
from engine.intervene.ablation import HEAD, MEAN, MLP, NEURON, Ablation, ablation_edits, reference_means
from engine.intervene.effects import effect, heldout_ids
from engine.intervene.examples import HELDOUT_STORY

from ..models import ModelChoice
from ..terms import define
from .controls import compare, drawing, prompt_ids
from .data import kept
from .state import MODES, PARTS, remembered

PART_WORDS = {HEAD: "an attention head", MLP: "a whole MLP layer", NEURON: "one neuron"}
MODE_WORDS = {"zero": "set to zero", MEAN: "set to its mean"}
HELD = ("The held-out story", "Your text")
NOTES = """**What this shows.** What the model does without that part, on this text and on a story it never saw:
a part whose loss of function costs a lot was doing work the rest of the model did not make up for.

**What it does not show.** A part whose ablation changes nothing may still matter: another part can take over
(models trained with dropout often have backups). A large change does not mean the part "stores" what was
lost; zeroing can push the model somewhere it has never been, which is why mean ablation, which keeps the
part's usual contribution and removes only what it says about this text, is often the fairer test."""


def _ablation(choice: ModelChoice) -> Ablation:
    cfg = choice.model.config
    c = st.columns([1.4, 1, 1, 1.2])
    part = c[0].radio("Switch off", PARTS, format_func=PART_WORDS.get, **remembered("part", HEAD, PARTS))
    layers = range(cfg.n_layer)
    layer = c[1].selectbox("Layer", layers, **remembered("layer", 0, layers))
    index = None
    if part == HEAD:
        heads = range(cfg.n_head)
        index = c[2].selectbox("Head", heads, help=define("attention head"), **remembered("head", 0, heads))
    elif part == NEURON:
        index = c[2].number_input("Neuron", 0, cfg.d_mlp - 1, step=1, help=define("neuron"),
                                  **remembered("neuron", 0, range(cfg.d_mlp)))
    mode = c[3].radio("How", MODES, format_func=MODE_WORDS.get, **remembered("mode", "zero", MODES),
                      help="Zero: the part outputs nothing. Mean: its average over the held-out story, at every "
                           "position: what it usually says, without what it says about this text.")
    return Ablation(part, int(layer), None if index is None else int(index), mode)


def ablation_tab(choice: ModelChoice, trace: Trace) -> None:
    st.markdown("Switch one part of the model off and run it again: the next token, a completion with the same "
                "seed and the loss on a held-out story, with and without it.", help=define("ablation"))
    ab = _ablation(choice)
    ab.check(choice.model.config)
    draw = drawing()
    which = st.radio("Loss measured on", HELD, horizontal=True, **remembered("held", HELD[0], HELD),
                     help="The held-out story was written for Glassbox; no model here was trained on it.")
    held_text = HELDOUT_STORY if which == HELD[0] else trace.text
    held, cut = heldout_ids(choice.tokenizer, held_text, choice.model.config.block_size)
    ids = prompt_ids(trace)

    def run():
        means = reference_means(choice.model, heldout_ids(choice.tokenizer, HELDOUT_STORY,
                                                          choice.model.config.block_size)[0], [ab.name]) \
            if ab.mode == MEAN else None
        return effect(choice.model, choice.tokenizer, ids, ablation_edits(ab, means), draw.n_new, draw.settings,
                      draw.seed, held)
    fx = kept(choice, ("ablate", tuple(ids), ab, draw, tuple(held)), run, "Running the model with and without it…")
    if fx.loss_before is not None:
        c = st.columns(3)
        c[0].metric("Loss without the change", f"{fx.loss_before:.3f}", help="Mean cross-entropy, nats per token")
        c[1].metric(f"Loss with {ab.describe()}", f"{fx.loss_after:.3f}", f"{fx.loss_after - fx.loss_before:+.3f}",
                    delta_color="inverse")
        c[2].metric("Held-out tokens", f"{len(held) - 1:,}")
        if cut:
            st.caption(f"The model's context holds the last {len(held) - 1:,} tokens of the text; "
                       f"{cut:,} before them are left out.")
    compare(choice, fx, draw, ab.describe(), "ablation")
    with st.expander("The held-out story"):
        st.text(HELDOUT_STORY)
    st.markdown(NOTES)
