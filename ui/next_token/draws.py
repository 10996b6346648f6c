"""Drawing from one distribution over and over: single draws with their seeds, and N draws as a histogram.

Shows the seed's pitfalls: greedy gives the same token every time, sampling does not, and the same seed
repeats exactly. Draws come from engine.generation.sampling_lab.draw on engine.generation.sampling's stages;
no model run.
"""
from __future__ import annotations

import html
import secrets

import pandas as pd
import streamlit as st
import torch

from engine import SamplingSettings, display_token, sampling_stages
from engine.generation.sampling_lab import draw

from ..plots import plot_config
from .controls import describe
from .figures import draws_figure, fmt_prob, token_label

DRAWS = "next_token_draws"  # session key: list of single draws (dicts), newest last
HIST = "next_token_hist"  # session key: {"n": ..., "seed": ...} of the histogram shown
SEED = "next_token_draw_seed"  # widget key
FRESH = "next_token_fresh_seed"  # widget key: a new random seed for every draw
N_DRAWS = "next_token_n_draws"  # widget key
MAX_KEPT_DRAWS = 50  # single draws remembered per session
N_OPTIONS = (10, 100, 1_000, 10_000)

CSS = (".gb-nt-draws { font-family: ui-monospace, Menlo, Consolas, monospace; line-height: 2.2; }"
       ".gb-nt-draw { display: inline-block; white-space: pre; border: 1.5px solid #333; border-radius: 4px;"
       " padding: 0 0.35em; margin: 0 4px 4px 0; background: #E8F1F8; }"
       ".gb-nt-draw.gb-nt-latest { border-color: #D55E00; border-width: 3px; }")


def _seed() -> int:
    """The seed for the next draw: a fresh random one (shown in the seed box afterwards) or the box's."""
    if st.session_state.get(FRESH, True):
        st.session_state[SEED] = secrets.randbelow(2**31)
    return int(st.session_state.get(SEED, 0))


def _draw_one(logits: torch.Tensor, s: SamplingSettings, position: int, tokenizer) -> None:
    seed = _seed()
    stages = sampling_stages(logits, s)
    tok = int(draw(stages, s, 1, seed)[0])
    draws = st.session_state.setdefault(DRAWS, [])
    draws.append({"draw": (draws[-1]["draw"] + 1) if draws else 1, "token": display_token(tokenizer, tok),
                  "id": tok, "probability": float(stages.probs_after[tok]), "seed": seed,
                  "settings": describe(s), "after position": position})
    del draws[:-MAX_KEPT_DRAWS]


def _draw_many() -> None:
    st.session_state[HIST] = {"n": int(st.session_state.get(N_DRAWS, 1_000)), "seed": _seed()}


def _clear() -> None:
    st.session_state.pop(DRAWS, None)
    st.session_state.pop(HIST, None)


def draws_html(draws: list[dict]) -> str:
    """The single draws as chips, newest outlined; every token escaped."""
    parts = ['<div class="gb-nt-draws">']
    for i, d in enumerate(draws):
        latest = " gb-nt-latest" if i == len(draws) - 1 else ""
        title = html.escape(f"draw {d['draw']}: seed {d['seed']}, probability {d['probability']:.2%}, "
                            f"{d['settings']}", quote=True)
        parts.append(f'<span class="gb-nt-draw{latest}" title="{title}">{html.escape(d["token"])}</span>')
    parts.append("</div>")
    return "".join(parts)


def draw_panel(logits: torch.Tensor, s: SamplingSettings, position: int, tokenizer) -> None:
    """Seed controls, the two draw buttons, the draws so far and the histogram of N draws."""
    c = st.columns([1.5, 1.3, 1.1, 1.1, 0.8])
    c[0].number_input("Seed", 0, 2**31 - 1, key=SEED,
                      help="The same seed and settings always give the same draws.")
    with c[1]:
        st.toggle("Fresh seed", value=True, key=FRESH,
                  help="On: a new random seed for every draw (written into the seed box). Off: the box's seed, "
                       "so every draw repeats.")
    c[2].button("Draw one token", key="next_token_draw_one", on_click=_draw_one,
                args=(logits, s, position, tokenizer), type="primary", width="stretch")
    c[3].button("Draw N times", key="next_token_draw_many", on_click=_draw_many, width="stretch",
                help="Draw N tokens independently and compare how often each came up with its probability.")
    c[4].selectbox("N", N_OPTIONS, index=2, key=N_DRAWS, format_func=lambda n: f"{n:,}",
                   label_visibility="collapsed")
    draws = st.session_state.get(DRAWS, [])
    if draws:
        last = draws[-1]
        st.markdown(f'<div>Draw {last["draw"]} (seed {last["seed"]}, {html.escape(last["settings"])}) gave '
                    f'<code class="gb-nt-last-draw">{html.escape(last["token"])}</code>, probability '
                    f'{fmt_prob(last["probability"])}. All your draws, newest last:</div>', unsafe_allow_html=True)
        st.markdown(draws_html(draws), unsafe_allow_html=True)
        repeats = len({d["id"] for d in draws[-5:]}) == 1 and len(draws) >= 2
        if s.greedy:
            st.caption("Greedy (T = 0): every draw is the most likely token, whatever the seed.")
        elif repeats and not st.session_state.get(FRESH, True):
            st.caption("The same seed gives the same draw: a seed makes sampling repeatable, not less random.")
        with st.expander("Your draws as a table (download as CSV from its toolbar)"):
            st.dataframe(pd.DataFrame(draws), hide_index=True)
            st.button("Clear draws", key="next_token_clear_draws", on_click=_clear)
    hist = st.session_state.get(HIST)
    if hist:
        stages = sampling_stages(logits, s)
        drawn = draw(stages, s, hist["n"], hist["seed"])
        labels = {t: token_label(tokenizer, t) for t in set(drawn.tolist()) | set(stages.order[:15].tolist())}
        st.plotly_chart(draws_figure(drawn, stages, labels), key="next_token_hist_chart",
                        config=plot_config("glassbox-draws"))
        distinct = len(set(drawn.tolist()))
        st.caption(f"{hist['n']:,} draws with seed {hist['seed']} gave {distinct:,} different tokens. "
                   "Blue is how often each token came up, grey its probability: with more draws they agree "
                   "more closely. The chart follows the settings above as you move them (same seed).")
