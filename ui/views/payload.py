"""What a view sends to the browser: numbers as base64 of little-endian typed arrays (float32, int32), not
per-cell strings, built once per trace and view.

A payload is a pure function of a trace (and a few view options, such as the layers a long text sends), so it
is kept beside the trace it came from (`per_trace`): a shared trace (the built-in model's, the server models')
is shared by every session that types the same text, and so is its payload. Entries go when their trace does.
"""
from __future__ import annotations

import base64
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")
_lock = threading.Lock()
_memo: dict[int, tuple[weakref.ref, dict[Hashable, Any]]] = {}  # id(trace) -> (the trace, {view key: payload})


def f32(values: np.ndarray | torch.Tensor) -> str:
    """float32 values, flattened in C order, as base64 (the browser reads them as a Float32Array)."""
    a = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def i32(values: np.ndarray | torch.Tensor) -> str:
    """int32 values, flattened in C order, as base64 (an Int32Array in the browser)."""
    a = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return base64.b64encode(np.ascontiguousarray(a, dtype="<i4").tobytes()).decode("ascii")


def lower_triangles(patterns: torch.Tensor) -> np.ndarray:
    """[..., n, n] -> [..., n (n + 1) / 2]: each matrix's lower triangle row by row (row q holds keys 0..q), the
    only cells a causal pattern can fill. Half the bytes of the square."""
    n = patterns.shape[-1]
    q, k = np.tril_indices(n)
    return patterns.detach().float().cpu().numpy()[..., q, k]


def per_trace(trace: object, key: Hashable, build: Callable[[], T]) -> T:
    """`build()`, computed once per (trace object, key) while the trace lives."""
    ident = id(trace)
    with _lock:
        hit = _memo.get(ident)
        if hit is not None and hit[0]() is trace and key in hit[1]:
            return hit[1][key]
    value = build()  # outside the lock: two sessions may build the same payload once each, never block each other
    with _lock:
        hit = _memo.get(ident)
        if hit is None or hit[0]() is not trace:
            hit = (weakref.ref(trace, lambda _ref, ident=ident: _forget(ident)), {})
            _memo[ident] = hit
        hit[1][key] = value
    return value


def _forget(ident: int) -> None:
    with _lock:
        hit = _memo.get(ident)
        if hit is not None and hit[0]() is None:
            del _memo[ident]
