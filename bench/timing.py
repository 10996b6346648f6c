"""Timing shared by the benchmarks: median wall time of functions run in turn, so load drift hits all alike."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def time_in_turn(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                 device: torch.device | None = None) -> dict[str, float]:
    """Median seconds per call of each function; every repeat runs each function once, in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def median_s(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds per call of one function."""
    return time_in_turn({"fn": fn}, repeats, warmup)["fn"]
