"""A room of attendees on one server: N real browser sessions (Chromium, Playwright) against `streamlit run` on
127.0.0.1, each doing what a workshop attendee does, with one session alone as the baseline in the same run.

    python bench/bench_room.py [--sessions 30] [--url http://127.0.0.1:8501] [--timeout 600]

Each attendee: opens the home page, types a prompt of its own, opens Attention, picks a head, opens Next
token, moves the temperature slider, draws a token. Every interaction is timed from the action to the end of
the rerun it causes (Streamlit's `data-test-script-state` back to notRunning) and the page's figure drawn.
Reports per interaction p50 / p95 / max for one session alone and for N at once, the ratio of the two, errors
(exceptions shown in a page, "Something went wrong", page errors, an attendee seeing another's text), and,
sampled every half second with psutil, the server's CPU and RSS and the browsers' CPU (on two cores the
browsers compete with the server: their share says how much of the latency is theirs). Bounded: every wait
has a timeout and the whole run stops at --timeout. Streamlit's own load tests (e2e_playwright/load_testing)
are the model. Sends traffic only to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INTERACTIONS = ("open home", "type a prompt", "open Attention", "pick a head", "open Next token",
                "move temperature", "draw a token")
STEP_TIMEOUT_MS = 240_000  # one interaction; thirty sessions on two cores can queue for a while
# Every change of Streamlit's script state, with its time, from the first page load on.
OBSERVER = """
window.__gbRuns = [];
new MutationObserver(list => {
  for (const m of list) window.__gbRuns.push([m.target.getAttribute('data-test-script-state'), performance.now()]);
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
"""
# Resolves when a rerun that started after t0 has finished and the page shows a figure (or none is expected).
SETTLED = """
([t0, figure, timeout]) => new Promise(resolve => {
  const tick = () => {
    const now = performance.now();
    const runs = window.__gbRuns.filter(r => r[1] >= t0);
    const started = runs.findIndex(r => r[0] === 'running');
    const done = started >= 0 && runs.slice(started).some(r => r[0] === 'notRunning');
    const quiet = started < 0 && now - t0 > 1500;  // no rerun came (a widget that changed nothing)
    const app = document.querySelector("[data-testid='stApp']");
    const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
    const drawn = !figure || document.querySelector(  // Plotly's, or a view drawn in the browser (ui/views)
      "[data-testid='stPlotlyChart'] .main-svg, .gb-v[data-draws]:not([data-draws='0'])");
    if ((done || quiet) && idle && drawn) return resolve(now - t0);
    if (now - t0 > timeout) return resolve(-1);
    setTimeout(tick, 15);
  };
  tick();
})
"""


@dataclass
class Room:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in INTERACTIONS})
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


class Sampler(threading.Thread):
    """CPU and RSS of the server process tree and of the browser processes, every half second."""

    def __init__(self, server_pid: int | None):
        super().__init__(daemon=True)
        self.server = psutil.Process(server_pid) if server_pid else None
        self.rss: list[int] = []
        self.cpu_server = self.cpu_browsers = 0.0
        self._halt = threading.Event()
        self._seen: dict[int, float] = {}

    def _cpu(self, procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                total += self._seen.get(p.pid, 0.0)
                continue
            self._seen[p.pid] = t.user + t.system
        return total

    def _tree(self) -> list[psutil.Process]:
        if self.server is None:
            return []
        try:
            return [self.server, *self.server.children(recursive=True)]
        except psutil.Error:
            return []

    def _browsers(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["name", "cmdline"]):
            name = (p.info.get("name") or "").lower()
            if "chrom" in name or "headless_shell" in name:
                out.append(p)
        return out

    def run(self) -> None:
        server0, browsers0 = self._cpu(self._tree()), self._cpu(self._browsers())
        while not self._halt.wait(0.5):
            tree = self._tree()
            try:
                self.rss.append(sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            self.cpu_server = self._cpu(tree) - server0
            self.cpu_browsers = self._cpu(self._browsers()) - browsers0

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


async def _settle(tab, t0: float, figure: bool) -> float:
    ms = await tab.evaluate(SETTLED, [t0, figure, STEP_TIMEOUT_MS])
    if ms < 0:
        raise TimeoutError("the page did not settle")
    return ms / 1000


async def _now(tab) -> float:
    return await tab.evaluate("performance.now()")


async def _check(tab, who: str, room: Room, text: str | None = None) -> None:
    main = await tab.inner_text("[data-testid='stMain']")
    if await tab.locator("[data-testid='stException']").count():
        room.errors.append(f"{who}: an exception is shown")
    if "Something went wrong" in main:
        room.errors.append(f"{who}: 'Something went wrong' is shown")
    if "yours, this session only" in await tab.inner_text("[data-testid='stSidebar']"):
        room.errors.append(f"{who}: its model selector lists a model it never trained")
    if text is not None:
        boxes = tab.locator("[data-testid='stMain'] textarea, [data-testid='stMain'] [data-testid='stTextInput'] input")
        values = [await boxes.nth(i).input_value() for i in range(await boxes.count())]
        if values and text not in values:
            room.errors.append(f"{who}: its text box shows {values[0][:40]!r}, not its own text")


async def attendee(browser, base: str, i: int, room: Room) -> None:
    """One attendee's visit; every interaction timed into `room`."""
    who = f"session {i}"
    text = f"Attendee {i} says: once upon a time a little fox found a red ball."
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    tab = await context.new_page()
    tab.set_default_timeout(STEP_TIMEOUT_MS)
    tab.on("pageerror", lambda e: room.errors.append(f"{who}: page error {e}"))
    await tab.add_init_script(OBSERVER)
    try:
        t = time.perf_counter()
        await tab.goto(base + "/")
        await tab.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
        await tab.wait_for_selector("[data-testid='stMain'] textarea, [data-testid='stMain'] input[type='text']")
        room.latencies["open home"].append(time.perf_counter() - t)

        box = tab.locator("[data-testid='stMain'] textarea, [data-testid='stMain'] input[type='text']").first
        t0 = await _now(tab)
        await box.fill(text)
        await box.press("Control+Enter")  # commits a text area; a live one-line box has committed already
        room.latencies["type a prompt"].append(await _settle(tab, t0, figure=False))

        for page_name, key, figure in (("Attention", "open Attention", True), ("Next token", "open Next token", True)):
            t0 = await _now(tab)
            await tab.locator("[data-testid='stSidebar'] a", has_text=page_name).first.click()
            room.latencies[key].append(await _settle(tab, t0, figure))
            await _check(tab, who, room, text)
            if page_name == "Attention":
                head = tab.locator(".gb-v-attention select[data-role='head']")  # the view drawn in the browser
                await head.wait_for()
                t0 = await _now(tab)
                await head.select_option(str(1 + i % 3))
                room.latencies["pick a head"].append(await _settle(tab, t0, figure=True))
                await _check(tab, who, room)
            else:
                thumb = tab.locator(".gb-v-sampling input[data-role='temperature']")  # the sampling lab's slider
                await thumb.focus()
                t0 = await _now(tab)
                await thumb.press("ArrowLeft")
                room.latencies["move temperature"].append(await _settle(tab, t0, figure=True))
                t0 = await _now(tab)
                await tab.get_by_role("button", name="Draw one token").click()
                room.latencies["draw a token"].append(await _settle(tab, t0, figure=True))
                await _check(tab, who, room, text)
    except Exception as e:  # noqa: BLE001 - a failed attendee is an error of the run, reported, not raised
        room.errors.append(f"{who}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    finally:
        await context.close()


async def run_room(base: str, n: int, timeout_s: float, stagger_s: float = 0.5) -> Room:
    """N attendees at once (each starting `stagger_s` after the last, as a room opening a link does)."""
    from playwright.async_api import async_playwright

    room = Room()
    async with async_playwright() as p:
        options = {"executable_path": CHROMIUM} if Path(CHROMIUM).exists() else {}
        browser = await p.chromium.launch(args=CHROMIUM_ARGS, **options)
        t = time.perf_counter()

        async def one(i: int) -> None:
            await asyncio.sleep(i * stagger_s)
            await attendee(browser, base, i, room)

        try:
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout_s)
        except asyncio.TimeoutError:
            room.errors.append(f"the run passed its {timeout_s:.0f} s limit and was stopped")
        room.wall_s = time.perf_counter() - t
        await browser.close()
    return room


def start_server(port: int, env: dict[str, str] | None = None, root: Path = ROOT) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"glassbox-room-{port}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"streamlit did not start on port {port}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(alone: Room, room: Room, n: int, sampler: Sampler) -> None:
    print(f"\n{'interaction':<18} {'alone p50':>9} {f'{n} p50':>8} {f'{n} p95':>8} {f'{n} max':>8} "
          f"{'p95 / alone':>11}  (seconds)")
    for k in INTERACTIONS:
        a, r = alone.latencies[k], room.latencies[k]
        base = statistics.median(a) if a else float("nan")
        print(f"{k:<18} {base:9.2f} {percentile(r, 0.5):8.2f} {percentile(r, 0.95):8.2f} "
              f"{max(r) if r else float('nan'):8.2f} {percentile(r, 0.95) / base if a else float('nan'):10.1f}x"
              f"  ({len(r)} of {n})")
    rss = sampler.rss
    print(f"\nerrors: {len(room.errors) + len(alone.errors)}")
    for e in (alone.errors + room.errors)[:20]:
        print(f"  {e}")
    total = sampler.cpu_server + sampler.cpu_browsers
    print(f"wall time of the {n}-session run: {room.wall_s:.0f} s")
    if rss:
        print(f"server RSS: start {rss[0] / 2**20:,.0f} MB, peak {max(rss) / 2**20:,.0f} MB, "
              f"end {rss[-1] / 2**20:,.0f} MB")
    print(f"CPU seconds during both runs: server {sampler.cpu_server:,.0f}, browsers {sampler.cpu_browsers:,.0f} "
          f"({sampler.cpu_browsers / total:.0%} of the two)" if total else "CPU: not measured")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--url", help="an app already running (default: start one on a free port)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds; the whole run stops by itself then")
    ap.add_argument("--stagger", type=float, default=0.5, help="seconds between attendees arriving")
    ap.add_argument("--app-dir", type=Path, default=ROOT,
                    help="serve the app of another checkout (e.g. an older commit, to compare)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="set for the server, e.g. --env GLASSBOX_FORWARD_THREADS=2 (repeatable)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"{args.sessions} sessions, {os.cpu_count()} CPUs, load average {load:.1f} before the run")
    if load > 0.5:
        print("note: the machine is busy; every figure below is inflated by what else runs")
    proc = None
    if args.url:
        base = args.url.rstrip("/")
        pid = None
    else:
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = start_server(port, dict(e.split("=", 1) for e in args.env), root=args.app_dir)
        base, pid = f"http://127.0.0.1:{port}", proc.pid
    sampler = Sampler(pid)
    sampler.start()
    try:
        alone = asyncio.run(run_room(base, 1, args.timeout))
        room = asyncio.run(run_room(base, args.sessions, args.timeout, args.stagger))
    finally:
        sampler.stop()
        if proc is not None:
            stop_server(proc)
    report(alone, room, args.sessions, sampler)


if __name__ == "__main__":
    main()
