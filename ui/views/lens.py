"""The Feed-forward page's logit lens, drawn in the browser (js/lens.js): the final prediction's probability at
every stage and position, each cell's top token, and for the chosen position each stage's top tokens.

Sent once per (model, text, start marker shown or not): the lens's numbers (ui/feedforward/data.py computes it
once per trace) as float32 and int32, and the display form of every token id they name. Picking a position
(a click on a column, the keyboard) redraws the table in the browser and reports the position back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine import Trace
from engine.inspect.lens import Lens

from .component import Apply, plain, show
from .payload import f32, i32, per_trace

FILES = ("lens.js",)
TEXT_CELLS = 20  # positions up to which each cell shows its top token (as ui/feedforward/residual.py)


def payload(trace: Trace, lens: Lens, first: int, label: Callable[[int], str], stage_ticks: Sequence[str]
            ) -> dict[str, Any]:
    """The lens from position `first` on (once per trace and first position)."""
    def build() -> dict[str, Any]:
        top_ids = lens.top_ids[:, first:]  # [stage, pos, k]
        target = lens.target_ids[first:]  # [pos]
        ids = sorted(set(top_ids.flatten().tolist()) | set(target.tolist()))
        return {"stages": list(lens.stages), "ticks": list(stage_ticks), "tokens": list(trace.tokens[first:]),
                "first": first, "k": int(top_ids.shape[-1]), "target_probs": f32(lens.target_probs[:, first:]),
                "target_ranks": i32(lens.target_ranks[:, first:]), "top_ids": i32(top_ids),
                "top_probs": f32(lens.top_probs[:, first:]), "target_ids": i32(target),
                "labels": {str(i): label(i) for i in ids}, "text_cells": TEXT_CELLS}
    return per_trace(trace, ("lens", first), build)


def show_lens(trace: Trace, lens: Lens, first: int, label: Callable[[int], str], stage_ticks: Sequence[str],
              key: str, position: int, help_text: str, apply: Apply) -> None:
    """The lens under widget key `key`; `position` (a trace position, at least `first`) is the one detailed;
    `help_text`: the glossary's help beside it (Markdown); `apply` is the page's callback for a position the
    browser reports ({position}: a trace position)."""
    data = {**payload(trace, lens, first, label, stage_ticks), "help": plain(help_text)}
    show("lens", FILES, key, data, {"position": position}, apply)
