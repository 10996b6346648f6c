"""The Train page's time estimate: the same settings give the same estimate, a busy moment never makes it worse,
and the arithmetic from one measured step to a whole run is the documented one (README, "Training a model")."""
from __future__ import annotations

import torch

from engine import GPTConfig
from engine.train.budget import StepTimes, estimate_run_seconds, measure_step_seconds

CFG = GPTConfig(block_size=32, vocab_size=64, n_layer=1, n_head=2, n_embd=16)


def test_the_run_is_its_steps_plus_a_third_of_a_step_per_held_out_batch_plus_its_samples() -> None:
    # 100 steps of 0.5 s; 11 evaluations of 4 batches at a third of a step; 5 snapshots of 40 sampled tokens at 2 ms
    assert estimate_run_seconds(0.5, 100, 11, 4, 5, 40) == 100 * 0.5 + 11 * 4 * 0.5 / 3 + 5 * 40 * 0.002


def test_the_same_settings_keep_the_fastest_time_seen() -> None:
    times = iter([0.2, 1.0, 0.1])  # quiet, then a busy moment, then quieter still
    timer = StepTimes(lambda *a: next(times), refresh_s=0.0)  # every ask measures again
    device = torch.device("cpu")
    assert timer.seconds(CFG, 8, device, 1) == 0.2
    assert timer.seconds(CFG, 8, device, 1) == 0.2  # the busy 1.0 s is not kept
    assert timer.seconds(CFG, 8, device, 1) == 0.1


def test_a_fresh_measurement_is_reused_until_it_is_old() -> None:
    calls = []
    timer = StepTimes(lambda *a: calls.append(a) or 0.3, refresh_s=3600.0)
    device = torch.device("cpu")
    assert [timer.seconds(CFG, 8, device, 1) for _ in range(3)] == [0.3, 0.3, 0.3]
    assert len(calls) == 1
    timer.seconds(CFG, 16, device, 1)  # other settings are measured on their own
    assert len(calls) == 2


def test_a_real_step_is_measured_and_positive() -> None:
    assert measure_step_seconds(CFG, 4, torch.device("cpu"), 1) > 0
