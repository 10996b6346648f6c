"""The Attention page's "All heads" view, drawn in the browser (js/attention.js): every head at once, the chosen
head large, its query's line view and the keys it looks at most.

Sent once per (model, text): every head's pattern as float32 (the lower triangles, the only cells a causal
pattern fills: the browser shows the trace's own numbers), the tokens, each head's heuristic label and the
architecture notes. A long text would send megabytes (GPT-2: 144 heads x 240 tokens is 4 million weights), so
past FULL_CELLS the patterns of the chosen layer go alone, with the overview averaged into blocks as
ui.patterns.overview_figure does; picking another layer then asks the server for it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from engine import Trace
from engine.inspect.heads import stacked_patterns

from ..patterns import OVERVIEW_CELLS, overview_side
from .component import Apply, show
from .payload import f32, lower_triangles, per_trace

FULL_CELLS = 96_000  # float32 weights sent at once: every layer when they fit (384 kB), else one layer's
FILES = ("attention.js",)


def sent_layers(n_layer: int, n_head: int, n: int, layer: int) -> tuple[int, ...]:
    """The layers whose patterns go to the browser: all of them when they fit FULL_CELLS, else `layer` alone."""
    tri = n * (n + 1) // 2
    return tuple(range(n_layer)) if n_layer * n_head * tri <= FULL_CELLS else (layer,)


def _overview(patterns: torch.Tensor) -> dict[str, Any] | None:
    """Every head averaged into side x side blocks, as ui.patterns.overview_figure draws them (None when the
    tiles show every token and the browser has every layer's weights anyway)."""
    n_layer, n_head, n, _ = patterns.shape
    side = overview_side(n, n_layer * n_head)
    pooled = F.adaptive_avg_pool2d(patterns.float().reshape(-1, 1, n, n), side)  # [L * H, 1, side, side]
    bins = [[i * n // side, -(-(i + 1) * n // side)] for i in range(side)]
    return {"side": side, "bins": bins, "values": f32(pooled)}


def payload(trace: Trace, layers: tuple[int, ...]) -> dict[str, Any]:
    """The numbers of the view for these layers (computed once per trace and layers)."""
    def build() -> dict[str, Any]:
        patterns = stacked_patterns(trace)  # [layer, head, q, k]
        n_layer, n_head, n, _ = patterns.shape
        every = len(layers) == n_layer
        tiles_whole = overview_side(n, n_layer * n_head) == n
        return {"tokens": list(trace.tokens), "n_layer": n_layer, "n_head": n_head, "layers": list(layers),
                "patterns": f32(lower_triangles(patterns[list(layers)])),  # [sent layer, head, n (n + 1) / 2]
                "overview": None if every and tiles_whole else _overview(patterns)}
    return per_trace(trace, ("attention", layers), build)


def _covers(data: Mapping[str, Any], sel: Mapping[str, Any]) -> bool:
    return sel.get("layer") in data.get("layers", ())


def show_heads(trace: Trace, key: str, sel: Mapping[str, int], labels: Sequence[tuple[str, str]],
               notes: Mapping[str, Sequence[str]], apply: Apply) -> None:
    """The view under widget key `key`. `sel`: layer, head and query of the session; `labels`: each head's
    (label, reason), layer by layer; `notes`: lines on a head's architecture by "layer,head"; `apply`: the
    page's callback for a view the browser reports (keys layer, head, query; checked there)."""
    cfg = trace.config
    layers = sent_layers(cfg.n_layer, cfg.n_head, len(trace), int(sel["layer"]))
    data = {**payload(trace, layers), "labels": [list(x) for x in labels], "notes": dict(notes)}
    show("attention", FILES, key, data, sel, apply, _covers)


__all__ = ["FULL_CELLS", "OVERVIEW_CELLS", "payload", "sent_layers", "show_heads"]
