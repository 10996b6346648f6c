"""Where the model runs and on how many CPU threads: CUDA when available, then Apple MPS, else the CPU
(GLASSBOX_DEVICE overrides); background work (training runs, neuron atlases) gets a capped thread count."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping

import torch

from .. import settings

ENV = settings.env_name("device")
THREADS_ENV = settings.env_name("train_threads")
PRECISIONS = ("auto", "fp32", "bf16")  # how training runs its matrix work (TrainConfig.precision)


def _settings(env: Mapping[str, str] | None) -> settings.Settings:
    return settings.current() if env is None else settings.load(env)


def pick_device(env: Mapping[str, str] | None = None) -> torch.device:
    """The device to use. GLASSBOX_DEVICE=cpu|cuda|cuda:1|mps forces one (an unavailable one is an error);
    `env` stands in for the process environment."""
    wanted = _settings(env).device
    if wanted:
        try:
            dev = torch.device(wanted)
        except RuntimeError:
            raise RuntimeError(f"{ENV} must be cpu, cuda, cuda:N or mps, not {wanted[:40]!r}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{ENV}={wanted} but CUDA is not available on this machine")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"{ENV}={wanted} but Apple MPS is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device, threads: int | None = None) -> str:
    """A short human label, e.g. 'CPU (2 threads)' or 'GPU: NVIDIA H200'. `threads`: what the work really runs on
    (default: this thread's torch setting, which a server changes once its thread policy is set)."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    n = torch.get_num_threads() if threads is None else threads
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def train_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step's forward pass runs in: bf16 autocast, or nothing."""
    # bf16 on CUDA halves memory traffic. On the CPU it can pay only where the chip has bf16 matrix units
    # (Intel AMX: 1.2-1.3x for 3.5M-7.4M parameters, a wash for the 1.35M default; bench/bench_train.py)
    # and costs elsewhere, so "auto" keeps the CPU and MPS in float32. Weights, optimizer state and the
    # loss stay float32 either way.
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_threads(env: Mapping[str, str] | None = None) -> int:
    """CPU threads one training run may use: half the cores (one on a 2-core machine), so pages of other
    users stay responsive while it trains. GLASSBOX_TRAIN_THREADS overrides."""
    return _settings(env).train_threads


_threads_lock = threading.Lock()


def cap_threads(n: int) -> None:
    """Limit torch's CPU threads for the calling thread only.

    With OpenMP, `torch.set_num_threads` sets the calling thread's count (OpenMP and MKL keep it per thread)
    and also the process default that threads created later start from. So the default is put back right
    away, from a short-lived helper thread, leaving every other page's threads at the machine's default.
    """
    with _threads_lock:
        before = torch.get_num_threads()  # in a fresh thread: the process default (and this thread is now set up)
        torch.set_num_threads(n)
        if before != n:
            helper = threading.Thread(target=torch.set_num_threads, args=(before,), name="glassbox-threads")
            helper.start()
            helper.join()
