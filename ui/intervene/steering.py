"""The Steering tab: a direction from two small sets of prompts, added to the residual stream at one layer with
a strength slider; the default and steered completions side by side with the same seed, how the next token
moved, and a sweep of strengths that shows where the text stops being English."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import Trace
from engine.intervene.effects import completion, effect
from engine.intervene.examples import STEERING_SETS
from engine.intervene.steering import MAX_PROMPTS, SteeringVector, steering_edits, steering_vector
from engine.model.tokenizer import start_id

from ..models import ModelChoice
from ..terms import define
from ..text import md
from .controls import Drawing, compare, drawing, prompt_ids
from .data import kept, peek, words
from .state import MAX_STRENGTH, OWN_SETS, PAGE, remembered

SWEEP = (0.0, 2.0, 5.0, 10.0, 20.0, 40.0)
SWAMPED = 1.0  # an added vector longer than the residual stream itself drowns what the model computed
NOTES = """**What this shows.** That a direction found from a handful of examples changes what the model writes,
from the layer it is added at onwards: the model reads the nudge as if the text were more like set A.

**What it does not show.** That the model has a "happiness feature" at that spot: the mean difference holds
everything the two sets differ in (their words, their length, their topics), and it is added at every position
whatever the text says. At high strength the vector is longer than the residual stream it is added to, and the
model no longer writes grammatical text: push the slider to 20 or 40, or run the sweep below."""


def _sets() -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = [*STEERING_SETS, OWN_SETS]
    name = st.selectbox("Direction", names, **remembered("set", names[0], names),
                        help="The mean activation over set A's prompts minus the mean over set B's.")
    if name != OWN_SETS:
        a, b = STEERING_SETS[name]
        with st.expander("The two sets of prompts"):
            c1, c2 = st.columns(2)
            c1.markdown("**A**\n\n" + "\n".join(f"- {md(t)}" for t in a))
            c2.markdown("**B**\n\n" + "\n".join(f"- {md(t)}" for t in b))
        return a, b
    first = next(iter(STEERING_SETS.values()))
    c1, c2 = st.columns(2)
    a = c1.text_area(f"Set A (one prompt a line, at most {MAX_PROMPTS})", height=160,
                     **remembered("set_a", "\n".join(first[0])))
    b = c2.text_area("Set B", height=160, **remembered("set_b", "\n".join(first[1])))
    return tuple(a.splitlines()), tuple(b.splitlines())


def _sweep(choice: ModelChoice, sv: SteeringVector, ids: list[int], draw: Drawing, sign: float) -> pd.DataFrame:
    stop = start_id(choice.tokenizer)
    rows = []
    for s in SWEEP:
        strength = sign * s
        new = completion(choice.model, ids, draw.n_new, draw.settings, draw.seed,
                         steering_edits(sv, strength) if s else None, stop_id=stop)
        rows.append({"strength": strength, "vector ÷ residual stream": round(sv.relative(strength), 2),
                     "completion": words(choice, new).strip()})
    return pd.DataFrame(rows)


def steering_tab(choice: ModelChoice, trace: Trace) -> None:
    st.markdown("Add a direction to the residual stream at one layer, at every position, and let the model write.",
                help=define("steering vector"))
    a, b = _sets()
    cfg = choice.model.config
    c1, c2 = st.columns([1, 3])
    layers = range(cfg.n_layer)
    layer = c1.selectbox("Layer", layers, **remembered("steer_layer", min(2, cfg.n_layer - 1), layers),
                         help="Where the direction is measured and added: the residual stream entering this layer.")
    strength = c2.slider("Strength", -MAX_STRENGTH, MAX_STRENGTH, step=0.5, **remembered("strength", 4.0),
                         help="How many times the direction is added; negative pushes towards set B.")
    draw = drawing()
    sv = kept(choice, ("steer-vector", a, b, int(layer)),
              lambda: steering_vector(choice.model, choice.tokenizer, a, b, int(layer)), "Measuring the direction…")
    ratio = sv.relative(strength)
    st.caption(f"The added vector is {ratio:.2f}× the typical length of the residual stream entering layer {layer} "
               f"(the direction itself is {sv.norm:.2f} long, the stream {sv.resid_norm:.2f}).")
    if ratio > SWAMPED:
        st.warning("At this strength the added vector is longer than the residual stream it is added to: expect "
                   "the model to lose its grammar.", icon=":material/warning:")
    ids = prompt_ids(trace)
    fx = kept(choice, ("steer", a, b, int(layer), float(strength), tuple(ids), draw),
              lambda: effect(choice.model, choice.tokenizer, ids, steering_edits(sv, float(strength)), draw.n_new,
                             draw.settings, draw.seed), "Writing with and without the nudge…")
    compare(choice, fx, draw, f"steering at strength {strength:g}", "steering")
    sign = -1.0 if strength < 0 else 1.0
    key = ("sweep", a, b, int(layer), sign, tuple(ids), draw)
    pressed = st.button("Sweep the strength", key=PAGE.key("sweep"), icon=":material/tune:",
                        help=f"Completions at strengths {', '.join(f'{s:g}' for s in SWEEP)} (same seed).")
    if pressed or peek(choice, key) is not None:
        frame = kept(choice, key, lambda: _sweep(choice, sv, ids, draw, sign), "Writing at each strength…")
        st.dataframe(frame, hide_index=True, width="stretch", key=PAGE.key("sweep_table"))
    st.markdown(NOTES)
