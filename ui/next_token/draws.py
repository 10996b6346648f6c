"""Drawing from one distribution over and over: single draws with their seeds, N draws as a histogram, and N
whole short continuations.

Shows the seed's pitfalls: greedy gives the same token every time, sampling does not, and the same seed
repeats exactly. Draws come from engine.generation.sampling_lab.draw on engine.generation.sampling's stages,
with no model run; the continuations run the model (engine.generate), only when their button is pressed, so
the pitfall shows on text as well as on one token.
"""
from __future__ import annotations

import html
import secrets

import pandas as pd
import streamlit as st
import torch

from engine import SamplingSettings, display_token, generate, sampling_stages
from engine.generation.sampling_lab import draw, draw_generator

from ..plots import fitted, plot_config
from ..inputs import whole_number
from .controls import describe
from .state import current_settings
from .figures import draws_figure, fmt_prob, token_label
from .state import CONTINUATIONS, DRAW_SEED, DRAWS, FRESH, HIST, N_DRAWS_OPTIONS, PAGE

SEED = DRAW_SEED
N_DRAWS = PAGE.key("n_draws")  # widget key
MAX_KEPT_DRAWS = 50  # single draws remembered per session
N_OPTIONS = N_DRAWS_OPTIONS
N_CONTINUATIONS = PAGE.key("n_continuations")  # widget key
CONTINUATION_OPTIONS = (3, 5, 10)
CONTINUATION_TOKENS = 12  # tokens per continuation: short, so ten of them take well under a second

CSS = (".gb-nt-draws { font-family: ui-monospace, Menlo, Consolas, monospace; line-height: 2.2; }"
       ".gb-nt-draw { display: inline-block; white-space: pre; border: 1.5px solid #333; border-radius: 4px;"
       " padding: 0 0.35em; margin: 0 4px 4px 0; background: #E8F1F8; }"
       ".gb-nt-draw.gb-nt-latest { border-color: #D55E00; border-width: 3px; }")


def _seed() -> int:
    """The seed for the next draw: a fresh random one (shown in the seed box afterwards) or the box's."""
    if st.session_state.get(FRESH, True):
        st.session_state[SEED] = secrets.randbelow(2**31)
    return int(st.session_state.get(SEED, 0))


def _draw_one(logits: torch.Tensor, position: int, tokenizer) -> None:
    s, seed = current_settings(), _seed()  # the settings as the browser last reported them
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


def continuations(model, ids: list[int], s: SamplingSettings, n: int, seed: int, tokenizer,
                  n_tokens: int = CONTINUATION_TOKENS) -> list[str]:
    """N continuations of `ids`, the i-th drawn with its own generator seeded seed + i (engine.generate)."""
    return [tokenizer.decode(generate(model, ids, n_tokens, s, draw_generator(seed + i))) for i in range(n)]


def _continue_many(model, ids: list[int], position: int, tokenizer) -> None:
    s, n, seed = current_settings(), int(st.session_state.get(N_CONTINUATIONS, 5)), _seed()
    st.session_state[CONTINUATIONS] = {"texts": continuations(model, ids, s, n, seed, tokenizer), "seed": seed,
                                       "settings": describe(s), "greedy": s.greedy, "position": position}


def continuations_html(texts: list[str]) -> str:
    """One line per continuation, numbered; text escaped, line breaks shown as ↵."""
    rows = "".join(f'<li><span class="gb-nt-draw">{html.escape(t.replace(chr(10), "↵"))}</span></li>'
                   for t in texts)
    return f'<ol class="gb-nt-draws gb-nt-continuations">{rows}</ol>'


def continuations_panel(model, ids: list[int], position: int, tokenizer) -> None:
    """N whole short continuations from the chosen position with the settings above: greedy writes the same
    text N times, sampling N different ones, and the same seed the same N again."""
    c = st.columns([2.4, 1.1, 3])
    c[0].button(f"Write N continuations of {CONTINUATION_TOKENS} tokens", key=PAGE.key("continue_many"),
                on_click=_continue_many, args=(model, ids, position, tokenizer), width="stretch",
                help="Runs the model: each continuation is drawn token by token with its own seed (the seed box's, "
                     "+1, +2, ...), from the position picked above.")
    c[1].selectbox("Continuations", CONTINUATION_OPTIONS, index=1, key=N_CONTINUATIONS,
                   label_visibility="collapsed", format_func=lambda n: f"N = {n}")
    done = st.session_state.get(CONTINUATIONS)
    if not done:
        return
    texts = done["texts"]
    st.markdown(f"<div>{len(texts)} continuations after position {done['position']} "
                f"({html.escape(done['settings'])}, seeds {done['seed']} to {done['seed'] + len(texts) - 1}):</div>"
                + continuations_html(texts), unsafe_allow_html=True)
    distinct = len(set(texts))
    if done["greedy"]:
        st.caption(f"Greedy (T = 0): all {len(texts)} continuations are the same text, whatever the seeds.")
    else:
        st.caption(f"{distinct} different texts of {len(texts)}. Turn “Fresh seed” off and press again: the same "
                   "seeds write exactly the same texts. Sampling is random only until a seed is fixed.")


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


def draw_panel(logits: torch.Tensor, position: int, tokenizer) -> None:
    """Seed controls, the two draw buttons, the draws so far and the histogram of N draws, with the settings the
    lab above last reported (read when a button is pressed, so a slider just moved counts)."""
    s = current_settings()
    c = st.columns([1.5, 1.3, 1.1, 1.1, 0.8])
    whole_number("Seed", 0, 2**31 - 1, key=SEED, where=c[0],
                 help="The same seed and settings always give the same draws.")
    with c[1]:
        st.session_state.setdefault(FRESH, True)  # a link or a tour step may have turned it off
        st.toggle("Fresh seed", key=FRESH,
                  help="On: a new random seed for every draw (written into the seed box). Off: the box's seed, "
                       "so every draw repeats.")
    c[2].button("Draw one token", key=PAGE.key("draw_one"), on_click=_draw_one,
                args=(logits, position, tokenizer), type="primary", width="stretch")
    c[3].button("Draw N times", key=PAGE.key("draw_many"), on_click=_draw_many, width="stretch",
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
            st.button("Clear draws", key=PAGE.key("clear_draws"), on_click=_clear)
    hist = st.session_state.get(HIST)
    if hist:
        stages = sampling_stages(logits, s)
        drawn = draw(stages, s, hist["n"], hist["seed"])
        labels = {t: token_label(tokenizer, t) for t in set(drawn.tolist()) | set(stages.order[:15].tolist())}
        st.plotly_chart(fitted(draws_figure(drawn, stages, labels)), key=PAGE.key("hist_chart"),
                        config=plot_config("glassbox-draws"))
        distinct = len(set(drawn.tolist()))
        st.caption(f"{hist['n']:,} draws with seed {hist['seed']} gave {distinct:,} different tokens. "
                   "Blue is how often each token came up, grey its probability: with more draws they agree "
                   "more closely. The chart follows the settings above as you move them (same seed).")
