"""The server's slots for background runs (training and preference tuning), and the line of runs waiting.

A run costs the same cores whoever starts it, so at most `slots` run at once (GLASSBOX_MAX_TRAINING_RUNS,
default 1). A run that finds every slot taken waits its turn, first come first served: its page shows its
place in line and the expected wait, and it can leave the line. One owner (a browser session) holds at most
one place in line, so nobody can queue the room's afternoon away.

A job is anything with `owner` (str or None), `expected_s` (its planned length in seconds, or None) and
`status().eta_s` (seconds left while it runs, or None): a BackgroundRun (engine/train/background.py).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .. import settings

CHECK_S = 1.0  # how often a waiting run asks whether it should give up its place


class RunRefused(RuntimeError):
    """The run cannot join the line (its owner already waits with another); the message says why."""


class RunQueue:
    def __init__(self, slots: int):
        self.slots = max(1, slots)
        self._running: list = []
        self._waiting: deque = deque()
        self._cond = threading.Condition()

    def join(self, job) -> None:
        """Put `job` in line (it runs at once if a slot is free when its thread asks); RunRefused when its
        owner already waits with another run."""
        with self._cond:
            if job.owner is not None and any(j.owner == job.owner for j in self._waiting):
                raise RunRefused("You already have a run waiting in line on this server: wait for it, or take it "
                                 "out of the line, before starting another.")
            self._waiting.append(job)

    def wait_turn(self, job, give_up: Callable[[], str]) -> str:
        """Block until `job` is first in line and a slot is free ("" then: it holds the slot), or until
        `give_up()` names a reason to leave the line (that reason then; the job holds nothing)."""
        with self._cond:
            while True:
                if self._waiting and self._waiting[0] is job and len(self._running) < self.slots:
                    self._waiting.popleft()
                    self._running.append(job)
                    self._cond.notify_all()
                    return ""
                reason = give_up()
                if reason:
                    self._forget(job)
                    return reason
                self._cond.wait(CHECK_S)

    def leave(self, job) -> None:
        """The job is done (or will never start): its slot or its place goes to the next in line."""
        with self._cond:
            self._forget(job)

    def wake(self) -> None:
        """Make waiting runs ask `give_up` now (a stop was requested)."""
        with self._cond:
            self._cond.notify_all()

    def _forget(self, job) -> None:
        if job in self._running:
            self._running.remove(job)
        if job in self._waiting:
            self._waiting.remove(job)
        self._cond.notify_all()

    def place(self, job) -> int | None:
        """1 for the next run to start, 2 after it, ...; None when the job is not waiting."""
        with self._cond:
            return list(self._waiting).index(job) + 1 if job in self._waiting else None

    def expected_wait(self, job) -> float | None:
        """Seconds until `job` should start: the time left of the running runs and the planned length of those
        ahead of it, slot by slot. None when a figure it needs is unknown."""
        with self._cond:
            if job not in self._waiting:
                return None
            free = []
            for r in self._running:
                left = r.status().eta_s
                left = left if left is not None else r.expected_s
                if left is None:
                    return None
                free.append(left)
            free += [0.0] * (self.slots - len(free))
            for ahead in self._waiting:
                if ahead is job:
                    return min(free)
                planned = ahead.expected_s
                if planned is None:
                    return None
                i = free.index(min(free))
                free[i] += planned
            return None

    def running(self) -> list:
        with self._cond:
            return list(self._running)


QUEUE = RunQueue(settings.current().max_training_runs)
