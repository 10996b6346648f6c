"""One run in a background thread, that a page polls: the base of `TrainingRun` (runs.py) and `TuningRun`
(tuning.py).

What every background run shares, written once here:
- its place in the server's line (queue.py): `start()` joins it, the thread waits its turn, then works on
  `threads` CPU threads (capped for that thread only);
- its state, one `RunState`: queued -> running -> done, stopped, diverged or failed (or queued -> stopped when it
  leaves the line); `status()` says it with the run's figures;
- stopping: `stop()` asks, with a `StopReason` (the user, the time limit, the browser session gone); the work
  stops after its current step, and the reason is said in the run's final message;
- its watchdog: the work calls `_watchdog()` after each step, which stops the run at `max_seconds` or once its
  browser session has been gone for GLASSBOX_RECONNECT_GRACE_S (`Liveness`); a run still in line leaves it
  for the same reasons.

A subclass says how its work runs (`_work`) and how to ask it to stop (`_request_stop`).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from .. import settings
from ..model.device import cap_threads, run_threads
from .queue import QUEUE

LOG = logging.getLogger("glassbox.runs")
ALIVE_CHECK_S = 2.0  # how often a running run asks `keep_alive`


class RunState(StrEnum):
    """Where a run is. A StrEnum: it equals its value ("done"), so a status reads plainly in a log or a test."""
    QUEUED = "queued"  # waiting in the server's line
    RUNNING = "running"
    DONE = "done"  # ran every step
    STOPPED = "stopped"  # stopped early (a StopReason), or left the line
    DIVERGED = "diverged"  # training only: its outputs stopped being finite; the last good weights are kept
    FAILED = "failed"  # an exception; the message quotes it

    @property
    def active(self) -> bool:
        """Still going: waiting in line or running."""
        return self in (RunState.QUEUED, RunState.RUNNING)


class StopReason(Enum):
    """Why a run was asked to stop; the words come with it, for a running run and for one still in line."""
    USER = ("Stopped by you", "Taken out of the line by you")
    TIME_LIMIT = ("Stopped at the {minutes:.0f}-minute limit for one run on this server", "")
    SESSION_GONE = ("Stopped because the browser session that started it ended",
                    "Left the line because the browser session that started it ended")

    def words(self, max_seconds: float, in_line: bool = False) -> str:
        running, waiting = self.value
        return (waiting if in_line and waiting else running).format(minutes=max_seconds / 60)


@dataclass(frozen=True)
class LineStatus:
    """What every background run's status says besides its own figures (the base of RunStatus and TuneStatus,
    whose own fields come first: these are keyword-only)."""
    place: int | None = field(default=None, kw_only=True)  # place in line while queued (1 = next), else None
    wait_s: float | None = field(default=None, kw_only=True)  # expected seconds until it starts (None: unknown)

    @property
    def active(self) -> bool:
        return self.state.active  # `state`, a RunState, is the subclass's first field


class Liveness:
    """Whether the browser session behind a run is still there: `gone()` turns True once `keep_alive` has said
    no for `grace_s` in a row (default GLASSBOX_RECONNECT_GRACE_S), so a blip of the network is not enough."""

    def __init__(self, keep_alive: Callable[[], bool] | None, grace_s: float | None = None):
        self.keep_alive = keep_alive
        self.grace_s = settings.current().reconnect_grace_s if grace_s is None else grace_s
        self._gone_since: float | None = None

    def gone(self) -> bool:
        if self.keep_alive is None:
            return False
        try:
            alive = bool(self.keep_alive())
        except Exception:  # noqa: BLE001 - a failing check must not end a run
            LOG.exception("keep_alive check failed")
            alive = True
        now = time.monotonic()
        self._gone_since = None if alive else (self._gone_since or now)
        return self._gone_since is not None and now - self._gone_since >= self.grace_s


_STARTED: OrderedDict[str, None] = OrderedDict()  # ids of the runs this process started, newest last
_STARTED_KEPT = 100_000  # ids only: a few MB at most, however long the server runs
_STARTED_LOCK = threading.Lock()


def started_here(run_id: str) -> bool:
    """Whether this server process started a run with this id. A page's URL names its run (ui.runs): an id
    this process never started belongs to a server that has restarted since (or to another server)."""
    with _STARTED_LOCK:
        return run_id in _STARTED


class BackgroundRun:
    """One run in its own thread: create, `start()`, poll `status()`, `stop()`; `model` is the result."""

    kind = "run"  # in the thread's name, glassbox-<kind>-<id>, and the log
    failure = "The run failed"  # how a failure's message starts, before the exception's words

    def __init__(self, keep_alive: Callable[[], bool] | None = None, max_seconds: float | None = None,
                 threads: int | None = None, owner: str | None = None, expected_s: float | None = None):
        self.id = uuid.uuid4().hex[:8]
        self.owner = owner  # who started it (a browser session): one place in line per owner
        self.expected_s = expected_s  # its planned length, for the expected wait of runs behind it
        self.keep_alive = keep_alive
        self.max_seconds = settings.current().max_run_s if max_seconds is None else max_seconds
        self.threads = threads or run_threads()
        self.model = None  # the result once finished (eval mode); None before
        self._liveness = Liveness(keep_alive)
        self._lock = threading.Lock()
        self._state, self._message = RunState.QUEUED, ""
        self._stop: StopReason | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._next_check = 0.0

    # -- control -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Join the line and start the background thread, which works once a slot is free; RunRefused when its
        owner already has a run waiting."""
        QUEUE.join(self)
        with _STARTED_LOCK:
            _STARTED[self.id] = None
            while len(_STARTED) > _STARTED_KEPT:
                _STARTED.popitem(last=False)
        self._thread = threading.Thread(target=self._main, name=f"glassbox-{self.kind}-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True, timeout: float = 60.0, reason: StopReason = StopReason.USER) -> None:
        """Ask the run to stop after its current step (the first reason given is the one said); with `wait`,
        return once its thread has ended."""
        with self._lock:
            self._stop = self._stop or reason
        self._request_stop()
        QUEUE.wake()  # a run still in line leaves it now
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- reading -----------------------------------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        with self._lock:
            return self._state

    @property
    def finished(self) -> bool:
        return not self.state.active

    @property
    def stop_reason(self) -> StopReason | None:
        with self._lock:
            return self._stop

    def line(self) -> dict:
        """The status fields about the line, for a subclass's status()."""
        return {"place": QUEUE.place(self),
                "wait_s": QUEUE.expected_wait(self) if self.state is RunState.QUEUED else None}

    def stopped_words(self) -> str:
        """How a stopped run's message starts: the reason asked for, or plain "Stopped"."""
        reason = self.stop_reason
        return reason.words(self.max_seconds) if reason is not None else "Stopped"

    # -- for a subclass ----------------------------------------------------------------------------------------

    def _work(self) -> None:
        """Run, from the thread, once it holds a slot: call `_running()` when the work begins, `_watchdog()`
        after each step, and `_end()` with how it ended."""
        raise NotImplementedError

    def _request_stop(self) -> None:
        """Tell the work to stop after its current step (called from any thread, maybe before it began)."""
        raise NotImplementedError

    def _running(self) -> bool:
        """Mark the run as running; False when a stop was asked for before the work began."""
        with self._lock:
            self._state = RunState.RUNNING
            return self._stop is None

    def _end(self, state: RunState, message: str, **result) -> None:
        """The run's last word: its final state, message and results (attributes such as `model`), together."""
        with self._lock:
            for name, value in result.items():
                setattr(self, name, value)
            self._state, self._message = state, message

    def _watchdog(self) -> None:
        """Stop the run at its time limit, or once its session is gone (asked every ALIVE_CHECK_S at most)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + ALIVE_CHECK_S
        if now - self._started > self.max_seconds:
            self.stop(wait=False, reason=StopReason.TIME_LIMIT)
        elif self._liveness.gone():
            self.stop(wait=False, reason=StopReason.SESSION_GONE)

    # -- the thread --------------------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            left = QUEUE.wait_turn(self, self._give_up)
            if left:
                self._end(RunState.STOPPED, left)
                return
            self._started = time.monotonic()
            cap_threads(self.threads)  # this thread only: the app's other threads keep theirs
            self._work()
        except Exception as e:  # noqa: BLE001 - a failed run reports in the page; the traceback goes to the log
            LOG.exception("%s %s failed", self.kind, self.id)
            self._end(RunState.FAILED, f"{self.failure}: {e}")
        finally:
            QUEUE.leave(self)

    def _give_up(self) -> str:
        """Why a run waiting in line should leave it ("" to keep waiting): a stop asked for, or its session gone."""
        reason = self.stop_reason
        if reason is None and self._liveness.gone():
            reason = StopReason.SESSION_GONE
        return reason.words(self.max_seconds, in_line=True) if reason is not None else ""
