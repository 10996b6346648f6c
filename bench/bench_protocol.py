"""A room on one server, the server's side alone: N websocket clients speaking Streamlit's own messages (no
browsers: bench/protocol.py) against `streamlit run app.py` on 127.0.0.1, with one session alone in the same run.

    python bench/bench_protocol.py [--sessions 30] [--think 2] [--stagger 0.1] [--app-dir DIR]
                                   [--env STREAMLIT_SERVER_ENABLE_WEBSOCKET_COMPRESSION=true]

Each session is a workshop attendee with a text of its own: opens the Attention page by its link, sets its text,
picks a head, opens Next token, moves the temperature one step. Between two interactions it waits `--think`
seconds (from half to one and a half times that, drawn per session and step from a fixed seed), as a person
reads the page before clicking; the sessions arrive `--stagger` seconds apart. Before the measured runs one
visit warms the server (imports, the model, the shared traces); then one session alone, then N at once.

An interaction is timed from sending its message to the `script_finished` of the run it caused. Reported: p50
and p95 per interaction, server CPU-seconds per visit (psutil, the server's process tree, over the N-session
run, divided by N), bytes per interaction and per visit (ForwardMsg payloads; with websocket compression on,
fewer bytes cross the wire: reported beside them), the server's peak RSS and the load average. Bounded: every
interaction has a timeout, the whole run stops at `--timeout`, traffic goes to 127.0.0.1 only.

Goals on 2 cores (issue 27), printed as met or not met:
- p95 of every interaction that does not run the model <= 0.5 s at 30 sessions; of one that does (set text) <= 3 s
- server CPU per visit <= 0.25 s (2026-05 main: 0.85 s, measured by issue 27's own client)
- bytes per visit <= 400 kB (2026-05 main: ~2 MB, the same)
- server RSS peak <= 600 MB
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_room import ROOT, percentile, start_server, stop_server  # noqa: E402
from protocol import ProtocolError, Run, Session  # noqa: E402

INTERACTIONS = ("open Attention", "set text", "pick a head", "open Next token", "move temperature")
RUNS_MODEL = {"set text"}  # the interactions that run the model on a new text; the others only read a trace
GOAL_READ_S, GOAL_MODEL_S = 0.5, 3.0  # p95 at 30 sessions
GOAL_CPU_S, GOAL_BYTES, GOAL_RSS_MB = 0.25, 400_000, 600
STEP_TIMEOUT_S = 180.0  # one interaction; thirty sessions on two cores can queue for a while


@dataclass
class Room:
    runs: dict[str, list[Run]] = field(default_factory=lambda: {k: [] for k in INTERACTIONS})
    visits: list[list[Run]] = field(default_factory=list)  # every finished visit's runs, in order
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the server's CPU time during the run


class Sampler(threading.Thread):
    """The server process tree's RSS and CPU time, every quarter second; the most cores it used in one second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.rss: list[int] = []
        self.peak_cores = 0.0
        self._halt = threading.Event()
        self._window: list[tuple[float, float]] = []

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self._halt.wait(0.25):
            tree = self.tree()
            try:
                self.rss.append(sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                continue
            now, cpu = time.monotonic(), self.cpu()
            self._window = [w for w in self._window if now - w[0] <= 1.0] + [(now, cpu)]
            if len(self._window) > 1 and now - self._window[0][0] > 0.7:
                t0, c0 = self._window[0]
                self.peak_cores = max(self.peak_cores, (cpu - c0) / (now - t0))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def attendee_text(i: int) -> str:
    return f"Attendee {i} says: once upon a time a little fox found a red ball, number {i}, in the garden."


def _next_option(options: list[str], current: int) -> str:
    """The option one step left of `current` (one step right at the left end): what an arrow key does."""
    return options[current - 1] if current > 0 else options[current + 1]


async def visit(base: str, i: int, think_s: float, room: Room) -> None:
    """One attendee's visit; each interaction's run goes into `room` (a failed visit is an error, reported)."""
    rng = random.Random(i)
    text = attendee_text(i)
    session = Session(base, STEP_TIMEOUT_S)
    runs: list[Run] = []
    step = ""

    async def do(name: str, request) -> Run:
        nonlocal step
        step = name
        if runs and think_s > 0:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
        run = await request
        runs.append(run)
        room.runs[name].append(run)
        for e in run.exceptions:
            room.errors.append(f"session {i}, {name}: the page shows {e}")
        return run

    try:
        await do("open Attention", session.open("/Attention"))
        await do("set text", session.set("attention.text_area", text))
        # The head is picked in the browser (ui/views): the view reports it, the server only takes note.
        view = session.view_data("attention.view")
        n_head = int(view.get("n_head") or 4)
        sel = dict(view.get("sel") or {"layer": 0, "head": 0, "query": 0})
        await do("pick a head", session.report("attention.view", {**sel, "head": (sel["head"] + 1 + i) % n_head}))
        await do("open Next token", session.goto("Next token"))
        lab = dict(session.view_data("next_token.lab").get("sel") or {})
        temps = list((session.view_data("next_token.lab").get("options") or {}).get("temperature") or [])
        at = temps.index(lab["temperature"]) if lab.get("temperature") in temps else None
        moved = _next_option(temps, at) if at is not None else 0.9
        await do("move temperature", session.report("next_token.lab", {**lab, "temperature": moved}))
        if session.url_param("text") != text:  # the view the app holds is this session's own, no other's
            room.errors.append(f"session {i}: its link holds {str(session.url_param('text'))[:50]!r}, not its text")
        room.visits.append(runs)
    except (ProtocolError, OSError, TimeoutError) as e:
        room.errors.append(f"session {i}, {step}: {type(e).__name__}: {str(e)[:200]}")
    finally:
        await session.close()


async def run_room(base: str, ids: list[int], think_s: float, stagger_s: float, timeout_s: float,
                   sampler: Sampler) -> Room:
    room = Room()
    cpu0, t0 = sampler.cpu(), time.perf_counter()

    async def one(k: int, i: int) -> None:
        await asyncio.sleep(k * stagger_s)
        await visit(base, i, think_s, room)

    try:
        await asyncio.wait_for(asyncio.gather(*(one(k, i) for k, i in enumerate(ids))), timeout_s)
    except TimeoutError:
        room.errors.append(f"the run passed its {timeout_s:.0f} s limit and was stopped")
    room.wall_s, room.cpu_s = time.perf_counter() - t0, sampler.cpu() - cpu0
    return room


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(alone: Room, room: Room, n: int, sampler: Sampler, loads: tuple[float, float]) -> None:
    print(f"\n{'interaction':<17} {'alone s':>8} {f'{n} p50':>7} {f'{n} p95':>7} {f'{n} max':>7} {'goal':>6}"
          f" {'p95':>8}  {'kB alone':>8} {f'kB {n} p50':>9}" + f" {'wire kB':>8}")
    met: list[tuple[str, bool]] = []
    for k in INTERACTIONS:
        a, r = alone.runs[k], room.runs[k]
        secs = [x.seconds for x in r]
        p95 = percentile(secs, 0.95)
        goal = GOAL_MODEL_S if k in RUNS_MODEL else GOAL_READ_S
        ok = bool(secs) and len(r) == n and p95 <= goal
        met.append((f"p95 of {k} <= {goal:g} s at {n} sessions", ok))
        print(f"{k:<17} {_median([x.seconds for x in a]):8.2f} {percentile(secs, 0.5):7.2f} {p95:7.2f} "
              f"{max(secs) if secs else float('nan'):7.2f} {goal:6.1f} {'met' if ok else 'NOT met':>8}  "
              f"{_median([x.bytes for x in a]) / 1e3:8.1f} {_median([x.bytes for x in r]) / 1e3:9.1f}"
              f" {_median([x.wire_bytes for x in r]) / 1e3:8.1f}  ({len(r)} of {n})")
    per_visit = [sum(x.bytes for x in v) for v in room.visits]
    wire_visit = [sum(x.wire_bytes for x in v) for v in room.visits]
    cpu_visit = room.cpu_s / n
    rss_mb = max(sampler.rss) / 2**20 if sampler.rss else float("nan")
    print(f"\nbytes per visit: {_median(per_visit) / 1e3:,.0f} kB median over {len(per_visit)} visits"
          f" (alone: {sum(x.bytes for v in alone.visits for x in v) / 1e3:,.0f} kB)"
          f"; on the wire {_median(wire_visit) / 1e3:,.0f} kB")
    print(f"server CPU: {room.cpu_s:.1f} s for {n} visits = {cpu_visit:.2f} s per visit (alone: {alone.cpu_s:.2f} s);"
          f" at most {sampler.peak_cores:.2f} cores in one second; {n}-session run took {room.wall_s:.0f} s")
    if sampler.rss:
        print(f"server RSS: start {sampler.rss[0] / 2**20:,.0f} MB, peak {rss_mb:,.0f} MB, "
              f"end {sampler.rss[-1] / 2**20:,.0f} MB")
    print(f"load average: {loads[0]:.1f} before, {loads[1]:.1f} after; this client used "
          f"{time.process_time():.1f} CPU-seconds")
    errors = alone.errors + room.errors
    print(f"errors: {len(errors)}")
    for e in errors[:20]:
        print(f"  {e}")
    met += [(f"server CPU per visit <= {GOAL_CPU_S} s", cpu_visit <= GOAL_CPU_S),
            (f"bytes per visit <= {GOAL_BYTES / 1e3:.0f} kB", bool(per_visit) and _median(per_visit) <= GOAL_BYTES),
            (f"server RSS peak <= {GOAL_RSS_MB} MB", rss_mb <= GOAL_RSS_MB),
            ("no errors", not errors)]
    print("\ngoals (2 cores):")
    for what, ok in met:
        print(f"  {'met    ' if ok else 'NOT met'}  {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--think", type=float, default=2.0, help="seconds between interactions (0.5x-1.5x, seeded)")
    ap.add_argument("--stagger", type=float, default=0.1, help="seconds between sessions arriving")
    ap.add_argument("--timeout", type=float, default=600, help="seconds; each run stops by itself then")
    ap.add_argument("--app-dir", type=Path, default=ROOT, help="serve another checkout (e.g. an older commit)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="for the server, e.g. STREAMLIT_SERVER_ENABLE_WEBSOCKET_COMPRESSION=true (repeatable)")
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    before = os.getloadavg()[0]
    print(f"{args.sessions} sessions, {os.cpu_count()} CPUs, think {args.think:g} s, stagger {args.stagger:g} s, "
          f"app {args.app_dir}, env {env or '-'}; load average {before:.1f} before the run")
    if before > 1.0:
        print("note: the machine is busy; every figure below is inflated by what else runs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_server(port, env, root=args.app_dir)
    base = f"http://127.0.0.1:{port}"
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        warm = asyncio.run(run_room(base, [10_000], args.think, 0, args.timeout, sampler))
        if warm.errors:
            print(f"the warm-up visit failed: {warm.errors}")
        alone = asyncio.run(run_room(base, [10_001], args.think, 0, args.timeout, sampler))
        room = asyncio.run(run_room(base, list(range(args.sessions)), args.think, args.stagger, args.timeout,
                                    sampler))
    finally:
        sampler.stop()
        stop_server(proc)
    report(alone, room, args.sessions, sampler, (before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
