"""What the Train page can measure for the tour to quote (ui.view.Fact): the built-in model's strongest induction
and previous-token heads (the figures the time-lapse draws beside a run's), and, once this session has trained a
model, when an induction head appeared in it.
"""
from __future__ import annotations

import streamlit as st

from engine.inspect.heads import INDUCTION_MIN

from ..view import FOUND, Context
from .circuits import builtin_scores, run_history, verdict
from .run import RUN
from .state import PAGE


@PAGE.fact("circuits", ("name", "layer", "head", "score", "prev_layer", "prev_head", "prev", "threshold", "yours"))
def circuits(ctx: Context) -> dict[str, object]:
    choice, builtin = builtin_scores()
    score, layer, head = builtin.best("induction")
    prev, p_layer, p_head = builtin.best("previous")
    run = st.session_state.get(RUN)
    if run is not None and run.model is not None and len(run.snapshots()) >= 2:
        yours = "In the model you trained here: " + verdict(run_history(run), run.spec.model.n_layer)
    else:
        yours = ("Train a model on this page (the tiny preset takes about half a minute) and the time-lapse marks "
                 "the step where yours forms one, if it does.")
    return {FOUND: score >= INDUCTION_MIN, "name": choice.name, "layer": layer, "head": head, "score": f"{score:.2f}",
            "prev_layer": p_layer, "prev_head": p_head, "prev": f"{prev:.0%}", "threshold": f"{INDUCTION_MIN:.1f}",
            "yours": yours}
