"""Background training runs (engine/train/runs.py) and their budget (engine/train/budget.py), on tiny corpora."""
from __future__ import annotations

import math
import threading
import time

import pytest
import torch

from engine import GPTConfig
from engine.model.device import cap_threads
from engine.train import background as background_module
from engine.train import queue as queue_module
from engine.train.budget import MemoryEstimate, estimate_memory, fits_message
from engine.train.corpus import CorpusError, builtin_stories, from_pasted, make_tokenizer, prepare
from engine.train.queue import RunRefused
from engine.train.runs import TrainingRun
from engine.train.runspec import make_spec


@pytest.fixture(scope="module")
def data():
    corpus = builtin_stories(200)
    return prepare(corpus, make_tokenizer(corpus, 400))


def tiny_cfg(data, **kw) -> GPTConfig:
    return GPTConfig(**({"block_size": 32, "vocab_size": len(data.tokenizer), "n_layer": 1, "n_head": 2,
                         "n_embd": 32} | kw))


def finish(run: TrainingRun, timeout: float = 120) -> None:
    run.join(timeout)
    assert run.finished, "the run did not finish in time"


def test_a_tiny_run_lowers_the_loss_and_keeps_a_time_lapse(data):
    spec = make_spec(tiny_cfg(data), max_steps=80, batch_size=8, learning_rate=1e-2)
    run = TrainingRun(spec, data, threads=1)
    run.start()
    finish(run)
    s = run.status()
    assert s.state == "done" and s.step == 80 and s.message == "Trained 80 steps."
    assert [st for st, _ in s.losses] == list(range(1, 81))
    assert s.val_losses[0][0] == 0 and s.val_losses[0][1] == pytest.approx(math.log(len(data.tokenizer)), abs=0.5)
    assert s.val_losses[-1][1] < s.val_losses[0][1] - 1.5  # held-out text got much more predictable
    assert s.losses[-1][1] < s.losses[0][1] - 1.5
    snaps = run.snapshots()
    assert snaps[0].step == 0 and snaps[-1].step == 80 and len(snaps) == spec.n_snapshots
    assert all(a.step < b.step for a, b in zip(snaps, snaps[1:]))
    assert snaps[-1].probe.text == spec.probe and snaps[-1].probe.pattern(0, 1).shape[0] == len(snaps[-1].probe)
    assert "lm_head.weight" not in snaps[0].state  # tied to wte: stored once
    # The snapshot's weights are the model's at that step: the final one gives the final model's logits.
    ids = torch.tensor([snaps[-1].probe.ids])
    torch.testing.assert_close(run.model_at(snaps[-1])(ids)[0][0], run.model(ids)[0][0])
    assert run.kept_step == 80 and not run.model.training
    assert "80 of 80 steps" in run.model_card() and data.corpus_source in run.model_card()


def test_stop_joins_cleanly_and_keeps_what_was_learned(data):
    spec = make_spec(tiny_cfg(data), max_steps=100_000, batch_size=4, learning_rate=1e-3)
    run = TrainingRun(spec, data, threads=1)
    run.start()
    while run.status().step < 3:
        time.sleep(0.05)
    run.stop(wait=True, timeout=60)
    s = run.status()
    assert s.state == "stopped" and "Stopped by you" in s.message
    assert not any(t.name == f"glassbox-train-{run.id}" for t in threading.enumerate())
    assert run.snapshots()[-1].step == s.step == run.kept_step  # a last snapshot where it stopped
    assert s.val_losses[-1][0] == s.step


def test_only_max_runs_train_at_once_and_the_rest_wait_in_line(data):
    spec = make_spec(tiny_cfg(data), max_steps=100_000, batch_size=4, learning_rate=1e-3)
    first = TrainingRun(spec, data, threads=1, owner="a")
    first.start()
    try:
        while first.status().state != "running":
            time.sleep(0.05)
        second = TrainingRun(make_spec(tiny_cfg(data), 2, 4, 1e-3), data, threads=1, owner="b", expected_s=30)
        second.start()
        third = TrainingRun(make_spec(tiny_cfg(data), 2, 4, 1e-3), data, threads=1, owner="c")
        third.start()
        time.sleep(0.3)
        s2, s3 = second.status(), third.status()
        assert s2.state == s3.state == "queued" and s2.active and (s2.place, s3.place) == (1, 2)
        assert first.status().state == "running" and second.status().step == 0  # nobody else trains meanwhile
        with pytest.raises(RunRefused, match="already have a run waiting"):
            TrainingRun(spec, data, threads=1, owner="b").start()  # one place in line per session
        third.stop(wait=True, timeout=10)  # leaving the line
        assert third.status().state == "stopped" and "out of the line" in third.status().message
        assert second.status().place == 1
    finally:
        first.stop()
    finish(second)  # it started by itself once the slot was free
    assert second.status().state == "done"


def test_the_expected_wait_adds_up_what_is_ahead():
    from engine.train.queue import RunQueue

    class Job:
        def __init__(self, eta, planned):
            self.eta, self.expected_s, self.owner = eta, planned, None

        def status(self):
            return type("S", (), {"eta_s": self.eta})()

    q = RunQueue(1)
    running, a, b = Job(100.0, None), Job(None, 60.0), Job(None, None)
    q.join(running)
    assert q.wait_turn(running, lambda: "") == ""  # it holds the slot
    q.join(a)
    q.join(b)
    assert (q.place(a), q.place(b), q.place(running)) == (1, 2, None)
    assert q.expected_wait(a) == 100.0 and q.expected_wait(b) == 160.0
    assert q.wait_turn(b, lambda: "bored") == "bored" and q.place(b) is None  # gave up its place


def test_a_learning_rate_far_too_high_stops_and_keeps_the_last_good_weights(data):
    spec = make_spec(tiny_cfg(data), max_steps=60, batch_size=8, learning_rate=1000.0)
    run = TrainingRun(spec, data, threads=1)
    run.start()
    finish(run)
    s = run.status()
    assert s.state == "diverged" and "learning rate" in s.message and "ten times lower" in s.message
    good = run.snapshots()[-1]
    assert f"step {good.step}" in s.message and run.kept_step == good.step < s.step + 1
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    torch.testing.assert_close(run.model.transformer.wte.weight, good.state["transformer.wte.weight"])


def test_a_run_stops_when_its_session_is_gone(data, monkeypatch):
    monkeypatch.setattr(background_module, "ALIVE_CHECK_S", 0.0)
    monkeypatch.setenv("GLASSBOX_RECONNECT_GRACE_S", "0.2")
    spec = make_spec(tiny_cfg(data), max_steps=100_000, batch_size=4, learning_rate=1e-3)
    run = TrainingRun(spec, data, threads=1, keep_alive=lambda: False)
    run.start()
    finish(run, timeout=60)
    assert run.status().state == "stopped" and "session" in run.status().message


def test_a_run_stops_at_the_time_limit(data):
    spec = make_spec(tiny_cfg(data), max_steps=100_000, batch_size=4, learning_rate=1e-3)
    run = TrainingRun(spec, data, threads=1, max_seconds=0.0)
    run.start()
    finish(run, timeout=60)
    assert "minute limit" in run.status().message


def test_cap_threads_limits_only_the_calling_thread():
    seen = {}

    def capped() -> None:
        cap_threads(1)
        seen["capped"] = torch.get_num_threads()

    def fresh() -> None:
        seen["fresh"] = torch.get_num_threads()

    for target in (capped, fresh):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert seen == {"capped": 1, "fresh": torch.get_num_threads()}


def test_a_model_too_big_for_memory_is_refused_with_the_figures():
    big = GPTConfig(block_size=512, vocab_size=4096, n_layer=8, n_head=8, n_embd=512)
    est = estimate_memory(big, batch_size=64, n_snapshots=2)
    assert est.total > 4 * 2**30
    message = fits_message(est, torch.device("cpu"), free_ram=1 * 2**30)
    assert "1.00 GB free" in message and "Make it smaller" in message
    assert fits_message(MemoryEstimate(10, 10, 10), torch.device("cpu"), free_ram=1 * 2**30) is None
    gpu = fits_message(est, torch.device("cuda"), free_ram=64 * 2**30, free_gpu=2**30)
    assert "GPU memory" in gpu


def test_memory_estimate_grows_with_every_dimension():
    base = GPTConfig(block_size=64, vocab_size=512, n_layer=2, n_head=2, n_embd=64)
    total = estimate_memory(base, 8, 4).total
    for kw in ({"n_layer": 4}, {"n_embd": 128}, {"block_size": 128}, {"vocab_size": 1024}):
        assert estimate_memory(GPTConfig(**(base.as_dict() | kw)), 8, 4).total > total
    assert estimate_memory(base, 16, 4).total > total and estimate_memory(base, 8, 8).total > total


def test_a_corpus_shorter_than_the_context_is_refused(data):
    corpus = from_pasted("A short text. " * 20)
    prepared = prepare(corpus, data.tokenizer)
    prepared.check(16)
    with pytest.raises(CorpusError, match="too short for a context of 256 tokens"):
        prepared.check(256)
    with pytest.raises(CorpusError, match="empty"):
        from_pasted("  \n<|endoftext|>\n  ")


def test_a_run_in_line_leaves_it_when_its_session_is_gone(data, monkeypatch):
    monkeypatch.setenv("GLASSBOX_RECONNECT_GRACE_S", "0.2")
    monkeypatch.setattr(queue_module, "CHECK_S", 0.05)
    first = TrainingRun(make_spec(tiny_cfg(data), 100_000, 4, 1e-3), data, threads=1)
    first.start()
    try:
        waiting = TrainingRun(make_spec(tiny_cfg(data), 2, 4, 1e-3), data, threads=1, keep_alive=lambda: False)
        waiting.start()
        finish(waiting, timeout=30)
        assert waiting.status().state == "stopped" and "session" in waiting.status().message
        assert waiting.model is None and first.status().state == "running"
    finally:
        first.stop()


def test_fine_tuning_starts_from_the_model_and_leaves_it_untouched(data):
    """A run given `init` starts from a copy of its weights: the held-out loss at step 0 is the model's own, and
    the model it started from is the same afterwards."""
    first = TrainingRun(make_spec(tiny_cfg(data), max_steps=60, batch_size=8, learning_rate=1e-2), data, threads=1)
    first.start()
    finish(first)
    base = first.model
    before = {k: v.clone() for k, v in base.state_dict().items()}
    spec = make_spec(tiny_cfg(data), max_steps=5, batch_size=8, learning_rate=1e-3)
    run = TrainingRun(spec, data, threads=1, init=base)
    run.start()
    finish(run)
    s = run.status()
    assert s.state == "done"
    assert s.val_losses[0][1] < math.log(len(data.tokenizer)) - 1.0, "step 0 is the trained model, not noise"
    assert s.val_losses[0][1] == pytest.approx(first.status().val_losses[-1][1], abs=0.3)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items()), "the starting model is untouched"
    assert run.model is not base
    with pytest.raises(ValueError, match="own configuration"):
        TrainingRun(make_spec(tiny_cfg(data, n_embd=64), 5, 8, 1e-3), data, init=base)
