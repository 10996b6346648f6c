"""Timing shared by the benchmarks: median wall time of functions run in turn, so load drift hits all alike."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def time_in_turn(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                 device: torch.device | None = None, before: Callable[[], object] | None = None
                 ) -> dict[str, float]:
    """Median seconds per call of each function; every repeat runs each function once, in turn. `before`, if
    given, runs untimed before every timed call (e.g. `release_memory`)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if before is not None:
                before()
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def median_s(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds per call of one function."""
    return time_in_turn({"fn": fn}, repeats, warmup)["fn"]


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc's malloc_trim; elsewhere, collection only).

    Every call then starts from the same state and pays for the fresh memory it writes (the page faults of
    first touch). Without it, a function that runs right after another freed a few hundred MB reuses those pages
    warm, and the order of the candidates moves the ratio by 10-20% on a small VM.
    """
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_name = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_name) if _name else None
if _LIBC is not None and not hasattr(_LIBC, "malloc_trim"):  # musl, macOS: no malloc_trim
    _LIBC = None
