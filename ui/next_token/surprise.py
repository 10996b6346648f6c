"""Surprise views: a text coloured by how probable the model found each token, the loss per position on a long
text, and what a full context window cuts away. Scores come from engine.inspect.surprise and are cached like traces:
process-wide for the shared model, per session for a session's own model.
"""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from engine import display_token
from engine.inspect.surprise import TextSurprise, text_surprise

from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..server import model_work
from ..state import set_text
from ..text import md
from ..terms import define
from .state import PAGE
from .figures import layout

SHARED_SCORES = 8  # process-wide cache entries (a few KB each)
SESSION_SCORES = 4
_SESSION_CACHE = PAGE.key("scores")  # session key: {(model key, text, stride): TextSurprise}
_SESSION_VIEWS = PAGE.key("surprise_views")  # session key: {(model key, text): SurpriseView}
FLOOR = 1e-4  # probabilities at or below this get the darkest colour
SCALE = "Cividis"
STEPS = 256  # the colour scale sampled once at this many steps (finer than a screen shows), then looked up
SLIDING, FRESH = "#0072B2", "#D55E00"

CSS = "\n".join([
    ".gb-nt-text { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.02rem; line-height: 2.1;"
    " max-height: 26em; overflow-y: auto; padding: 0.3rem 0; }",
    ".gb-nt-tok { white-space: pre; border-radius: 3px; padding: 0.1em 0.05em; margin-right: 1px;"
    " cursor: default; }",
    ".gb-nt-cut { color: #777; text-decoration: line-through; background: #f1f1f1; }",
    ".gb-nt-drawn { outline: 3px solid #D55E00; outline-offset: 1px; font-weight: 700; }",
    ".gb-nt-legend { display: flex; white-space: nowrap; flex-wrap: wrap; align-items: center; gap: 0.6rem;"
    " font-size: 0.9rem; margin: 0.2rem 0 0.6rem; }",
    ".gb-nt-note { font-size: 0.9rem; color: #444; margin-bottom: 0.8rem; }",
    ".gb-nt-bar { width: 16rem; height: 0.9rem; border: 1px solid #666; border-radius: 2px; }",
])

LONG_EXAMPLE = (
    "Once upon a time, there was a little girl named Lily. She lived in a small house near a big forest with her "
    "mom, her dad and her dog Max. Every morning Lily and Max walked to the edge of the forest to look at the "
    "tall trees. One day, Lily saw a red bird sitting on a branch. The bird was singing a happy song. Lily "
    "wanted to hear the song again, so she sat down on the grass and waited.\n\n"
    "Max did not want to wait. He ran into the forest after a squirrel. Lily was scared. \"Max, come back!\" she "
    "called. But Max was gone. Lily took a deep breath and walked into the forest to find him. The trees were "
    "big and the path was dark, but Lily was brave. She followed the sound of barking.\n\n"
    "After a while, Lily found Max next to a little pond. He was wet and muddy, and he was very happy to see "
    "her. Next to the pond sat an old turtle. \"Hello,\" said the turtle. \"Are you lost?\" Lily said, \"No, I "
    "was looking for my dog. Now I found him.\" The turtle smiled. \"Then you should go home before the sun goes "
    "down. The forest is not a good place at night.\"\n\n"
    "Lily thanked the turtle and started to walk back with Max. On the way, they saw the red bird again. It "
    "flew from tree to tree in front of them, as if it wanted to show them the way. Lily followed the bird, "
    "and soon she could see her house. Her mom was standing at the door. \"Where were you?\" asked her mom. "
    "Lily told her about Max, the pond, the old turtle and the red bird. Her mom gave her a big hug.\n\n"
    "That night, Lily gave Max a bath. Max did not like the bath, but he liked the warm towel. Then Lily went "
    "to bed. She looked out of the window at the dark forest and thought about the turtle and the bird. She "
    "was happy that she had been brave. The next morning, Lily and Max walked to the edge of the forest "
    "again. The red bird was there, singing its happy song. This time Lily sat down and listened, and Max sat "
    "next to her and listened too. When the song was over, Lily said, \"Thank you, bird.\" The bird sang one "
    "more note and flew away into the trees.\n\n"
    "From that day on, Lily and Max went to the forest every morning to hear the song. Sometimes they saw the "
    "old turtle by the pond, and Lily told him about her day. The turtle always listened and smiled. Lily "
    "learned that being brave does not mean you are not scared. It means you do the right thing even when "
    "you are scared. And Max learned that squirrels are very fast, and that baths are not so bad after all. "
    "The end."
)


@st.cache_resource(max_entries=SHARED_SCORES, show_spinner="Scoring every token of your text…")
def _shared_surprise(model_key: str, text: str, stride: int | None, _choice: ModelChoice) -> TextSurprise:
    with model_work():
        return text_surprise(_choice.model, _choice.tokenizer, text, stride)


def get_surprise(text: str, choice: ModelChoice, stride: int | None = None) -> TextSurprise:
    """Every token of `text` scored (sliding windows by default; stride = block size restarts the model)."""
    if choice.shared:
        return _shared_surprise(choice.key, text, stride, choice)
    cache: dict = st.session_state.setdefault(_SESSION_CACHE, {})
    key = (choice.key, text, stride)
    if key not in cache:
        with st.spinner("Scoring every token of your text…"), model_work():
            result = text_surprise(choice.model, choice.tokenizer, text, stride)
        while len(cache) >= SESSION_SCORES:
            cache.pop(next(iter(cache)))
        cache[key] = result
    return cache[key]


_STEPPED = sample_colorscale(SCALE, list(np.linspace(0, 1, STEPS)))  # sampling per token cost 0.4 ms each


def prob_colour(p: float) -> tuple[str, str]:
    """(background, text colour) for a probability on a log scale from FLOOR (dark) to 1 (light)."""
    t = (math.log10(max(p, FLOOR)) - math.log10(FLOOR)) / -math.log10(FLOOR)
    return _STEPPED[round(min(1.0, max(0.0, t)) * (STEPS - 1))], ("#fff" if t < 0.55 else "#111")


def legend_html() -> str:
    """The colour scale in words: cividis, log scale, dark = surprising."""
    stops = ", ".join(sample_colorscale(SCALE, list(np.linspace(0, 1, 9))))
    return (f'<div class="gb-nt-legend"><span>≤ {FLOOR:.2%}</span><span class="gb-nt-bar" '
            f'style="background: linear-gradient(to right, {stops});"></span><span>100%</span>'
            f'<span style="color:#555">probability the model gave the token (cividis, log scale: '
            f'dark = surprising)</span></div>')


def _span(text: str, classes: str, title: str, style: str = "") -> str:
    """One token as HTML; its text and title are escaped. A line break shows as ↵ and then breaks."""
    shown = html.escape(text.replace("\n", "↵"))
    br = "<br>" if "\n" in text else ""
    style_attr = f' style="{style}"' if style else ""
    return f'<span class="{classes}" title="{html.escape(title, quote=True)}"{style_attr}>{shown}</span>{br}'


def surprise_html(s: TextSurprise, tokenizer) -> str:
    """The text, each token coloured by its probability, with a hover note on every token."""
    sc = s.scores
    parts = ['<div class="gb-nt-text">']
    for i, tok in enumerate(s.ids):
        p = float(sc.probs[i])
        bg, fg = prob_colour(p)
        raw = display_token(tokenizer, tok, show_whitespace=False)
        title = (f"“{s.tokens[i]}” at position {i}: probability {p:.2%}, surprise {float(sc.bits[i]):.1f} bits\n"
                 f"the model's top guess was “{display_token(tokenizer, int(sc.top_ids[i]))}” "
                 f"(this token ranked {int(sc.rank[i]):,})\nit saw {int(sc.n_context[i])} tokens before it")
        parts.append(_span(raw, "gb-nt-tok", title, f"background:{bg};color:{fg}"))
    parts.append("</div>")
    return "".join(parts)


def surprise_table(s: TextSurprise, tokenizer) -> pd.DataFrame:
    sc = s.scores
    return pd.DataFrame({
        "position": range(len(s.ids)), "token": s.tokens, "id": s.ids,
        "probability": sc.probs.numpy(), "surprise (bits)": sc.bits.numpy(),
        "model's top guess": [display_token(tokenizer, int(t)) for t in sc.top_ids],
        "rank of this token": sc.rank.numpy(), "tokens of history": sc.n_context.numpy(),
    })


def window_html(tokens: Sequence[str], n_cut: int, max_cut_shown: int = 60) -> str:
    """The text's tokens with the ones outside the model's window struck through (the last few of them)."""
    parts = ['<div class="gb-nt-text">']
    if n_cut > max_cut_shown:
        parts.append(f'<span class="gb-nt-tok gb-nt-cut" title="not shown">… {n_cut - max_cut_shown:,} '
                     f'earlier tokens cut …</span> ')
    for i in range(max(0, n_cut - max_cut_shown), len(tokens)):
        cut = i < n_cut
        parts.append(_span(tokens[i], "gb-nt-tok gb-nt-cut" if cut else "gb-nt-tok",
                           f"token {i}: " + ("outside the window, the model never sees it" if cut
                                             else "inside the window")))
    parts.append("</div>")
    return "".join(parts)


def _trailing_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean of each point and the w - 1 before it (fewer at the start)."""
    c = np.cumsum(np.insert(x.astype(np.float64), 0, 0.0))
    end = np.arange(1, len(x) + 1)
    start = np.maximum(0, end - w)
    return (c[end] - c[start]) / (end - start)


def loss_figure(sliding: TextSurprise, fresh: TextSurprise | None, block: int) -> go.Figure:
    """Surprise per position under the two schedules (fresh=None: the text fits in one window, so they are
    the same), smoothed, with how much history each prediction had."""
    n = len(sliding.ids)
    pos = np.arange(n)
    w = max(1, min(32, n // 20))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06)
    schedules = [(sliding, "sliding window (keeps ≥ half a window of history)", SLIDING)]
    if fresh is not None:
        schedules.append((fresh, "fresh start at every window (forgets everything before)", FRESH))
    for s, name, colour in schedules:
        bits = s.scores.bits.numpy()
        fig.add_scatter(x=pos, y=bits, mode="markers", marker=dict(color=colour, size=4, opacity=0.3),
                        showlegend=False, hovertemplate="token %{x}: %{y:.2f} bits<extra></extra>", row=1, col=1)
        fig.add_scatter(x=pos, y=_trailing_mean(bits, w), mode="lines", line=dict(color=colour, width=3),
                        name=name, hovertemplate=f"token %{{x}}: mean of last {w}: %{{y:.2f}} bits<extra></extra>",
                        row=1, col=1)
        fig.add_scatter(x=pos, y=s.scores.n_context.numpy(), mode="lines", line=dict(color=colour, width=2),
                        showlegend=False, hovertemplate="token %{x} saw %{y} tokens<extra></extra>", row=2, col=1)
    for k in range(1, n // block + 1):
        fig.add_vline(x=k * block - 0.5, line_dash="dash", line_color="#444")
    if n >= block:
        fig.add_annotation(x=block - 0.5, y=1.0, yref="paper", text=f"window full ({block:,} tokens)",
                           showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=13))
    fig.update_yaxes(title="surprise (bits)", rangemode="tozero", gridcolor="#e5e5e5", row=1, col=1)
    fig.update_yaxes(title="history", rangemode="tozero", gridcolor="#e5e5e5", row=2, col=1)
    fig.update_xaxes(title="token position in your text", gridcolor="#e5e5e5", row=2, col=1)
    layout(fig, "Surprise per token" + (f" (lines: mean of the last {w})" if w > 1 else ""), height=600)
    return fig


@dataclass(frozen=True)
class SurpriseView:
    """What the section draws from a text's scores, built once per (model, text) like the scores themselves:
    the coloured text and the loss figure (for a story of a few hundred tokens, tens of milliseconds each)."""
    text_html: str
    figure: go.Figure


def _build_view(sliding: TextSurprise, fresh: TextSurprise | None, tokenizer, block: int) -> SurpriseView:
    return SurpriseView(surprise_html(sliding, tokenizer), loss_figure(sliding, fresh, block))


@st.cache_resource(max_entries=SHARED_SCORES, show_spinner=False)
def _shared_view(model_key: str, text: str, _sliding: TextSurprise, _fresh: TextSurprise | None, _tokenizer,
                 block: int) -> SurpriseView:
    # Keyed by (model_key, text, block), as the scores it is built from; the figure is shared read-only
    # (ui.plots.fitted copies it where a session changes it).
    return _build_view(_sliding, _fresh, _tokenizer, block)


def get_view(text: str, choice: ModelChoice, sliding: TextSurprise, fresh: TextSurprise | None) -> SurpriseView:
    block = choice.model.config.block_size
    if choice.shared:
        return _shared_view(choice.key, text, sliding, fresh, choice.tokenizer, block)
    views: dict = st.session_state.setdefault(_SESSION_VIEWS, {})
    key = (choice.key, text)
    if key not in views:
        views.clear()  # one entry: the text on screen
        views[key] = _build_view(sliding, fresh, choice.tokenizer, block)
    return views[key]


def surprise_panel(text: str, choice: ModelChoice) -> None:
    """The surprise section: perplexity, the coloured text, what the window cuts, loss per position."""
    block = choice.model.config.block_size
    sliding = get_surprise(text, choice)
    # Past one window the two schedules differ; within it they are the same computation.
    fresh = get_surprise(text, choice, stride=block) if len(sliding.ids) > block else None
    view = get_view(text, choice, sliding, fresh)
    sc = sliding.scores
    m = st.columns(4)
    m[0].metric("Perplexity", f"{sc.perplexity:,.1f}",
                help=define("perplexity", "Here: exp(mean surprise in nats)."))
    m[1].metric("Mean surprise", f"{float(sc.bits.mean()):.2f} bits", help="per token")
    m[2].metric("Tokens scored", f"{len(sliding.ids):,}")
    worst = int(sc.nll.argmax())
    m[3].metric("Most surprising", md(sliding.tokens[worst]),
                help=f"probability {float(sc.probs[worst]):.3%}")
    st.markdown(legend_html(), unsafe_allow_html=True)
    st.markdown(view.text_html, unsafe_allow_html=True)
    st.caption("Hover a token for its probability, the model's top guess and how much history it saw. "
               f"Tokens past the first {block - 1:,} are scored with a sliding window, so each keeps at least "
               f"{block // 2:,} tokens of history.")
    with st.expander("Every token as a table (download as CSV from its toolbar)"):
        st.dataframe(surprise_table(sliding, choice.tokenizer), hide_index=True)

    st.subheader("Where the model's memory ends")
    room = block - 1  # the first position holds the start marker
    n_cut = max(0, len(sliding.ids) - room)
    if n_cut:
        st.markdown(f"One forward pass reads at most **{block:,} tokens**. Your text has "
                    f"{len(sliding.ids):,}, so a single pass sees the last {room:,} after the start marker; "
                    f"the first {n_cut:,} (struck through) are cut:")
        st.markdown(window_html(sliding.tokens, n_cut), unsafe_allow_html=True)
    else:
        st.markdown(f"Your text has {len(sliding.ids):,} tokens: it fits in the model's window of "
                    f"{block:,}. Paste a longer text, or load an example, to see what happens past it.")
    st.button("Load a long example story", key=PAGE.key("long_example"), on_click=set_text,
              args=(LONG_EXAMPLE,), help="Replaces the text in the box with a story longer than the window.")
    st.plotly_chart(fitted(view.figure), key=PAGE.key("loss"),
                    config=plot_config("glassbox-surprise-per-token"))
    if fresh is None:
        st.caption("Each point is one token's surprise; the lower panel shows how many tokens each prediction "
                   "could see. Past the window (load the long example), a second line shows a model that "
                   "starts afresh at every window.")
    else:
        st.caption("Blue: every prediction keeps between half a window and a full window of history. Orange: the "
                   "model starts afresh at every dashed line and forgets everything before it, as if the text "
                   "began there. Inside the first window the two are the same; after it, the gap between them is "
                   "what the lost history was worth. The lower panel shows how many tokens each prediction saw.")
