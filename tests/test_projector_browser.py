"""Readable on a projector: at 1280x720 (the smallest common projector) with the sidebar open, every view of
every page draws no figure text under ui.plots.MIN_FONT_PX and no table wider than the screen; and the
exported all-heads PNG keeps its labels apart, with the wider font an export falls back to."""
from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

import ui.registry
from conftest import open_app, wait_for_app
from ui.plots import MIN_FONT_PX, PNG_SCALE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Home, then every registered page by its URL path (the script's name without its number): a new page is walked too.
PAGES = ["" if p.script == "app.py" else Path(p.script).stem.split("_", 1)[1] for p in ui.registry.PAGES]
MAIN = "[data-testid='stMain']"

# Every visible text of every drawn figure with its size on screen (its font size times the scale of every
# transform above it: Plotly shrinks text that does not fit a bar or a box with a transform, not a font size),
# and the box of every table against the window.
MEASURE_JS = """(least) => {
  const small = [], tables = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const box = gd.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // in a closed tab or expander
    const name = ((gd._context || {}).toImageButtonOptions || {}).filename || 'a figure';
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


def _problems(tab, where: str) -> list[str]:
    found = tab.evaluate(MEASURE_JS, MIN_FONT_PX)
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
                seen += tab.evaluate("document.querySelectorAll('.js-plotly-plot').length")
    finally:
        context.close()
    assert seen > 20  # the walk drew the pages' figures; an empty walk proves nothing
    assert problems == []


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# The all-heads figure exported as the camera button does (its toImageButtonOptions), as SVG with the page's
# web font swapped for a wide system one (an exported image cannot use the page's font), drawn in the page;
# returns the boxes of its tick labels and of the image.
EXPORT_JS = """async () => {
  const gd = document.querySelector('.js-plotly-plot');
  const opts = Object.assign({}, gd._context.toImageButtonOptions);
  const png = await Plotly.toImage(gd, opts);
  const url = await Plotly.toImage(gd, Object.assign({}, opts, {format: 'svg'}));
  const svg = decodeURIComponent(url.slice(url.indexOf(',') + 1)).replace(/font-family:[^;"]*/g,
                                                                           'font-family: DejaVu Sans, sans-serif');
  const holder = document.createElement('div');
  holder.style.cssText = 'position: absolute; left: 0; top: 0; z-index: 99999; background: white';
  holder.innerHTML = svg;
  document.body.appendChild(holder);
  const frame = holder.querySelector('svg').getBoundingClientRect();
  const boxes = sel => Array.from(holder.querySelectorAll(sel)).map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  const out = {png, frame: {left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom},
               x: boxes('.xtick text'), y: boxes('.ytick text'), shown: [gd._fullLayout.width, gd._fullLayout.height]};
  holder.remove();
  return out;
}"""


def test_exported_all_heads_png_keeps_its_labels_apart_and_inside(browser, app_server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        open_app(tab, f"{app_server}/Attention")
        tab.wait_for_selector(".js-plotly-plot .main-svg")
        out = tab.evaluate(EXPORT_JS)
    finally:
        context.close()
    # The PNG is the figure as shown, at PNG_SCALE times its pixels.
    width, height = _png_size(base64.b64decode(out["png"].split(",", 1)[1]))
    shown_w, shown_h = out["shown"]
    assert abs(width - shown_w * PNG_SCALE) < PNG_SCALE and abs(height - shown_h * PNG_SCALE) < PNG_SCALE
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
