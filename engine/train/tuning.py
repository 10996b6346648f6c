"""A preference-tuning run in the background, for the Pre-training vs RLHF page: one thread owns a
`PreferenceTuner`, and the page polls `status()` while the model changes.

It is a `BackgroundRun` like `TrainingRun` (engine/train/background.py) and waits in the same line: tuning and
training cost the same cores, so at most QUEUE.slots of either run at once. Like a training run, it caps its
CPU threads and stops (or leaves the line) when its browser session has been gone for
GLASSBOX_RECONNECT_GRACE_S, or after `max_seconds`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.gpt import GPT
from .background import BackgroundRun, LineStatus, RunState
from .preference import PreferencePair, PreferenceTuner, TuneConfig, TuneProgress

STEP_S_GUESS = 0.3  # seconds per step of a built-in set on one thread (about 0.1-0.2 measured), before it runs


@dataclass(frozen=True)
class TuneStatus(LineStatus):
    state: RunState  # never DIVERGED: DPO's steps are small and few
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


class TuningRun(BackgroundRun):
    """One background DPO run on a copy of `model` (which stays untouched: it is the reference).

    Create (bad pairs or settings raise PreferenceError here, before anything runs), `start()`, poll
    `status()`, `stop()`; `model` is the tuned copy once finished.
    """

    kind, failure = "tune", "Tuning failed"

    def __init__(self, model: GPT, tokenizer, pairs: Sequence[PreferencePair], cfg: TuneConfig = TuneConfig(),
                 keep_alive: Callable[[], bool] | None = None, max_seconds: float | None = None,
                 threads: int | None = None, reference_name: str = "the original", owner: str | None = None):
        super().__init__(keep_alive, max_seconds, threads, owner, expected_s=cfg.steps * STEP_S_GUESS)
        self.reference_name = reference_name  # what a page calls the model it started from
        self.tokenizer, self.cfg, self.pairs = tokenizer, cfg, tuple(pairs)
        self.reference = model
        self.tuner = PreferenceTuner(model, tokenizer, self.pairs, cfg, callback=self._on_progress)
        self.model: GPT | None = None  # the tuned copy (eval mode) once finished
        self._history: list[TuneProgress] = []

    def _request_stop(self) -> None:
        self.tuner.request_stop()

    def status(self) -> TuneStatus:
        line = self.line()
        with self._lock:
            step = self._history[-1].step if self._history else 0
            return TuneStatus(self._state, step, self.cfg.steps, tuple(self._history), self._message, **line)

    def _work(self) -> None:
        self._running()  # a stop asked for earlier has already reached the tuner
        result = self.tuner.run()
        if result.stopped:
            self._end(RunState.STOPPED, f"{self.stopped_words()} after {result.steps} of {self.cfg.steps} steps.",
                      model=self.tuner.policy)
        else:
            self._end(RunState.DONE, f"Tuned for {result.steps} steps.", model=self.tuner.policy)

    def _on_progress(self, p: TuneProgress) -> None:
        with self._lock:
            self._history.append(p)
        self._watchdog()
