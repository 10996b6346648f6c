"""A preference-tuning run in the background, for the Pre-training vs RLHF page: one thread owns a
`PreferenceTuner`, and the page polls `status()` while the model changes.

It shares the server's training slots with `TrainingRun` (engine/train/runs.py): tuning and training cost the
same cores, so at most MAX_RUNS of either run at once. Like a training run, it caps its CPU threads and stops
by itself when `keep_alive` has been false for ALIVE_GRACE_S, or after `max_seconds`.
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
from .runs import ALIVE_GRACE_S, MAX_RUN_S, claim_slot, release_slot

LOG = logging.getLogger("glassbox.tuning")


@dataclass(frozen=True)
class TuneStatus:
    state: str  # "waiting", "running", "done", "stopped" or "failed"
    step: int
    steps: int
    history: tuple[TuneProgress, ...]  # one report per step, and one for the tuned model at the end
    message: str  # how it ended, in words (empty while running)

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")

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
                 threads: int | None = None, reference_name: str = "the original"):
        self.id = uuid.uuid4().hex[:8]
        self.reference_name = reference_name  # what a page calls the model it started from
        self.tokenizer, self.cfg, self.pairs = tokenizer, cfg, tuple(pairs)
        self.reference = model
        self.tuner = PreferenceTuner(model, tokenizer, self.pairs, cfg, callback=self._on_progress)
        self.keep_alive, self.max_seconds = keep_alive, max_seconds
        self.threads = threads or run_threads()
        self.model: GPT | None = None  # the tuned copy (eval mode) once finished
        self._lock = threading.Lock()
        self._state, self._message = "waiting", ""
        self._history: list[TuneProgress] = []
        self._stop_reason = ""
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._gone_since: float | None = None

    def start(self) -> None:
        """Take a slot and tune in a background thread; RunRefused when the server is busy."""
        claim_slot(self)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._main, name=f"glassbox-tune-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True, timeout: float = 60.0, reason: str = "") -> None:
        with self._lock:
            self._stop_reason = self._stop_reason or reason or "Stopped by you"
        self.tuner.request_stop()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> TuneStatus:
        with self._lock:
            step = self._history[-1].step if self._history else 0
            return TuneStatus(self._state, step, self.cfg.steps, tuple(self._history), self._message)

    def _main(self) -> None:
        try:
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
            release_slot(self)

    def _on_progress(self, p: TuneProgress) -> None:
        with self._lock:
            self._history.append(p)
        self._watchdog()

    def _watchdog(self) -> None:
        now, reason = time.monotonic(), ""
        if now - self._started > self.max_seconds:
            reason = f"Stopped at the {self.max_seconds / 60:.0f}-minute limit for one run on this server"
        elif self.keep_alive is not None:
            try:
                alive = bool(self.keep_alive())
            except Exception:  # noqa: BLE001 - a failing check must not kill the run
                LOG.exception("keep_alive check failed")
                alive = True
            self._gone_since = None if alive else (self._gone_since or now)
            if self._gone_since is not None and now - self._gone_since >= ALIVE_GRACE_S:
                reason = "Stopped because the browser session that started it ended"
        if reason:
            with self._lock:
                self._stop_reason = self._stop_reason or reason
            self.tuner.request_stop()
