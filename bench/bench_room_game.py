"""The workshop room's game under load: thirty attendees join a room and answer a round within 20 seconds, against
`streamlit run` on 127.0.0.1, without browsers (bench/st_client.py speaks Streamlit's websocket protocol).

    python bench/bench_room_game.py [--attendees 30] [--window 20] [--seed 0]

A presenter session opens a room and a round; each attendee session opens the join link (`/Room?room=CODE`),
joins, waits until its own page shows the round (its once-a-second fragment finds it, as in a browser), thinks
for a random time within the window, and sends a guess. Measured:

- submit -> counted: from an attendee's submit to the presenter's screen showing a count that includes it (the
  k-th guess the server confirmed is counted once the presenter's "Answers" shows k or more); p50, p95, max.
  The same for one attendee alone, first, as the reference in the same run.
- lost answers: guesses the server confirmed to their sender that are not in the database, or not in the
  presenter's final count.
- server CPU: the server process's CPU seconds from the round's opening until every answer is counted, per
  attendee; and while the room sits idle, the cost of its sessions' polls per attendee per minute.
- the store alone: the same thirty guesses written by threads through ui.room.store, with a reader polling the
  count, so the database's own share of the latency shows.

Prints the load average at the start and the end. Bounded: every wait has a timeout, the run stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from st_client import Client  # noqa: E402  (bench/ is the script's folder)

CODE = re.compile(r'gb-room-code[^>]*>([A-Z]+-[0-9]{2})<')
ANSWERS = "Answers in round {}"
WORDS = ("girl", "boy", "dog", "cat", "bird", "fox", "bear", "princess", "king", "house")


def start_server(db: str, log: Path) -> tuple[subprocess.Popen, str]:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GLASSBOX_ROOM_DB": db}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
           "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, base
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not start; see {log}")


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class Presenter:
    """The presenter's tab: opens a room and rounds, and notes when its screen shows each count."""

    def __init__(self, base: str) -> None:
        self.seen: list[tuple[float, int]] = []  # (time, the answers count shown)
        self.round = 0
        self.client = Client(base, "Room", listener=self._saw)

    def _saw(self, kind: str, element, at: float) -> None:
        if kind == "metric" and element.label == ANSWERS.format(self.round):
            self.seen.append((at, int(element.body)))

    async def open_room(self) -> str:
        await self.client.connect()
        await self.client.press("room.open", timeout=180)  # pre-warms the prompts' traces
        return CODE.search(self.client.texts()).group(1)

    async def open_round(self) -> float:
        self.round += 1
        self.seen.clear()
        await self.client.press(f"room.open_round.{self.round}")
        return time.monotonic()

    def counted_at(self, k: int, after: float) -> float | None:
        return next((t for t, n in self.seen if n >= k and t >= after), None)


async def attendee(base: str, code: str, i: int, rnd: int, think_s: float, out: dict) -> None:
    client = Client(base, "Room", query=f"room={code}")
    try:
        await client.connect()
        client.set_text("room.name", f"bench {i}")
        client.set_text("room.code_box", code)
        await client.press("FormSubmitter:room.join-Join")
        deadline = time.monotonic() + 60
        while not client.has_widget(f"room.guess.{rnd}"):  # the page shows the round by itself
            if time.monotonic() > deadline:
                raise TimeoutError("the round never showed")
            await asyncio.sleep(0.05)
        out["saw"] = time.monotonic()
        await asyncio.sleep(think_s)
        client.set_text(f"room.guess.{rnd}", random.choice(WORDS))
        out["submit"] = time.monotonic()
        await client.press(f"FormSubmitter:room.guess_form.{rnd}-Send my guess")
        out["ack"] = time.monotonic()
        out["counted"] = "**Counted.**" in client.texts()
        out["client"] = client
    except Exception as e:  # noqa: BLE001  (a benchmark reports every failure and goes on)
        out["error"] = f"{type(e).__name__}: {e}"
        await client.close()


async def play(base: str, presenter: Presenter, n: int, window: float, server: psutil.Process) -> dict:
    """One round for `n` attendees who joined beforehand; returns the measurements."""
    code = presenter.code
    results = [dict() for _ in range(n)]
    rnd = presenter.round + 1
    # Attendees arrive over a few seconds (scanning the QR code), then the round opens.
    tasks = []
    for i in range(n):
        think = random.uniform(1.0, window - 5.0)
        tasks.append(asyncio.create_task(attendee(base, code, i, rnd, think, results[i])))
        await asyncio.sleep(min(0.2, 5.0 / n))
    await asyncio.sleep(2.0)  # everyone in the room
    cpu0 = cpu_s(server)
    opened = await presenter.open_round()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=window + 90)
    acked = sorted((r for r in results if r.get("counted")), key=lambda r: r["ack"])
    deadline = time.monotonic() + 15
    while presenter.counted_at(len(acked), 0) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    cpu_round = cpu_s(server) - cpu0
    latencies, uncounted = [], 0
    for k, r in enumerate(acked, start=1):
        t = presenter.counted_at(k, r["submit"])
        if t is None:
            uncounted += 1
        else:
            latencies.append(t - r["submit"])
    last = max((t for t, _ in presenter.seen), default=opened) - opened
    # The room sits idle with a closed-over round open: what do its polls cost?
    cpu1, t1 = cpu_s(server), time.monotonic()
    await asyncio.sleep(10.0)
    idle = (cpu_s(server) - cpu1) / (time.monotonic() - t1) * 60
    for r in results:
        if "client" in r:
            await r["client"].close()
    shown = presenter.seen[-1][1] if presenter.seen else 0
    return dict(latencies=latencies, acked=len(acked), uncounted=uncounted, shown=shown, last_s=last,
                errors=[r["error"] for r in results if "error" in r], cpu_round=cpu_round, idle_per_min=idle,
                submit_span=max((r["submit"] for r in acked), default=opened) - opened)


def store_alone(db: str, n: int) -> list[float]:
    """The same guesses written through the store by threads, a reader polling the count every 20 ms."""
    from ui.room.store import RoomStore

    store = RoomStore(db)
    room, token = store.create_room("glassbox-stories", n + 5, 1)
    people = [store.join(room.id, f"s{i}")[0] for i in range(n)]
    rnd = store.open_round(room.id, token, "Once upon a time, there was a little")
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append((time.monotonic(), store.live(room.id).answers))
            time.sleep(0.02)

    reader = threading.Thread(target=read)
    reader.start()
    sent: list[float] = []
    lock = threading.Lock()

    def send(a: int) -> None:
        time.sleep(random.uniform(0, 2))
        t = time.monotonic()
        store.guess(room.id, rnd.id, a, " girl", 1, "␣girl", 1)
        with lock:
            sent.append(t)

    threads = [threading.Thread(target=send, args=(a,)) for a in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.2)
    stop.set()
    reader.join()
    store.engine.dispose()
    sent.sort()
    return [next(t for t, c in seen if c >= k and t >= s) - s for k, s in enumerate(sent, start=1)]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def main_async(args, base: str, server: psutil.Process, db: str) -> None:
    presenter = Presenter(base)
    presenter.code = await presenter.open_room()
    alone = await play(base, presenter, 1, args.window, server)
    button = f"room.close.{presenter.round}"
    await presenter.client.press(button)
    room = await play(base, presenter, args.attendees, args.window, server)
    await presenter.client.close()
    from ui.room.store import RoomStore

    store = RoomStore(db)
    r = store.room(presenter.code)
    in_db = store.live(r.id).answers
    store.engine.dispose()
    lost = room["acked"] - min(in_db, room["shown"])
    direct = store_alone(db, args.attendees)
    print(f"\n{args.attendees} attendees, answers within {args.window:.0f} s of the round opening "
          f"(the last submitted {room['submit_span']:.1f} s after it, counted {room['last_s']:.1f} s after it)")
    print(f"| measure | one attendee alone | {args.attendees} at once | ratio |\n| --- | ---: | ---: | ---: |")
    for name, q in (("submit -> counted on the presenter's screen, p50 (s)", 50), ("... p95 (s)", 95)):
        a, b = pct(alone["latencies"], q), pct(room["latencies"], q)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}x |")
    print(f"| ... max (s) | {max(alone['latencies'], default=float('nan')):.2f} | "
          f"{max(room['latencies'], default=float('nan')):.2f} | |")
    print(f"| server CPU for the round, per attendee (CPU s) | {alone['cpu_round']:.2f} | "
          f"{room['cpu_round'] / args.attendees:.2f} | |")
    print(f"| server CPU while the room waits, per attendee per minute (CPU s) | {alone['idle_per_min']:.2f} | "
          f"{room['idle_per_min'] / (args.attendees + 1):.2f} | |")
    print(f"\nconfirmed to their senders: {room['acked']}; in the database: {in_db}; on the presenter's screen: "
          f"{room['shown']}; lost: {lost}; never counted on screen: {room['uncounted']}; errors: "
          f"{room['errors'] or 'none'}")
    print(f"the store alone (threads, a reader polling every 20 ms): p50 {pct(direct, 50) * 1000:.0f} ms, "
          f"p95 {pct(direct, 95) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attendees", type=int, default=30)
    ap.add_argument("--window", type=float, default=20.0, help="seconds within which every attendee answers")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    random.seed(args.seed)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="glassbox-room-bench-") as tmp:
        db = f"sqlite:///{tmp}/rooms.db"
        proc, base = start_server(db, Path(tmp) / "streamlit.log")
        try:
            asyncio.run(asyncio.wait_for(main_async(args, base, psutil.Process(proc.pid), db), timeout=600))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
