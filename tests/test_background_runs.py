"""The one background run (engine/train/background.py) that training and tuning build on, driven by a run of
plain steps: its states in order, why it stopped and how that is said, its watchdog (time limit, session gone),
leaving the line, a failure, and the slot always given back."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from engine import settings
from engine.train import background as background_module
from engine.train.background import BackgroundRun, LineStatus, Liveness, RunState, StopReason
from engine.train.queue import QUEUE


@dataclass(frozen=True)
class StepStatus(LineStatus):
    state: RunState
    step: int
    message: str
    eta_s: float | None = None


class Steps(BackgroundRun):
    """`n` steps of `step_s` seconds each; raises at step `fail_at`."""

    kind, failure = "steps", "Stepping failed"

    def __init__(self, n: int, step_s: float = 0.01, fail_at: int | None = None, **kw):
        super().__init__(threads=1, **kw)
        self.n, self.step_s, self.fail_at = n, step_s, fail_at
        self.step = 0
        self.seen: list[RunState] = []
        self._halt = threading.Event()

    def _request_stop(self) -> None:
        self._halt.set()

    def _work(self) -> None:
        if not self._running():
            self._halt.set()
        self.seen.append(self.state)
        for i in range(self.n):
            if self._halt.is_set():
                self._end(RunState.STOPPED, f"{self.stopped_words()} after {i} steps.", model="partial")
                return
            if i == self.fail_at:
                raise ValueError("boom")
            time.sleep(self.step_s)
            self.step = i + 1
            self._watchdog()
        self._end(RunState.DONE, f"Stepped {self.n} times.", model="trained")

    def status(self) -> StepStatus:
        line = self.line()
        with self._lock:
            return StepStatus(self._state, self.step, self._message, **line)


def wait_for(check, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_run_goes_from_queued_to_running_to_done():
    run = Steps(5)
    assert run.state is RunState.QUEUED and run.status().active and not run.finished and run.model is None
    run.start()
    run.join(20)
    s = run.status()
    assert run.seen == [RunState.RUNNING] and s.state is RunState.DONE and s.message == "Stepped 5 times."
    assert s.state == "done" and not s.active and run.finished and run.model == "trained" and s.place is None
    assert run.stop_reason is None
    assert not any(t.name == f"glassbox-steps-{run.id}" for t in threading.enumerate())


def test_the_states_and_the_stop_reasons():
    assert {s for s in RunState if s.active} == {RunState.QUEUED, RunState.RUNNING}
    assert StopReason.USER.words(60) == "Stopped by you"
    assert StopReason.USER.words(60, in_line=True) == "Taken out of the line by you"
    assert StopReason.TIME_LIMIT.words(1200) == "Stopped at the 20-minute limit for one run on this server"
    assert StopReason.TIME_LIMIT.words(1200, in_line=True) == StopReason.TIME_LIMIT.words(1200)
    assert StopReason.SESSION_GONE.words(60, in_line=True).startswith("Left the line because the browser session")


def test_stopping_says_why_and_the_first_reason_stays():
    run = Steps(100_000)
    run.start()
    wait_for(lambda: run.status().step >= 2)
    run.stop(wait=True, timeout=20)
    run.stop(reason=StopReason.TIME_LIMIT)  # too late to change why
    s = run.status()
    assert s.state is RunState.STOPPED and s.message.startswith("Stopped by you after ")
    assert run.stop_reason is StopReason.USER and run.model == "partial"


def test_the_watchdog_stops_a_run_at_its_time_limit():
    run = Steps(100_000, max_seconds=0.0)
    run.start()
    run.join(20)
    assert run.stop_reason is StopReason.TIME_LIMIT and "minute limit for one run" in run.status().message


def test_the_watchdog_stops_a_run_whose_session_is_gone(monkeypatch):
    monkeypatch.setattr(background_module, "ALIVE_CHECK_S", 0.0)
    monkeypatch.setenv("GLASSBOX_RECONNECT_GRACE_S", "0.05")
    run = Steps(100_000, keep_alive=lambda: False)
    run.start()
    run.join(20)
    assert run.stop_reason is StopReason.SESSION_GONE
    assert run.status().message.startswith("Stopped because the browser session that started it ended")


def test_liveness_needs_the_session_gone_for_the_whole_grace():
    answers = iter([False, True, False, False])
    alive = Liveness(lambda: next(answers), grace_s=0.05)
    assert not alive.gone()  # gone once: a blip
    assert not alive.gone()  # back: the clock starts again
    assert not alive.gone()
    time.sleep(0.06)
    assert alive.gone()
    assert not Liveness(None).gone() and Liveness(None).grace_s == settings.current().reconnect_grace_s


def test_a_run_in_line_leaves_it_when_stopped_or_when_its_session_is_gone(monkeypatch):
    monkeypatch.setattr("engine.train.queue.CHECK_S", 0.02)
    monkeypatch.setenv("GLASSBOX_RECONNECT_GRACE_S", "0.05")
    blocker = Steps(100_000)
    blocker.start()
    try:
        wait_for(lambda: blocker.state is RunState.RUNNING)
        mine, gone = Steps(3, owner="me"), Steps(3, owner="gone", keep_alive=lambda: False)
        mine.start()
        gone.start()
        wait_for(lambda: mine.status().place == 1)
        assert mine.state is RunState.QUEUED and mine.status().active
        mine.stop(wait=True, timeout=20)
        gone.join(20)
        assert (mine.state, mine.status().message) == (RunState.STOPPED, "Taken out of the line by you")
        assert gone.status().message == "Left the line because the browser session that started it ended"
        assert mine.model is None and mine.seen == [] and QUEUE.place(mine) is None
    finally:
        blocker.stop()


def test_a_failure_is_said_and_the_slot_is_given_back():
    run = Steps(10, fail_at=2)
    run.start()
    run.join(20)
    s = run.status()
    assert s.state is RunState.FAILED and s.message == "Stepping failed: boom" and not s.active
    after = Steps(2)
    after.start()
    after.join(20)
    assert after.state is RunState.DONE, "the failed run gave its slot back"


def test_a_run_stopped_before_it_starts_never_runs():
    run = Steps(100_000)
    run.stop(wait=False)  # before start: its thread still sees it
    run.start()
    run.join(20)
    assert run.state is RunState.STOPPED and run.step == 0


@pytest.mark.parametrize("kind", ["train", "tune"])
def test_training_and_tuning_are_its_two_subclasses(kind):
    from engine.train.runs import TrainingRun
    from engine.train.tuning import TuningRun
    cls = {"train": TrainingRun, "tune": TuningRun}[kind]
    assert issubclass(cls, BackgroundRun) and cls.kind == kind
