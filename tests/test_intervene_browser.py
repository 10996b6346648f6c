"""The Intervene page in a real browser: the patching grid runs when the page opens, and clicking a cell of it
shows that cell's patched distribution beside the clean and corrupted runs (the click reaches Streamlit
through the grid's invisible point layer)."""
from __future__ import annotations

import pytest

from conftest import open_app, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"
EXCEPTION = "[data-testid='stException']"
GRID = "Share of the logit difference"

# The chart whose title holds `title`, by index among the page's charts (-1 until it has drawn; Streamlit's
# theme wraps a title in <b>).
INDEX_JS = """(title) => [...document.querySelectorAll(%r)].findIndex(
  g => g._fullLayout && String((g._fullLayout.title || {}).text || '').includes(title))""" % CHARTS

# Page coordinates of the grid point whose customdata starts with (layer, index): Plotly's own axis transforms.
POINT_JS = """([idx, want]) => {
  const gd = document.querySelectorAll(%r)[idx];
  const tr = gd._fullData.find(t => t.type === 'scattergl');
  const i = tr.customdata.findIndex(c => want.every((v, j) => c[j] === v));
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.d2p(tr.x[i]), box.top + ya._offset + ya.d2p(tr.y[i])];
}""" % CHARTS

TITLES_JS = """() => [...document.querySelectorAll(%r)].map(
  g => String(((g._fullLayout || {}).title || {}).text || ''))""" % CHARTS


def _chart(tab, title: str) -> int:
    tab.wait_for_function(f"() => ({INDEX_JS})({title!r}) >= 0", timeout=90_000)
    return tab.evaluate(INDEX_JS, title)


def test_the_grid_runs_and_a_clicked_cell_shows_its_distribution(page, app_server: str) -> None:
    open_app(page, app_server + "/Intervene?tab=activation-patching&pair=bank&grid=resid")
    grid = _chart(page, GRID)
    layer, position = 3, 15  # the last layer at the last position: not the cell shown before any click
    page.locator(CHARTS).nth(grid).scroll_into_view_if_needed()
    x, y = page.evaluate(POINT_JS, [grid, [layer, position]])
    page.mouse.move(x, y)  # hover first: Plotly reports a click on the point under the pointer
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    wait_for_app(page)
    page.wait_for_function(f"() => ({TITLES_JS})().some(t => t.includes('Layer {layer}, position {position}'))",
                           timeout=60_000)
    cell = next(t for t in page.evaluate(TITLES_JS) if f"Layer {layer}, position {position}" in t)
    assert "the next token in three runs" in cell
    assert "cell=3.15" in page.url  # the clicked cell is part of the view a link carries
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
