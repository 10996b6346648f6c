"""The live view of a background run, one for both kinds: training (the Train page) and preference tuning (the
Pre-training vs RLHF page). Each wing declares a `RunPanel` (its session keys, its words, what its run's
progress looks like) and this module does the rest the same way for both:

- starting a run, or leaving a notice that says why not (shown once, after the rerun);
- while it waits in line: its place, the expected wait and a way out; while it runs: a fragment that redraws
  every `poll_s` (only that part of the page reruns), the wing's figures and a stop button;
- once it has ended: the outcome in one message, the wing's final figures, and its model kept as a session
  model once (unless nothing was learned, or it is over the session's memory for models).

The run lives in its session's state and belongs to it: other sessions never see it. It stops by itself when
the browser session ends (ui.state.session_alive writes the heartbeat this view keeps beating).
"""
from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from engine.train.background import BackgroundRun, RunState, started_here
from engine.train.queue import RunRefused

from .models import keep_run_model
from .text import md
from .view import Context, Setting, Unusable

Draw = Callable[[Any, Any], None]  # (run, its status) -> draws part of the view
RUN_ID = re.compile(r"[0-9a-f]{8}")  # a BackgroundRun's id
RESTARTED = "This server restarted since your run started; the run was lost."
DOWNLOAD_BITS = 128  # random bits in every model zip a page offers: its download address is a capability


def download_comment() -> bytes:
    """A model zip's archive comment, new for every zip made. Streamlit names a download file after a hash of its
    bytes (its head, middle and tail past 1 MiB; the comment is in the tail) and serves it to whoever has the
    address, without cookies: with 128 random bits in the bytes, the address is as random as a session token,
    and a model trained the same way elsewhere (the same seed gives the same weights) does not reveal it."""
    return f"Glassbox download {secrets.token_hex(DOWNLOAD_BITS // 8)}".encode()


NOT_KEPT = ("There was no room in this server's memory to keep the model in the sidebar's model selector, but this "
            "page still holds it until you start another run or close the tab: download it to keep it, and upload "
            "the zip on the Train page later to look inside it.")
RELOADED = ("This page was reloaded, so it starts afresh: the run it showed belonged to the page before the reload "
            "(a run still going stops by itself shortly), and its model went with it unless you downloaded it.")


@dataclass(frozen=True)
class RunPanel:
    """A wing's background run: where its session keeps it, and what the shared view says and draws."""
    run_key: str  # session key: this session's run (one at a time)
    registered_key: str  # session key: id of the run whose model is kept as `model_name`
    notice_key: str  # session key: (kind, message) about starting a run, shown once after a rerun
    heartbeat_key: str  # session key: {"t": monotonic time of the last poll} (see ui.state.session_alive)
    result_key: str  # session key: what the wing made of the finished run (its zip); dropped at a new start
    model_name: str  # what the run's model is called in the sidebar's model selector
    what: str  # "training run": in the line's words
    stop_label: str  # "Stop training"
    poll_s: float  # how often the live view redraws: often enough to watch, rarely enough to cost the run little
    learned: Callable[[Any], bool]  # whether a finished run's model is worth keeping (it took a step)

    def current(self) -> BackgroundRun | None:
        return st.session_state.get(self.run_key)

    def busy(self) -> bool:
        run = self.current()
        return run is not None and run.status().active

    def start(self, make: Callable[[], BackgroundRun]) -> None:
        """Make a run and start it in the background, or leave a notice saying why not (the line refused it).
        An exception `make` raises (a setting the run refuses) reaches the caller."""
        run = make()
        try:
            run.start()
        except RunRefused as e:
            st.session_state[self.notice_key] = ("warning", str(e))
            return
        st.session_state[self.run_key] = run
        st.session_state.pop(self.result_key, None)

    def refuse(self, kind: str, message: str) -> None:
        """Leave a notice instead of starting (kind: "error", "warning"); `message` escaped where it quotes."""
        st.session_state[self.notice_key] = (kind, message)

    def show_notice(self, key: str | None = None) -> None:
        notice = st.session_state.pop(key or self.notice_key, None)
        if notice:
            kind, message = notice
            getattr(st, kind)(message)  # already escaped where it quotes anything from outside

    def keep_result(self, run: BackgroundRun) -> bool:
        """Keep a finished run's model as `model_name` once. True when it did just now."""
        if run.model is None or st.session_state.get(self.registered_key) == run.id or run.status().active:
            return False
        if not self.learned(run):
            return False  # nothing was learned (or only what diverged): keep whatever the model was before
        return keep_run_model(run.id, self.model_name, run.model, run.tokenizer, self.registered_key,
                              self.notice_key)

    def live_view(self, run: BackgroundRun, running: Draw, finished: Draw, leave_key: str, stop_key: str) -> None:
        """While the run is active: a fragment that redraws every `poll_s` with `running`, so the rest of the
        page stays usable. Afterwards: the outcome and `finished`, drawn once. The keys are the buttons'."""
        s = run.status()
        if s.active:
            st.fragment(run_every=self.poll_s)(_live_body)(self, run.id, running, leave_key, stop_key)
            return
        outcome(s.state, s.message)
        finished(run, s)


def outcome(state: RunState, message: str) -> None:
    """How a run ended, in one message."""
    if state is RunState.DONE:
        st.success(message, icon=":material/check_circle:")
    elif state is RunState.STOPPED:
        st.info(message, icon=":material/stop_circle:")
    else:
        st.error(md(message), icon=":material/error:")  # a failure's message may quote an exception


def _live_body(panel: RunPanel, run_id: str, running: Draw, leave_key: str, stop_key: str) -> None:
    run = panel.current()
    if run is None or run.id != run_id:
        return
    if not watch_run(run, panel.heartbeat_key, panel.what, lambda: panel.keep_result(run), leave_key):
        return
    running(run, run.status())
    st.button(panel.stop_label, on_click=run.stop, kwargs={"wait": False}, icon=":material/stop_circle:",
              key=stop_key, type="primary")


def place_in_line(place: int | None, wait_s: float | None, what: str) -> None:
    """A queued run's place and expected wait, in words."""
    if place is None:
        st.info(f"Starting your {what}…", icon=":material/hourglass_top:")
        return
    ahead = "you are next" if place == 1 else f"{place - 1} run{'s' if place > 2 else ''} ahead of yours"
    when = (f" Expected wait: about {max(1, round(wait_s / 60))} min." if wait_s and wait_s >= 60 else
            f" Expected wait: about {max(1, round(wait_s))} s." if wait_s else
            " The wait cannot be estimated yet (the run ahead has only just started).")
    st.info(f"Waiting in line for this server's training slot: {ahead}.{when} Your {what} starts by itself; "
            "keep this tab open.", icon=":material/hourglass_top:")


def watch_run(run, heartbeat_key: str, what: str, when_done: Callable[[], object], leave_key: str) -> bool:
    """The top of a background run's live view (a fragment that reruns every few seconds): note the poll for
    ui.state.session_alive; once the run has ended, call `when_done` and redraw the whole page; while it waits
    in line, show its place and a way out. True when the run is running and the caller draws its progress."""
    st.session_state.setdefault(heartbeat_key, {"t": 0.0})["t"] = time.monotonic()
    s = run.status()
    if not s.active:
        when_done()
        st.rerun()  # the whole page: the results appear, the sidebar lists the new model
    if s.state is RunState.QUEUED:
        place_in_line(s.place, s.wait_s, what)
        st.button("Take it out of the line", on_click=run.stop, kwargs={"wait": False}, icon=":material/close:",
                  key=leave_key)
        return False
    return True


def run_setting() -> Setting:
    """The page's background run in its URL (`run=<id>`), so that a reload (F5) or a restarted server can say
    what became of it; the page keeps the run under its key "run" and its notices under "notice". Session state
    dies with the server process and with a reloaded page, so only the browser's URL remembers the run: a run
    this process never started was lost in a restart (RESTARTED), one it did start belonged to the page before a
    reload (RELOADED). Said once, as the page's notice; "Link to this view" leaves `run` out."""
    def read(ctx: Context) -> str | None:
        run = st.session_state.get(ctx.page.key("run"))
        return run.id if run is not None else None

    def apply(ctx: Context, raw: str) -> None:
        run = st.session_state.get(ctx.page.key("run"))
        if run is not None:
            return  # this session's own run is the one shown, whatever an old URL said
        if not RUN_ID.fullmatch(raw):
            raise Unusable("not a run this app named")
        st.session_state[ctx.page.key("notice")] = ("warning", RELOADED if started_here(raw) else RESTARTED)
    return Setting("run", read, apply)
