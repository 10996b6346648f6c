"""The guided tour walked in presenter mode, as a presenter walks it: how long each step takes to settle.

    python bench/bench_tour.py [--walks 2]

Starts `streamlit run app.py` on 127.0.0.1 and, in headless Chromium at 1280x720 (a projector), opens
`/?present=1`, starts the tour and presses Next through every step, `--walks` times, each in a fresh session
(the first walk is the presenter's first: presenter mode runs the model on every step's text when the tour
starts, and each page's figures are built for the first time; later walks meet a warm server). A step has settled
when the URL names it, the script run is over, every figure on the page has drawn (Plotly's and the views
drawn in the browser) and the step's figure is on screen under the tour's panel, checked every animation
frame; timed from the press of Next. Reported: each step's seconds per walk, and each walk's median and max.
Goal (issue 27): each step settles within 1.5 s median on an idle machine (`uptime` < 0.5); the load average
is printed, as a busy machine inflates every figure.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_browser import CHROMIUM, ROOT, serve, settle  # noqa: E402

sys.path.insert(0, str(ROOT))
from ui.workshop import tour  # noqa: E402

GOAL_S = 1.5
PANEL = ".st-key-gb_tour"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
# Settled: not running, every figure drawn, the step's figure on screen below the tour's panel.
SETTLED_JS = """([figure, panel, idle]) => {
  if (!document.querySelector(idle)) return false;
  if (![...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))) return false;
  if (![...document.querySelectorAll('.gb-v')].every(v => Number(v.dataset.draws) > 0)) return false;
  const el = document.querySelector(figure), bar = document.querySelector(panel);
  if (!el) return false;
  const r = el.getBoundingClientRect(), below = bar ? bar.getBoundingClientRect().bottom : 0;
  return r.height > 20 && r.top >= below - 2 && r.bottom <= window.innerHeight;
}"""


def walk(tab, steps: tuple[tour.Step, ...], start) -> list[float]:
    """Seconds from each press (`start`, then Next) until the step has settled."""
    times = []
    for step in steps:
        t0 = time.perf_counter()
        start() if step is steps[0] else tab.locator(PANEL).get_by_role(
            "button", name=re.compile("^(Next|Finish)")).click()
        tab.wait_for_url(re.compile(rf"[?&]tour={step.number}(&|$)"), timeout=120_000)
        tab.wait_for_timeout(50)  # the rerun the press caused has begun
        tab.wait_for_function(SETTLED_JS, arg=[step.figure, PANEL, IDLE], polling="raf", timeout=120_000)
        times.append(time.perf_counter() - t0)
    tab.locator(PANEL).get_by_role("button", name=re.compile("^Finish")).click()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--walks", type=int, default=2)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    load = os.getloadavg()[0]
    steps = tour.steps()
    proc, base = serve(ROOT / "app.py", ROOT)
    walks: list[list[float]] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            tab = context.new_page()
            tab.set_default_timeout(120_000)
            for _ in range(args.walks):  # each walk a fresh session, as a presenter's reloaded tab
                tab.goto(base + "/?present=1")
                settle(tab)
                walks.append(walk(tab, steps, lambda: tab.locator("[data-testid='stMain']").get_by_role(
                    "button", name="Take the guided tour").click()))
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    print(f"{len(steps)} steps, presenter mode at 1280x720; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"{'step':42} " + " ".join(f"{f'walk {i + 1} s':>9}" for i in range(len(walks))))
    for i, step in enumerate(steps):
        print(f"{step.number:>2} {step.title[:39]:39} " + " ".join(f"{w[i]:9.2f}" for w in walks))
    for i, w in enumerate(walks):
        med = statistics.median(w)
        print(f"walk {i + 1}: median {med:.2f} s, max {max(w):.2f} s; goal: each step within {GOAL_S} s median: "
              f"{'met' if med <= GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
