"""Where the model runs: GLASSBOX_DEVICE forces a device, an unavailable one is a clear error, the default
follows what the machine has."""
from __future__ import annotations

import pytest
import torch

from engine import describe, pick_device
from engine.model.device import ENV

NO_ACCELERATOR = not torch.cuda.is_available() and not torch.backends.mps.is_available()


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu\n"])
def test_env_forces_the_cpu(value):
    assert pick_device({ENV: value}) == torch.device("cpu")


def test_env_is_read_from_the_process_environment(monkeypatch):
    monkeypatch.setenv(ENV, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # even where CUDA is there
    assert pick_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:1"])
def test_unavailable_cuda_is_a_clear_error(value):
    with pytest.raises(RuntimeError, match=rf"{ENV}={value} but CUDA is not available on this machine"):
        pick_device({ENV: value})


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has Apple MPS")
def test_unavailable_mps_is_a_clear_error():
    with pytest.raises(RuntimeError, match=f"{ENV}=mps but Apple MPS is not available"):
        pick_device({ENV: "mps"})


def test_unknown_device_name_is_an_error():
    with pytest.raises(RuntimeError, match="banana"):
        pick_device({ENV: "banana"})


@pytest.mark.skipif(not NO_ACCELERATOR, reason="this machine has an accelerator")
def test_default_is_the_cpu_on_this_machine(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert pick_device() == torch.device("cpu")
    assert pick_device({}) == torch.device("cpu")
    assert pick_device({ENV: ""}) == torch.device("cpu")


def test_default_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device({}) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device({}) == torch.device("mps")


def test_describe_the_cpu():
    n = torch.get_num_threads()
    assert describe(torch.device("cpu")) == (f"CPU ({n} threads)" if n > 1 else "CPU (1 thread)")
    assert describe(torch.device("mps")) == "GPU: Apple MPS"
