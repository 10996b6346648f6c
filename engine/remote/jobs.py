"""NDIF jobs, shared by every session of the server: one job per (model, revision, text, request), however many
sessions ask, and its answer kept for all of them.

A job runs in a thread of its own: it sends the request, asks after it every POLL_S (less often as it waits),
and ends completed, failed, cancelled or timed out (GLASSBOX_NDIF_TIMEOUT_S, NDIF's queue included: a job that
never started says the queue was too long, one that started and never finished says it ran out of time).
Sessions wait on it (`waiters`); cancelling stops one session's wait, and the job itself once nobody waits
(NDIF has no cancel call: a job it has started runs to its end there, and its answer is dropped here).
Completed answers stay for every session, the least recently asked let go first, within ANSWERS_KEPT answers
at the cap and 64 tickets.

The key a job was sent with stays in its thread, and in nnsight's backend until the job ends, then is dropped:
it is never in the board's entries other sessions read, in the answer, or in a message.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from .. import settings
from .client import Job, NdifError, ask

POLL_S = (0.25, 0.5, 1.0, 2.0)  # the waits between polls, the last repeated
ACTIVE = ("received", "queued", "running")
ENDED = ("completed", "failed", "cancelled")


@dataclass
class Ticket:
    """What a session sees of a job (every field but `waiters` is written by the job's thread only)."""
    key: Hashable
    stage: str = "received"  # received, queued, running, completed, failed, cancelled
    started: float = field(default_factory=time.monotonic)
    ran_at: float | None = None  # when NDIF said it was running
    seconds: float | None = None  # from sending to holding the answer, once completed
    answer: object = None  # what `finish` made of NDIF's answer
    error: NdifError | None = None
    waiters: set[str] = field(default_factory=set)
    limit_s: float = 120.0

    @property
    def active(self) -> bool:
        return self.stage in ACTIVE

    def waited(self) -> float:
        return (self.seconds if self.seconds is not None else time.monotonic() - self.started)


class Board:
    """Jobs by key, process-wide. `ask` starts one (or joins the one running), `cancel` leaves it."""

    def __init__(self, kept: int = 64, max_bytes: Callable[[], int] = lambda: 64 << 20) -> None:
        self._lock = threading.Lock()
        self._tickets: OrderedDict[Hashable, Ticket] = OrderedDict()  # least recently asked first
        self._kept, self._max_bytes = kept, max_bytes  # ended tickets kept: how many, and their answers' bytes

    def get(self, key: Hashable) -> Ticket | None:
        with self._lock:
            return self._tickets.get(key)

    def active(self) -> int:
        with self._lock:
            return sum(t.active for t in self._tickets.values())

    def ask(self, key: Hashable, waiter: str, send: Callable[[], Job], finish: Callable[[dict, float], object],
            limit_s: float, most: int) -> Ticket:
        """The ticket of `key`, joined by `waiter`: an active or completed one as it is, else a new job started
        with `send()` (in its own thread). NdifError("queue") when `most` jobs are already active."""
        with self._lock:
            ticket = self._tickets.get(key)
            if ticket is not None and (ticket.active or ticket.stage == "completed"):
                ticket.waiters.add(waiter)
                self._tickets.move_to_end(key)
                return ticket
            if sum(t.active for t in self._tickets.values()) >= most:
                raise NdifError("queue", f"This server is already waiting on {most} NDIF jobs: try again in a "
                                         "moment.")
            ticket = Ticket(key, waiters={waiter}, limit_s=limit_s)
            self._tickets[key] = ticket
            self._trim()
        threading.Thread(target=self._run, args=(ticket, send, finish), name="glassbox-ndif-job",
                         daemon=True).start()
        return ticket

    def cancel(self, key: Hashable, waiter: str) -> None:
        """`waiter` stops waiting; with nobody left, the job stops being asked after and is forgotten."""
        with self._lock:
            ticket = self._tickets.get(key)
            if ticket is None:
                return
            ticket.waiters.discard(waiter)
            if not ticket.waiters and ticket.active:
                ticket.stage = "cancelled"
                self._tickets.pop(key, None)

    def forget(self, key: Hashable) -> None:
        """Drop an ended ticket (a failure is said once; the next ask starts afresh)."""
        with self._lock:
            ticket = self._tickets.get(key)
            if ticket is not None and not ticket.active:
                self._tickets.pop(key, None)

    def _trim(self) -> None:
        """Let go of the least recently asked ended tickets until the count and the answers' bytes fit."""
        ended = [k for k, t in self._tickets.items() if not t.active]
        held = sum(getattr(self._tickets[k].answer, "nbytes", 0) for k in ended)
        count, cap = len(self._tickets), self._max_bytes()
        for k in ended[:-1]:  # the newest stays, as in every cache here
            if count <= self._kept and held <= cap:
                break
            held -= getattr(self._tickets.pop(k).answer, "nbytes", 0)
            count -= 1

    def _run(self, ticket: Ticket, send: Callable[[], Job], finish: Callable[[dict, float], object]) -> None:
        job = None
        try:
            job = send()
            ticket.stage = job.stage
            for i in range(1_000_000):
                if ticket.stage == "cancelled":
                    return
                saved = ask(job)
                if job.stage == "running" and ticket.ran_at is None:
                    ticket.ran_at = time.monotonic()
                if saved is not None:
                    seconds = time.monotonic() - job.sent_at
                    ticket.answer = finish(saved, seconds)
                    ticket.seconds = seconds
                    ticket.stage = "completed"
                    with self._lock:
                        self._trim()
                    return
                ticket.stage = job.stage if job.stage in ACTIVE else ticket.stage
                if ticket.waited() > ticket.limit_s:
                    raise _over_time(ticket)
                time.sleep(POLL_S[min(i, len(POLL_S) - 1)])
        except NdifError as e:
            ticket.error, ticket.stage = e, "failed"
        except Exception as e:  # noqa: BLE001 - an answer that does not check out, a bug: said, not raised
            import logging
            logging.getLogger("glassbox.ndif").exception("NDIF job failed")
            ticket.error = NdifError("failed", f"NDIF's answer could not be used ({type(e).__name__}).")
            ticket.stage = "failed"
        finally:
            if job is not None:
                job.forget_key()


def _over_time(ticket: Ticket) -> NdifError:
    limit = f"{ticket.limit_s:g} s"
    if ticket.ran_at is None:
        return NdifError("queue", f"NDIF's queue for this model is too long: the job did not start within {limit}. "
                                  "Try again later, or a smaller model.")
    return NdifError("time_limit", f"The job did not finish within this server's {limit} limit for NDIF jobs.")


ANSWERS_KEPT = 4  # completed answers are kept up to this many answers' worth of GLASSBOX_NDIF_MAX_MB, together


def _answers_bytes() -> int:
    return int(ANSWERS_KEPT * settings.current().ndif_max_mb * settings.MB)


BOARD = Board(max_bytes=_answers_bytes)
