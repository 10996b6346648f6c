"""The Next token page: its declaration, its session keys, the canonical sampling settings, and the link settings
that read and write them.

The sampling settings live in one canonical session key (`SETTINGS`) so they survive a visit to another page;
the sliders are drawn in the browser (ui/views/sampling.py), which reports them back (ui.next_token.controls).
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from engine import SamplingSettings
from engine.generation.sampling_lab import RAW

from ..page import Page
from ..state import MAX_CHARS
from ..view import Context, Setting, Unusable, fmt, kept, label, number, position, slug, whole

STAGES = ("① Raw logits", "② ÷ temperature", "③ Filters", "④ Top-p's running total", "⑤ Entropy")
N_DRAWS_OPTIONS = (10, 100, 1_000, 10_000)  # the histogram's N
SEED_MAX = 2**31 - 1  # the seed boxes' range
_LIMITS = {"temperature": (0.0, 10.0), "top_p": (0.01, 1.0), "min_p": (0.0, 1.0)}


def _sampling(name: str, field: str) -> Setting:
    def read(ctx: Context) -> str | None:
        return fmt(getattr(current_settings(), field)) if SETTINGS in st.session_state else None

    def apply(ctx: Context, raw: str) -> None:
        if field == "top_k":
            value = whole(raw, 0, ctx.choice.model.config.vocab_size, "top-k values")
        else:
            value = number(raw, *_LIMITS[field])
        store_settings(replace(current_settings(), **{field: value}))
    return Setting(name, read, apply)


def _read_seed(ctx: Context) -> str | None:
    # A seed says something only when it repeats: the box's seed with "Fresh seed" off, or a histogram's.
    hist = st.session_state.get(HIST)
    if hist is not None:
        return str(hist["seed"])
    if st.session_state.get(FRESH) is False and DRAW_SEED in st.session_state:
        return str(int(st.session_state[DRAW_SEED]))  # the box holds a float (ui.inputs.whole_number)
    return None


def _apply_seed(ctx: Context, raw: str) -> None:
    seed = whole(raw, 0, SEED_MAX, "seeds")
    st.session_state[DRAW_SEED] = seed
    st.session_state[FRESH] = False  # the same draws as the link's, not fresh ones
    if st.session_state.get(RUN_SEED) != seed:
        st.session_state[RUN_SEED] = seed
        st.session_state.pop(RUN, None)  # the generation run starts again with this seed
    hist = st.session_state.get(HIST)
    if hist is not None:
        st.session_state[HIST] = {**hist, "seed": seed}


def _read_draws(ctx: Context) -> str | None:
    hist = st.session_state.get(HIST)
    return None if hist is None else str(hist["n"])


def _apply_draws(ctx: Context, raw: str) -> None:
    n = whole(raw, 1, max(N_DRAWS_OPTIONS), "draw counts")
    if n not in N_DRAWS_OPTIONS:
        raise Unusable(f"draw counts are {', '.join(f'{o:,}' for o in N_DRAWS_OPTIONS)}")
    st.session_state[HIST] = {"n": n, "seed": int(st.session_state.get(DRAW_SEED, 0))}


def _fmt_or_none(value: object) -> str | None:
    return None if value is None else fmt(value)


def _apply_position(ctx: Context, raw: str) -> None:
    PAGE.choose("position", position(ctx, raw))
    # The page starts a new text at its end; this position belongs to this text.
    st.session_state[POSITION_TEXT] = ctx.text[:MAX_CHARS]


PAGE = Page("next_token", "Next token", "pages/4_Next_token.py", ":material/casino:",
            "How probabilities become text: temperature, top-k/top-p/min-p, step-by-step generation, surprise.",
            settings=(Setting("token", lambda ctx: _fmt_or_none(PAGE.kept("position")), _apply_position),
                      _sampling("temp", "temperature"), _sampling("top_k", "top_k"), _sampling("top_p", "top_p"),
                      _sampling("min_p", "min_p"), Setting("seed", _read_seed, _apply_seed),
                      Setting("draws", _read_draws, _apply_draws),
                      kept("stage", lambda ctx, raw: label(raw, STAGES, "stage"), slug)), favicon="🎲", remote=True)

# Session keys (S) and widget keys (W) of the page, all named by PAGE.
POSITION_TEXT = PAGE.key("position_text")  # S: the text the kept position belongs to (a new text starts at its end)
SETTINGS = PAGE.key("settings")  # S: the canonical SamplingSettings
SLIDERS = {field: PAGE.key(field) for field in ("temperature", "top_k", "top_p", "min_p")}  # S: each slider's value
DRAWS = PAGE.key("draws")  # S: list of single draws (dicts), newest last
HIST = PAGE.key("hist")  # S: {"n": ..., "seed": ...} of the histogram shown
DRAW_SEED = PAGE.key("draw_seed")  # W: the draws' seed
FRESH = PAGE.key("fresh_seed")  # W: a new random seed for every draw
CONTINUATIONS = PAGE.key("continuations")  # S: the continuations shown (dict), with their settings
RUN = PAGE.key("run")  # S: the step-by-step generation Run
RUN_SEED = PAGE.key("seed")  # W: the run's seed


def current_settings() -> SamplingSettings:
    """The session's sampling settings (the model as is, until the user changes them)."""
    return st.session_state.setdefault(SETTINGS, RAW)


def store_settings(s: SamplingSettings) -> None:
    """Make `s` the session's settings (the browser's sliders and presets, a link, a tour step)."""
    st.session_state[SETTINGS] = s
    for field, key in SLIDERS.items():
        st.session_state[key] = getattr(s, field)
