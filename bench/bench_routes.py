"""The route for views drawn in the browser, decided by measuring: the attention overview and one head large, each
click on a tile redrawing the head in the browser, as Streamlit Components v2 with our own canvas and SVG code
(ui/views, the route taken) and as Vega-Lite through Altair with a selection parameter (bundled in Streamlit).

    python bench/bench_routes.py [--repeats 5]

Starts `streamlit run` on two one-view pages (written to a temporary folder; both on the built-in model's trace of
the default text) and a one-chart Plotly page, the floor bench/bench_browser.py measures pages against. In
headless Chromium, for each: the browser's script time to open the page (Performance.getMetrics ScriptDuration,
read once quiet) and, but for the floor, the time from a click on a tile to the frame in which the large head
shows the clicked head (in the page's clock: a canvas's pixels or the view's redraw count, checked every
animation frame). Medians of --repeats, pages in turn. Only the ratios mean much.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_browser import CHROMIUM, MINIMAL, quiet_script_s, serve, settle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIEWS = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {root!r})
    import streamlit as st
    from engine import load_pretrained, run_trace
    from ui.models import default_model_dir
    from ui.state import DEFAULT_TEXT
    from ui.views import show_heads

    @st.cache_resource
    def trace():
        model, tok = load_pretrained(default_model_dir())
        return run_trace(model.eval(), tok, DEFAULT_TEXT)

    t = trace()
    n_layer, n_head = t.config.n_layer, t.config.n_head
    show_heads(t, "bench.view", {{"layer": 0, "head": 0, "query": len(t) - 1}}, [("mixed", "")] * (n_layer * n_head),
               {{}}, {{}}, lambda view: None)
""")
ALTAIR = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {root!r})
    import altair as alt
    import pandas as pd
    import streamlit as st
    from engine import load_pretrained, run_trace
    from engine.inspect.heads import stacked_patterns
    from ui.models import default_model_dir
    from ui.state import DEFAULT_TEXT

    @st.cache_resource
    def cells():
        model, tok = load_pretrained(default_model_dir())
        p = stacked_patterns(run_trace(model.eval(), tok, DEFAULT_TEXT))  # [layer, head, q, k]
        L, H, n, _ = p.shape
        step = n + max(1, n // 6)
        rows = [(l, h, q, k, float(p[l, h, q, k])) for l in range(L) for h in range(H) for q in range(n)
                for k in range(q + 1)]
        df = pd.DataFrame(rows, columns=["layer", "head", "q", "k", "w"])
        df["x"], df["y"] = df["head"] * step + df["k"], df["layer"] * step + df["q"]
        return df

    df = cells()
    pick = alt.selection_point(fields=["layer", "head"], value=[{{"layer": 0, "head": 0}}], on="click", clear=False)
    colour = alt.Color("w:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), legend=None)
    overview = alt.Chart(df).mark_rect().encode(
        x=alt.X("x:O", axis=None), y=alt.Y("y:O", axis=None), color=colour,
        tooltip=["layer", "head", "q", "k", "w"]).add_params(pick).properties(width=300, height=300, title="All heads")
    head = alt.Chart(df).mark_rect().encode(
        x=alt.X("k:O", title="key"), y=alt.Y("q:O", title="query"), color=colour,
        tooltip=["q", "k", "w"]).transform_filter(pick).properties(width=420, height=420, title="The chosen head")
    st.altair_chart(alt.hconcat(overview, head))
""")
# From the next pointer press to the first animation frame in which `changed()` holds (checked every frame).
ARM_JS = """(kind) => { window.__gbRedraw = new Promise(resolve => {
  let start = null;
  const canvas = () => document.querySelector('[data-testid="stVegaLiteChart"] canvas');
  const sign = () => { if (kind === 'views') return document.querySelector('.gb-v').dataset.draws;
    const c = canvas(), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0; for (let i = 0; i < d.length; i += 7) s = (s * 31 + d[i]) | 0; return s; };
  const before = sign();
  document.addEventListener('pointerdown', () => { start = performance.now();
    const frame = () => sign() !== before ? resolve(performance.now() - start) : requestAnimationFrame(frame);
    requestAnimationFrame(frame); }, {capture: true, once: true});
}); }"""


def click_tile(tab, kind: str) -> None:
    """Click a tile of the overview (layer 2, head 1 of 4 x 4) well inside it."""
    if kind == "views":
        box = tab.locator(".gb-v-overview .gb-v-hit").bounding_box()
    else:  # Vega draws the two views on one canvas; the overview is the first 300 x 300 after the title
        box = tab.locator("[data-testid='stVegaLiteChart'] canvas").bounding_box()
        box = {"x": box["x"] + 5, "y": box["y"] + 25, "width": 300, "height": 300}
    tab.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    tab.wait_for_timeout(200)  # a tooltip may open first: not part of the redraw
    tab.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)


def measure(browser, base: str, kind: str | None) -> tuple[float, float | None]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    cdp = context.new_cdp_session(tab)
    cdp.send("Performance.enable")
    tab.goto(base)
    settle(tab)
    if kind == "altair":
        tab.wait_for_selector("[data-testid='stVegaLiteChart'] canvas", timeout=60_000)
    opened = quiet_script_s(tab, cdp)
    redraw = None
    if kind:
        tab.evaluate(ARM_JS, kind)
        click_tile(tab, kind)
        redraw = tab.evaluate("window.__gbRedraw") / 1000
    context.close()
    return opened, redraw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {"one-chart page": MINIMAL, "Components v2 + canvas/SVG (ui/views)": VIEWS.format(root=str(ROOT)),
                   "Vega-Lite via Altair, selection param": ALTAIR.format(root=str(ROOT))}
        kinds = dict(zip(scripts, (None, "views", "altair")))
        servers = {}
        try:
            for i, (name, code) in enumerate(scripts.items()):
                path = Path(tmp) / f"page{i}.py"
                path.write_text(code)
                servers[name] = serve(path, Path(tmp))
            runs: dict[str, list[tuple]] = {name: [] for name in scripts}
            with sync_playwright() as p:
                options = {"executable_path": str(CHROMIUM)} if CHROMIUM.exists() else {}
                browser = p.chromium.launch(args=["--headless", "--no-sandbox"], **options)
                for name in scripts:  # warm-up: caches filled, the model loaded
                    measure(browser, servers[name][1], kinds[name])
                for _ in range(args.repeats):
                    for name in scripts:
                        runs[name].append(measure(browser, servers[name][1], kinds[name]))
                browser.close()
        finally:
            for proc, _ in servers.values():
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
    floor = statistics.median(r[0] for r in runs["one-chart page"])
    print(f"load average {os.getloadavg()[0]:.2f} at the end; medians of {args.repeats}")
    print(f"{'route':42} {'open: script s':>14} {'x one-chart':>11}  tile click to the head redrawn")
    for name, r in runs.items():
        opened = statistics.median(x[0] for x in r)
        click = "" if r[0][1] is None else f"{statistics.median(x[1] for x in r) * 1000:.0f} ms"
        print(f"{name:42} {opened:14.2f} {opened / floor:11.2f}  {click}")


if __name__ == "__main__":
    main()
