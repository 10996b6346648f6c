"""The Attention page's "All heads" view, drawn in the browser (js/attention.js): every head at once, the chosen
head large, its query's line view and the keys it looks at most.

Sent once per (model, text): every head's pattern as float32 (the lower triangles, the only cells a causal
pattern fills: the browser shows the trace's own numbers), the tokens, each head's heuristic label and the
architecture notes. A long text would send megabytes (GPT-2: 144 heads x 240 tokens is 4 million weights), so
the weights sent stay within FULL_CELLS: every head's when they fit, else the chosen layer's, else the chosen
head's alone, with the overview averaged into blocks of at most OVERVIEW_CELLS together (as the Plotly overview
did); picking a head the browser lacks then asks the server for it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from engine import Trace
from engine.inspect.heads import stacked_patterns

from ..patterns import OVERVIEW_CELLS, overview_side
from .component import Apply, plain, show
from .payload import f32, lower_triangles, per_trace

FULL_CELLS = 64_000  # float32 weights sent at once (256 kB): every head's, one layer's or one head's
FILES = ("attention.js",)


def sent_heads(n_layer: int, n_head: int, n: int, layer: int, head: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(layers, heads) whose patterns go to the browser: every head when they fit FULL_CELLS, else the chosen
    layer's heads, else the chosen head alone."""
    tri = n * (n + 1) // 2
    if n_layer * n_head * tri <= FULL_CELLS:
        return tuple(range(n_layer)), tuple(range(n_head))
    if n_head * tri <= FULL_CELLS:
        return (layer,), tuple(range(n_head))
    return (layer,), (head,)


def _overview(patterns: torch.Tensor) -> dict[str, Any]:
    """Every head averaged into side x side blocks (adaptive average pooling, the masked cells counting as 0),
    for a browser that does not have every head's weights."""
    n_layer, n_head, n, _ = patterns.shape
    side = overview_side(n, n_layer * n_head)
    pooled = F.adaptive_avg_pool2d(patterns.float().reshape(-1, 1, n, n), side)  # [L * H, 1, side, side]
    bins = [[i * n // side, -(-(i + 1) * n // side)] for i in range(side)]
    return {"side": side, "bins": bins, "values": f32(pooled)}


def payload(trace: Trace, layers: tuple[int, ...], heads: tuple[int, ...]) -> dict[str, Any]:
    """The numbers of the view for these heads of these layers (computed once per trace and heads)."""
    def build() -> dict[str, Any]:
        patterns = stacked_patterns(trace)  # [layer, head, q, k]
        n_layer, n_head, n, _ = patterns.shape
        every = len(layers) * len(heads) == n_layer * n_head  # then the browser averages the blocks itself
        sent = patterns[list(layers)][:, list(heads)]  # [sent layer, sent head, q, k]
        return {"tokens": list(trace.tokens), "n_layer": n_layer, "n_head": n_head, "layers": list(layers),
                "heads": list(heads), "patterns": f32(lower_triangles(sent)),  # [layer, head, n (n + 1) / 2]
                "overview_side": overview_side(n, n_layer * n_head), "overview": None if every else _overview(patterns)}
    return per_trace(trace, ("attention", layers, heads), build)


def _covers(data: Mapping[str, Any], sel: Mapping[str, Any]) -> bool:
    return sel.get("layer") in data.get("layers", ()) and sel.get("head") in data.get("heads", ())


def show_heads(trace: Trace, key: str, sel: Mapping[str, int], labels: Sequence[tuple[str, str]],
               notes: Mapping[str, Sequence[str]], helps: Mapping[str, str], apply: Apply) -> None:
    """The view under widget key `key`. `sel`: layer, head and query of the session; `labels`: each head's
    (label, reason), layer by layer; `notes`: lines on a head's architecture by "layer,head"; `helps`: the help
    of the layer, head and query pickers (Markdown); `apply`: the page's callback for a view the browser reports
    (keys layer, head, query; checked there)."""
    cfg = trace.config
    layers, heads = sent_heads(cfg.n_layer, cfg.n_head, len(trace), int(sel["layer"]), int(sel["head"]))
    data = {**payload(trace, layers, heads), "labels": [list(x) for x in labels], "notes": dict(notes),
            "help": {k: plain(v) for k, v in helps.items()}}
    show("attention", FILES, key, data, sel, apply, _covers)


__all__ = ["FULL_CELLS", "OVERVIEW_CELLS", "payload", "sent_heads", "show_heads"]
