"""The sampling controls' options, presets and words: the temperature, top-k, top-p and min-p sliders are drawn
in the browser (ui/views/sampling.py), which reports the settings back to `settings_applier`.

The settings live in one canonical session key (ui.next_token.state.SETTINGS) so they survive a visit to
another page; links, presets, the tour and the browser's sliders all write it through `store_settings`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from engine import SamplingSettings
from engine.generation.sampling_lab import GREEDY, PRESETS, RAW

from ..terms import define
from .state import PAGE, current_settings, store_settings

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


HELP = {"temperature": define("temperature"), "top_k": define("top-k top-p"), "top_p": define("top-k top-p"),
        "stage": define("logit", "Each stage of turning the model's scores into the distribution above.")}


def top_k_options(vocab_size: int) -> tuple[int, ...]:
    return tuple(k for k in _TOP_KS if k <= vocab_size)


def _nearest(value: float, options: tuple) -> float:
    return min(options, key=lambda o: abs(o - value))


def snapped(vocab_size: int) -> SamplingSettings:
    """The session's settings snapped to the options the sliders offer for this model (a link or a preset may
    hold a value between them); kept so."""
    s = current_settings()
    near = SamplingSettings(temperature=_nearest(s.temperature, TEMPERATURES),
                            top_k=int(_nearest(s.top_k, top_k_options(vocab_size))),
                            top_p=_nearest(s.top_p, TOP_PS), min_p=_nearest(s.min_p, MIN_PS))
    store_settings(near)  # the sliders' keys too, for links and the tour
    return near


def options(vocab_size: int) -> dict[str, tuple]:
    """Each slider's options (the browser's sliders step through these)."""
    return {"temperature": TEMPERATURES, "top_k": top_k_options(vocab_size), "top_p": TOP_PS, "min_p": MIN_PS}


def settings_applier(vocab_size: int, stages: tuple[str, ...]) -> Callable[[Mapping[str, Any]], None]:
    """The callback for settings the browser reports ({temperature, top_k, top_p, min_p, stage}): each must be
    one of its slider's options (a hand-made message can say anything); a value that is not keeps the old one."""
    allowed = options(vocab_size)

    def apply(view: Mapping[str, Any]) -> None:
        s = current_settings()
        fields = {f: (int if f == "top_k" else float)(view[f]) for f in allowed
                  if f in view and not isinstance(view[f], bool) and view[f] in allowed[f]}
        store_settings(replace(s, **fields))
        if view.get("stage") in stages:
            PAGE.choose("stage", view["stage"])
    return apply


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


def preset_values() -> dict[str, dict[str, float]]:
    """The presets as the browser takes them."""
    return {name: asdict(p) for name, p in ALL_PRESETS.items()}
