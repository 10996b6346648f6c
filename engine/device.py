"""Where the model runs: CUDA when available, then Apple MPS, else the CPU; GLASSBOX_DEVICE overrides."""
from __future__ import annotations

import os

import torch

ENV = "GLASSBOX_DEVICE"


def pick_device(env: dict[str, str] | None = None) -> torch.device:
    """The device to use. GLASSBOX_DEVICE=cpu|cuda|cuda:1|mps forces one (an unavailable one is an error)."""
    wanted = (env if env is not None else os.environ).get(ENV, "").strip().lower()
    if wanted:
        dev = torch.device(wanted)
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


def describe(device: torch.device) -> str:
    """A short human label, e.g. 'CPU (2 threads)' or 'GPU: NVIDIA H200'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
