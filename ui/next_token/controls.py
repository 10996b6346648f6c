"""The sampling controls: temperature, top-k, top-p and min-p sliders, presets, a plain line on each.

The settings live in one canonical session key (ui.next_token.state.SETTINGS) so they survive a visit to
another page; each slider is filled from it before it is drawn and copies its value back on change.
"""
from __future__ import annotations

import streamlit as st

from engine import SamplingSettings
from engine.generation.sampling_lab import GREEDY, PRESETS, RAW

from ..terms import define
from .state import PAGE, SETTINGS, SLIDERS, current_settings, store_settings

# Finer steps where small changes matter (near 0 and around 1), coarser up to 10.
TEMPERATURES = (0.0, 0.01, 0.02, 0.05, *(round(0.1 * i, 1) for i in range(1, 21)), 2.5, 3.0, 4.0, 5.0, 6.0, 7.0,
                8.0, 9.0, 10.0)
TOP_PS = (*(round(0.01 * i, 2) for i in range(1, 100)), 1.0)
MIN_PS = tuple(round(0.01 * i, 2) for i in range(0, 101))
_TOP_KS = (0, *range(1, 21), 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)

ALL_PRESETS = {"precise": PRESETS["precise"], "balanced": PRESETS["balanced"], "creative": PRESETS["creative"],
               "model as is": RAW, "greedy": GREEDY}
PRESET_HELP = {
    "precise": "Low temperature and tight filters: the likeliest tokens, nearly the same text every time.",
    "balanced": "Close to the model's own odds, with the long tail of very unlikely tokens cut off.",
    "creative": "A flatter distribution: surprising choices, min-p still drops the wildest ones.",
    "model as is": "T = 1 and no filters: exactly the probabilities the model computed.",
    "greedy": "T = 0: always the single most likely token. No randomness at all.",
}
EXPLAIN = {
    "temperature": "Divides every logit by T before they become probabilities. Below 1 sharpens the odds "
                   "(favourites win more often), above 1 flattens them (long shots get a chance). "
                   "**0 = greedy**: always the top token.",
    "top_k": "Keeps only the k most likely tokens and drops the rest. **Off** = no limit.",
    "top_p": "Keeps the most likely tokens until together they hold p of the probability (the 'nucleus'). "
             "Few tokens when the model is sure, many when it is not. **1.00 = off**.",
    "min_p": "Drops every token less likely than min-p × the favourite's probability: 0.10 drops anything "
             "under a tenth of the top token. **0 = off**.",
}


def top_k_options(vocab_size: int) -> tuple[int, ...]:
    return tuple(k for k in _TOP_KS if k <= vocab_size)


def _nearest(value: float, options: tuple) -> float:
    return min(options, key=lambda o: abs(o - value))


def _from_widgets() -> None:
    st.session_state[SETTINGS] = SamplingSettings(**{f: st.session_state[k] for f, k in SLIDERS.items()})


def _fill_widgets(vocab_size: int) -> None:
    """Put the canonical settings into the widgets, snapped to the options this model offers."""
    s = current_settings()
    snapped = SamplingSettings(temperature=_nearest(s.temperature, TEMPERATURES),
                               top_k=int(_nearest(s.top_k, top_k_options(vocab_size))),
                               top_p=_nearest(s.top_p, TOP_PS), min_p=_nearest(s.min_p, MIN_PS))
    if snapped != s:
        st.session_state[SETTINGS] = snapped
    for field, key in SLIDERS.items():
        if st.session_state.get(key) != getattr(snapped, field):
            st.session_state[key] = getattr(snapped, field)


def preset_buttons() -> None:
    """One button per preset; the one matching the current settings is highlighted."""
    s = current_settings()
    st.markdown("**Presets**")
    cols = st.columns(len(ALL_PRESETS))
    for col, (name, preset) in zip(cols, ALL_PRESETS.items()):
        col.button(name.capitalize(), key=PAGE.key(f"preset_{name.replace(' ', '_')}"), help=PRESET_HELP[name],
                   type="primary" if s == preset else "secondary", on_click=store_settings, args=(preset,),
                   width="stretch")


def settings_controls(vocab_size: int) -> SamplingSettings:
    """The four sliders, each with a plain explanation (presets are separate: `preset_buttons`)."""
    _fill_widgets(vocab_size)
    st.select_slider("Temperature", TEMPERATURES, key=SLIDERS["temperature"], on_change=_from_widgets,
                     help=define("temperature"),
                     format_func=lambda t: "0 · greedy" if t == 0 else f"{t:g}")
    st.caption(EXPLAIN["temperature"])
    greedy = st.session_state[SLIDERS["temperature"]] == 0
    st.select_slider("Top-k", top_k_options(vocab_size), key=SLIDERS["top_k"], on_change=_from_widgets,
                     help=define("top-k top-p"),
                     format_func=lambda k: "off" if k == 0 else str(k), disabled=greedy)
    st.caption(EXPLAIN["top_k"])
    st.select_slider("Top-p", TOP_PS, key=SLIDERS["top_p"], on_change=_from_widgets, help=define("top-k top-p"),
                     format_func=lambda p: "1.00 · off" if p >= 1 else f"{p:.2f}", disabled=greedy)
    st.caption(EXPLAIN["top_p"])
    st.select_slider("Min-p", MIN_PS, key=SLIDERS["min_p"], on_change=_from_widgets,
                     format_func=lambda p: "0 · off" if p == 0 else f"{p:.2f}", disabled=greedy)
    st.caption(EXPLAIN["min_p"])
    if greedy:
        st.caption("With T = 0 the filters have nothing to do: only the top token is left.")
    return current_settings()


def describe(s: SamplingSettings) -> str:
    """The settings in a few words, e.g. 'T 0.8 · top-p 0.95 · min-p 0.05'."""
    if s.greedy:
        return "greedy (T 0)"
    parts = [f"T {s.temperature:g}"]
    if s.top_k:
        parts.append(f"top-k {s.top_k}")
    if s.top_p < 1:
        parts.append(f"top-p {s.top_p:g}")
    if s.min_p > 0:
        parts.append(f"min-p {s.min_p:g}")
    return " · ".join(parts)
