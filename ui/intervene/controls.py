"""Controls and views the Ablation, Steering and Force tabs share: how completions are drawn (temperature,
seed, length), the text the model continues, and a before / after comparison."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from engine import Trace
from engine.generation.sampling import SamplingSettings
from engine.intervene.effects import Effect

from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..text import md
from .data import shown, words
from .figures import moved_figure, runs_figure
from .state import PAGE, remembered

TEMPERATURES = (0.0, 0.3, 0.5, 0.8, 1.0, 1.2)
TOP_K = 50
TOP = 6  # tokens of each distribution listed


@dataclass(frozen=True)
class Drawing:
    settings: SamplingSettings
    seed: int
    n_new: int

    def describe(self) -> str:
        how = "greedy" if self.settings.greedy else f"temperature {self.settings.temperature:g}, top-k {TOP_K}"
        return f"{how}, seed {self.seed}"


def drawing(max_new: int = 40) -> Drawing:
    """Temperature, seed and length of the completions, the same on every tab that writes text."""
    c = st.columns(3)
    temp = c[0].select_slider("Temperature", TEMPERATURES, **remembered("temperature", 0.8, TEMPERATURES),
                              format_func=lambda t: "0 (greedy)" if t == 0 else f"{t:g}",
                              help="0 always takes the most likely token; the others draw with top-k 50.")
    seed = c[1].number_input("Seed", 0, 2**31 - 1, step=1, **remembered("seed", 0),
                             help="The same seed draws the same random numbers with and without the change, so "
                                  "where the texts part is the change, not the dice.")
    n_new = c[2].slider("New tokens", 5, max_new, **remembered("n_new", min(24, max_new)))
    return Drawing(SamplingSettings(temperature=float(temp), top_k=TOP_K), int(seed), int(n_new))


def prompt_ids(trace: Trace) -> list[int]:
    """The text the model continues: the trace's tokens, start marker first."""
    return list(trace.ids)


def compare(choice: ModelChoice, fx: Effect, draw: Drawing, after: str, key: str) -> None:
    """The next token before and after, how it moved, and the two completions side by side."""
    ids = torch.cat([fx.before.topk(TOP).indices, fx.after.topk(TOP).indices]).unique().tolist()
    ids.sort(key=lambda t: -float(fx.before[t] + fx.after[t]))
    fig = runs_figure([shown(choice, t) for t in ids], {"before": [float(fx.before[t]) for t in ids],
                                                         f"after ({after})": [float(fx.after[t]) for t in ids]},
                      "The next token after your text, before and after")
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(fitted(fig), config=plot_config(f"{key}-next-token"), key=PAGE.key(f"{key}_dist"))
    rose, fell = fx.moved()
    with c2:
        if rose or fell:
            moved = moved_figure([(shown(choice, t), v) for t, v in rose], [(shown(choice, t), v) for t, v in fell],
                                 "Which tokens moved most")
            st.plotly_chart(fitted(moved), config=plot_config(f"{key}-moved"), key=PAGE.key(f"{key}_moved"))
        else:
            st.info("No likely token moved: the change does not reach this prediction.")
    st.caption(f"The distribution moved by {fx.kl:.3f} nats (KL divergence, before to after). Listed: the most "
               "likely tokens of either; right, the likely tokens whose log-probability rose most (blue) and fell "
               "most (red).")
    st.markdown(f"**Completions with the same seed** ({draw.describe()}); the one difference: {md(after)}.")
    if fx.room == 0:
        st.info("Your text fills the model's context, so there is no room to write after it: shorten it to compare "
                "completions.", icon=":material/straighten:")
        return
    c1, c2 = st.columns(2)
    c1.code(words(choice, fx.completion_before).strip() or "(nothing: the model ended the story at once)",
            language=None, wrap_lines=True)
    c2.code(words(choice, fx.completion_after).strip() or "(nothing: the model ended the story at once)",
            language=None, wrap_lines=True)
    c1.caption("before")
    c2.caption(f"after: {md(after)}")
