"""The Next token page's sampling lab, drawn in the browser (js/sampling_math.js, js/sampling.js): presets, the
temperature / top-k / top-p / min-p sliders, the summary, the distribution and every stage, computed there
from one position's logits.

Sent once per (model, text, position): the whole row of logits as float32, so the browser's softmax(logits / T),
ranks and running totals are the engine's own arithmetic on the same numbers (equal to 1e-6, a test says so).
That is 16 kB for the built-in model's 4,096 tokens, 201 kB for GPT-2's 50,257, 608 kB for Qwen2.5's 151,936:
every vocabulary goes whole, since a top-N cut would make top-p's and min-p's counts at a high temperature a
guess. Besides the numbers, the display forms of the MAX_LABELS likeliest tokens (every bar the page can list:
their order is the logits' own at every temperature) and of the token that follows in the text.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from engine import Trace
from engine.remote import Selective

from .component import Apply, plain, show
from .payload import f32, per_trace

MAX_LABELS = 40  # the most bars the page lists ("Tokens listed in the charts")
FILES = ("sampling_math.js", "sampling_charts.js", "sampling.js")


def payload(trace: Trace | Selective, position: int, label: Callable[[int], str]) -> dict[str, Any]:
    """One position's logits and the labels its bars need (once per trace and position). `trace`: a local
    model's Trace, or an NDIF model's selective trace holding that position's whole logits."""
    def build() -> dict[str, Any]:
        got = trace.final_logits(position) if isinstance(trace, Selective) else trace.logits[position]
        row = got.float()  # [vocab]
        top = torch.argsort(row, descending=True, stable=True)[:MAX_LABELS].tolist()
        actual = trace.ids[position + 1] if position + 1 < len(trace) else None
        ids = top + ([actual] if actual is not None and actual not in top else [])
        return {"logits": f32(row), "labels": {str(i): label(i) for i in ids}, "actual": actual, "position": position}
    return per_trace(trace, ("sampling", position), build)


def show_lab(trace: Trace | Selective, position: int, label: Callable[[int], str], key: str, sel: Mapping[str, Any],
             n_bars: int, options: Mapping[str, Sequence[float]], presets: Mapping[str, Mapping[str, float]],
             preset_help: Mapping[str, str], explain: Mapping[str, str], helps: Mapping[str, str],
             stages: Sequence[str], apply: Apply) -> None:
    """The lab under widget key `key` for the logits at `position`. `sel`: the session's settings (temperature,
    top_k, top_p, min_p, each one of its slider's `options`) and stage; `label(id)`: a token's display form;
    `helps`: glossary help by slider and for "stage" (Markdown); `apply`: the page's callback for settings the
    browser reports."""
    data = {**payload(trace, position, label), "n_bars": n_bars, "options": {k: list(v) for k, v in options.items()},
            "presets": {k: dict(v) for k, v in presets.items()}, "preset_help": dict(preset_help),
            "explain": dict(explain), "help": {k: plain(v) for k, v in helps.items()}, "stages": list(stages)}
    show("sampling", FILES, key, data, sel, apply)
