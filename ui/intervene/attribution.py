"""The Which tokens mattered tab: for one output token, each input token's effect by leave-one-out and by
gradient x input, drawn over the text, with where the two methods disagree marked, not averaged away."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from engine import Trace
from engine.intervene.attribution import attribute

from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..text import csv_text, md
from .data import kept, shown
from .figures import heat_html, scores_figure
from .state import PAGE, remembered

FAR = 0.5  # normalised scores this far apart (of 2) are marked as a disagreement
CANDIDATES = 5
METHODS = ("leave-one-out", "gradient × input")
NOTES = """**What this shows.** Leave-one-out is an experiment: each token is removed and the model run again,
and the bar is how much the output's log-probability fell (red: it rose, the token was working against it).
Gradient × input is a first-order estimate from one backward pass: how fast the log-probability changes as the
token's embedding is scaled, at the embedding it has.

**What it does not show.** Neither is "why" the model chose the token. Removing a token also moves every later
token one position back, and a token can matter through routes that cancel; the gradient sees only the local
slope, so where a token's effect saturates or interacts with another, the two methods part. Where they
disagree (underlined), trust neither alone."""


def _output(choice: ModelChoice, trace: Trace) -> tuple[int, int]:
    """(the position the prediction is made at, the output token id), as the reader picks them."""
    n = len(trace)
    outputs = list(range(1, n + 1))  # a token of the text, or n: the token after it

    def fmt(i: int) -> str:
        return "the next token, after your text" if i == n else f"{i}: {trace.tokens[i]}"
    out = st.selectbox("Output token", outputs, format_func=fmt, **remembered("output", n, outputs),
                       help="The token whose prediction is explained: one of your text's (as the model predicted it "
                            "from the tokens before), or one it might write next.")
    if out < n:
        return out - 1, trace.ids[out]
    probs = trace.probs(-1)
    top = probs.topk(CANDIDATES).indices.tolist()
    key = PAGE.key("next_target")
    if st.session_state.get(key) not in top:
        st.session_state.pop(key, None)
    target = st.selectbox("Which next token", top, key=key,
                          format_func=lambda t: f"{shown(choice, t)}  ({float(probs[t]):.1%})")
    return n - 1, int(target)


def attribution_tab(choice: ModelChoice, trace: Trace) -> None:
    st.markdown("Which tokens of your text did one output depend on? Two ways to ask, side by side.")
    position, target = _output(choice, trace)
    if position < 1:
        st.info("Pick an output token with at least one token of your text before it.", icon=":material/info:")
        return
    ids = list(trace.ids[:position + 1])
    att = kept(choice, ("attribution", tuple(ids), target), lambda: attribute(choice.model, ids, position, target),
               "Leaving each token out in turn…")
    loo, gxi = (x.tolist() for x in att.normalised())
    gap = att.disagreement().tolist()
    far = [g > FAR for g in gap] + [False]
    tokens = list(trace.tokens[1:position + 1])
    out = shown(choice, target)
    raw = list(zip(att.leave_one_out.tolist(), att.grad_x_input.tolist()))
    titles = [f"position {i + 1}: leave-one-out {a:+.3f} nats, gradient × input {g:+.3f}" for i, (a, g) in
              enumerate(raw)] + ["the output token"]
    st.markdown(f"The model gives **{md(out)}** a probability of **{math.exp(att.logprob):.1%}** here.")
    for name, scores in zip(METHODS, (loo, gxi)):
        st.html(f"<b>{name}</b>" + heat_html([*tokens, out], scores, titles, [len(tokens)], far))
    st.caption("Blue: the token made the output more likely; red: less; each row scaled to its own largest effect. "
               "Outlined: the output token. Underlined: where the two methods disagree most.")
    fig = scores_figure(tokens, loo, gxi, METHODS, f"Each input token's effect on “{out}”, by two methods")
    st.plotly_chart(fitted(fig), config=plot_config("token-attribution"), key=PAGE.key("attribution_chart"))
    rho = att.agreement()
    if rho is not None:
        verdict = "mostly agree on" if rho >= 0.7 else "partly agree on" if rho >= 0.3 else "disagree about"
        st.markdown(f"The two methods **{verdict}** the order of the tokens (Spearman's rank correlation "
                    f"{rho:+.2f}; 1 is the same order).")
    worst = sorted(range(len(gap)), key=lambda i: -gap[i])[:3]
    parts = [f"“{md(tokens[i])}” (leave-one-out {loo[i]:+.2f}, gradient × input {gxi[i]:+.2f})"
             for i in worst if gap[i] > FAR]
    if parts:
        st.markdown("Where they part most: " + "; ".join(parts) + ".")
    frame = pd.DataFrame({"position": att.positions, "token": [csv_text(t) for t in tokens],
                          "leave-one-out (nats)": [a for a, _ in raw], "gradient x input": [g for _, g in raw]})
    st.download_button("Both scores (CSV)", frame.to_csv(index=False), "glassbox-token-attribution.csv", "text/csv",
                       key=PAGE.key("attribution_csv"), icon=":material/download:")
    st.markdown(NOTES)
