"""Readable on a projector: at 1280x720 (the smallest common projector) with the sidebar open, every view of
every page draws no figure text under ui.plots.MIN_FONT_PX and no table wider than the screen; in presenter mode
every figure a tour step shows draws none under ui.plots.PRESENTER_FONT_PX; and the exported all-heads PNG
keeps its labels apart, with the wider font an export falls back to."""
from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import ui.registry
from conftest import open_app, wait_for_app
from ui.plots import MIN_FONT_PX, PNG_SCALE, PRESENTER_FONT_PX
from ui.workshop import tour

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Home, then every registered page by its URL path (the script's name without its number): a new page is walked too.
PAGES = ["" if p.script == "app.py" else Path(p.script).stem.split("_", 1)[1] for p in ui.registry.PAGES]
MAIN = "[data-testid='stMain']"
PANEL = ".st-key-gb_tour"

# Every visible text of every drawn figure with its size on screen (its font size times the scale of every
# transform above it: Plotly shrinks text that does not fit a bar or a box with a transform, not a font size),
# and the box of every table against the window.
# The figures are Plotly's and the views drawn in the browser (ui/views: SVG over a canvas). `onScreen`: only
# figures inside the window (what a tour step shows).
MEASURE_JS = """([least, onScreen]) => {
  const small = [], tables = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot, .gb-v .gb-v-fig')) {
    const box = gd.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // in a closed tab or expander
    if (onScreen && (box.bottom <= 0 || box.top >= window.innerHeight)) continue;
    const name = ((gd._context || {}).toImageButtonOptions || {}).filename || gd.dataset.name || 'a figure';
    for (const t of gd.querySelectorAll('svg text')) {
      const s = (t.textContent || '').trim(), r = t.getBoundingClientRect(), css = getComputedStyle(t);
      if (!s || r.width === 0 || css.visibility === 'hidden' || css.display === 'none' || css.opacity === '0') continue;
      const m = t.getScreenCTM(), k = m ? Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)) : 1;
      const px = parseFloat(css.fontSize) * k;
      if (px < least - 0.05) small.push(`${name}: "${s.slice(0, 30)}" at ${px.toFixed(1)} px`);
    }
  }
  for (const el of document.querySelectorAll("[data-testid='stDataFrame'], [data-testid='stTable']")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    const table = el.querySelector('table'), wrap = table ? table.parentElement : null;
    const hidden = wrap && wrap.scrollWidth > wrap.clientWidth + 1
      && !['auto', 'scroll'].includes(getComputedStyle(wrap).overflowX);
    tables.push({what: el.dataset.testid, left: r.left, right: r.right, width: window.innerWidth, hidden});
  }
  return {small, tables};
}"""


def _tabs(tab) -> list[str]:
    return [t.inner_text().strip() for t in tab.locator(MAIN).get_by_role("tab").all()]


def _open_expanders(tab) -> None:
    for summary in tab.locator(f"{MAIN} [data-testid='stExpander'] details:not([open]) > summary").all():
        if summary.is_visible():
            summary.click()
    tab.wait_for_timeout(400)  # a figure revealed by an expander draws at its new width


def _problems(tab, where: str, least: float = MIN_FONT_PX, on_screen: bool = False) -> list[str]:
    found = tab.evaluate(MEASURE_JS, [least, on_screen])
    out = [f"{where}: {s}" for s in found["small"]]
    for t in found["tables"]:
        if t["right"] > t["width"] + 1 or t["left"] < -1:
            out.append(f"{where}: a {t['what']} reaches past the window ({t['left']:.0f} to {t['right']:.0f} px)")
        if t["hidden"]:
            out.append(f"{where}: a {t['what']} is wider than its box and does not scroll")
    return out


def test_every_view_is_readable_at_1280x720(browser, app_server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    problems: list[str] = []
    seen = 0
    try:
        for page in PAGES:
            open_app(tab, f"{app_server}/{page}")
            labels = _tabs(tab)
            for label in labels or [""]:
                if label:
                    tab.locator(MAIN).get_by_role("tab", name=label, exact=True).first.click()
                    wait_for_app(tab)
                _open_expanders(tab)
                where = f"{page or 'Home'}{' · ' + label if label else ''}"
                problems += _problems(tab, where)
                seen += tab.evaluate("document.querySelectorAll('.js-plotly-plot, .gb-v .gb-v-fig').length")
    finally:
        context.close()
    assert seen > 20  # the walk drew the pages' figures; an empty walk proves nothing
    assert problems == []


def test_every_tour_step_is_legible_in_presenter_mode(browser, app_server: str) -> None:
    """Presenter mode at 1280x720: every figure a tour step shows on screen draws no text under
    PRESENTER_FONT_PX (Plotly's through ui.plots.presented, the browser's views through views.css and sizes())."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    problems: list[str] = []
    seen = 0
    try:
        open_app(tab, app_server + "/?present=1")
        tab.locator(MAIN).get_by_role("button", name="Take the guided tour").click()
        for step in tour.steps():
            tab.wait_for_url(re.compile(rf"[?&]tour={step.number}(&|$)"))
            wait_for_app(tab)
            tab.locator(step.figure).first.wait_for(state="visible")
            tab.wait_for_function(f"""() => {{ const el = document.querySelector({step.figure!r});
                if (!el) return false; const r = el.getBoundingClientRect();
                return r.height > 20 && r.bottom <= window.innerHeight; }}""", timeout=30_000)
            tab.wait_for_timeout(300)  # a figure settles its labels after its first draw
            problems += _problems(tab, f"step {step.number} ({step.title})", PRESENTER_FONT_PX, on_screen=True)
            seen += tab.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot, .gb-v .gb-v-fig')]
                .filter(f => { const r = f.getBoundingClientRect(); return r.height > 0 && r.top < innerHeight
                               && r.bottom > 0; }).length""")
            tab.locator(PANEL).get_by_role("button", name=re.compile("^(Next|Finish)")).click()
    finally:
        context.close()
    assert seen > 10  # the steps' figures were on screen
    assert problems == [], "\n".join(problems)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# The all-heads figure (drawn in the browser, ui/views) as its PNG button exports it: its SVG, with the page's
# font swapped for a wide system one (an exported image cannot use the page's web font), drawn in the page;
# returns the boxes of its tick labels and of the image, and the size the figure is shown at.
EXPORT_JS = """() => {
  const shown = document.querySelector('.gb-v-overview svg');
  const text = new XMLSerializer().serializeToString(shown).replace(/font-family:[^;"]*/g,
                                                                    'font-family: DejaVu Sans, sans-serif');
  const holder = document.createElement('div');
  holder.style.cssText = 'position: absolute; left: 0; top: 0; z-index: 99999; background: white';
  holder.innerHTML = text;
  document.body.appendChild(holder);
  const frame = holder.querySelector('svg').getBoundingClientRect();
  const boxes = anchor => Array.from(holder.querySelectorAll(`text.gb-v-tick[text-anchor="${anchor}"]`)).map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  const out = {frame: {left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom},
               x: boxes('middle'), y: boxes('end'), shown: [Number(shown.getAttribute('width')),
                                                            Number(shown.getAttribute('height'))]};
  holder.remove();
  return out;
}"""


def test_exported_all_heads_png_keeps_its_labels_apart_and_inside(browser, app_server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        open_app(tab, f"{app_server}/Attention")
        tab.wait_for_selector(".gb-v-attention[data-draws]:not([data-draws='0']) .gb-v-overview svg")
        out = tab.evaluate(EXPORT_JS)
        fig = tab.locator(".gb-v-overview")
        fig.hover()
        with tab.expect_download() as got:
            fig.get_by_role("button", name="PNG").click()
        assert got.value.suggested_filename == "glassbox-attention-all-heads.png"
        png = Path(got.value.path()).read_bytes()
    finally:
        context.close()
    # The PNG is the figure as shown, at PNG_SCALE times its pixels.
    width, height = _png_size(png)
    shown_w, shown_h = out["shown"]
    assert (width, height) == (shown_w * PNG_SCALE, shown_h * PNG_SCALE)
    frame = out["frame"]
    assert len(out["x"]) >= 2 and len(out["y"]) >= 2
    for axis in ("x", "y"):
        for t in out[axis]:  # nothing clipped at the image's edges
            assert frame["left"] <= t["left"] and t["right"] <= frame["right"], t
            assert frame["top"] <= t["top"] and t["bottom"] <= frame["bottom"], t
    xs = sorted(out["x"], key=lambda t: t["left"])
    for a, b in zip(xs, xs[1:]):  # head labels side by side, with room between them
        assert a["right"] < b["left"], (a, b)
    ys = sorted(out["y"], key=lambda t: t["top"])
    for a, b in zip(ys, ys[1:]):
        assert a["bottom"] <= b["top"], (a, b)
