"""A preference-tuning run in the background, for the Pre-training vs RLHF page: one thread owns a
`PreferenceTuner`, and the page polls `status()` while the model changes.

It waits in the same line as `TrainingRun` (engine/train/queue.py): tuning and training cost the same
cores, so at most QUEUE.slots of either run at once. Like a training run, it caps its CPU threads and stops
(or leaves the line) when its browser session has been gone for ALIVE_GRACE_S, or after `max_seconds`.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.device import cap_threads, run_threads
from ..model.gpt import GPT
from .preference import PreferencePair, PreferenceTuner, TuneConfig, TuneProgress
from .queue import QUEUE, LineStatus, Liveness, leave_reason
from .runs import MAX_RUN_S

LOG = logging.getLogger("glassbox.tuning")
STEP_S_GUESS = 0.3  # seconds per step of a built-in set on one thread (about 0.1-0.2 measured), before it runs


@dataclass(frozen=True)
class TuneStatus(LineStatus):
    state: str  # "queued", "running", "done", "stopped" or "failed"
    step: int
    steps: int
    history: tuple[TuneProgress, ...]  # one report per step, and one for the tuned model at the end
    message: str  # how it ended, in words (empty while running)
    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps)

    @property
    def eta_s(self) -> float | None:
        if not self.active or len(self.history) < 2:
            return None
        per_step = self.history[-1].elapsed_s / max(1, self.history[-1].step)
        return per_step * (self.steps - self.step)


class TuningRun:
    """One background DPO run on a copy of `model` (which stays untouched: it is the reference).

    Create (bad pairs or settings raise PreferenceError here, before anything runs), `start()`, poll
    `status()`, `stop()`; `model` is the tuned copy once finished.
    """

    def __init__(self, model: GPT, tokenizer, pairs: Sequence[PreferencePair], cfg: TuneConfig = TuneConfig(),
                 keep_alive: Callable[[], bool] | None = None, max_seconds: float = MAX_RUN_S,
                 threads: int | None = None, reference_name: str = "the original", owner: str | None = None):
        self.id = uuid.uuid4().hex[:8]
        self.reference_name = reference_name  # what a page calls the model it started from
        self.tokenizer, self.cfg, self.pairs = tokenizer, cfg, tuple(pairs)
        self.reference = model
        self.tuner = PreferenceTuner(model, tokenizer, self.pairs, cfg, callback=self._on_progress)
        self.keep_alive, self.max_seconds = keep_alive, max_seconds
        self.owner = owner  # who started it (a browser session): one place in line per owner
        self.expected_s = cfg.steps * STEP_S_GUESS  # planned length, for the expected wait of runs behind it
        self._liveness = Liveness(keep_alive)
        self.threads = threads or run_threads()
        self.model: GPT | None = None  # the tuned copy (eval mode) once finished
        self._lock = threading.Lock()
        self._state, self._message = "queued", ""
        self._history: list[TuneProgress] = []
        self._stop_reason = ""
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def start(self) -> None:
        """Join the line and start the background thread, which tunes once a slot is free; RunRefused when its
        owner already has a run waiting."""
        QUEUE.join(self)
        self._thread = threading.Thread(target=self._main, name=f"glassbox-tune-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True, timeout: float = 60.0, reason: str = "") -> None:
        with self._lock:
            self._stop_reason = self._stop_reason or reason or "Stopped by you"
        self.tuner.request_stop()
        QUEUE.wake()  # a run still in line leaves it now
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> TuneStatus:
        with self._lock:
            step = self._history[-1].step if self._history else 0
            state, history, message = self._state, tuple(self._history), self._message
        queued = state == "queued"
        return TuneStatus(state, step, self.cfg.steps, history, message, place=QUEUE.place(self),
                          wait_s=QUEUE.expected_wait(self) if queued else None)

    def _main(self) -> None:
        try:
            left = QUEUE.wait_turn(self, self._give_up)
            if left:
                with self._lock:
                    self._state, self._message = "stopped", left
                return
            self._started = time.monotonic()
            cap_threads(self.threads)  # this thread only: the app's other threads keep theirs
            with self._lock:
                self._state = "running"
            result = self.tuner.run()
            with self._lock:
                self.model = self.tuner.policy
                if result.stopped:
                    self._state = "stopped"
                    self._message = f"{self._stop_reason or 'Stopped'} after {result.steps} of {self.cfg.steps} steps."
                else:
                    self._state, self._message = "done", f"Tuned for {result.steps} steps."
        except Exception as e:  # noqa: BLE001 - a failed run reports in the page; the traceback goes to the log
            LOG.exception("tuning run %s failed", self.id)
            with self._lock:
                self._state, self._message = "failed", f"Tuning failed: {e}"
        finally:
            QUEUE.leave(self)

    def _on_progress(self, p: TuneProgress) -> None:
        with self._lock:
            self._history.append(p)
        self._watchdog()

    def _give_up(self) -> str:
        with self._lock:
            stopped = self._stop_reason
        return leave_reason(stopped, self._liveness)

    def _watchdog(self) -> None:
        reason = ""
        if time.monotonic() - self._started > self.max_seconds:
            reason = f"Stopped at the {self.max_seconds / 60:.0f}-minute limit for one run on this server"
        elif self._liveness.gone():
            reason = "Stopped because the browser session that started it ended"
        if reason:
            with self._lock:
                self._stop_reason = self._stop_reason or reason
            self.tuner.request_stop()
