"""The Attention page in a real browser: clicking a tile of the overview opens that head, clicking a row of
the large view picks that query token (Plotly clicks reach Streamlit through the invisible point layer)."""
from __future__ import annotations

import pytest

from conftest import open_app, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"
EXCEPTION = "[data-testid='stException']"

# Page coordinates of the first point of chart `idx` whose customdata starts with `want` (layer, head) or
# (query,): Plotly's own axis transforms, so the test does not depend on the figure's size.
POINT_JS = """([idx, want]) => {
  const gd = document.querySelectorAll(%r)[idx];
  const tr = gd._fullData.find(t => t.type === 'scattergl');
  const i = tr.customdata.findIndex(c => want.every((v, j) => c[j] === v));
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.d2p(tr.x[i]), box.top + ya._offset + ya.d2p(tr.y[i])];
}""" % CHARTS

SHAPE_JS = """() => {
  const gd = document.querySelectorAll(%r)[0];
  return [gd._fullLayout.yaxis.tickvals.length, gd._fullLayout.xaxis.tickvals.length];
}""" % CHARTS


def _charts_ready(tab, n: int) -> None:
    tab.wait_for_function(f"() => [...document.querySelectorAll({CHARTS!r})].filter(g => g._fullData).length >= {n}",
                          timeout=60_000)


def _title(tab, idx: int) -> str:
    return tab.locator(CHARTS).nth(idx).locator(".gtitle").text_content()


def _click(tab, idx: int, want: list[int]) -> None:
    tab.locator(CHARTS).nth(idx).scroll_into_view_if_needed()
    x, y = tab.evaluate(POINT_JS, [idx, want])
    tab.mouse.move(x, y)  # hover first: Plotly reports a click on the point under the pointer
    tab.wait_for_timeout(300)
    tab.mouse.click(x, y)
    wait_for_app(tab)


def test_clicking_a_head_opens_it(page, app_server: str) -> None:
    open_app(page, app_server + "/Attention")
    _charts_ready(page, 3)
    n_layer, n_head = page.evaluate(SHAPE_JS)
    assert _title(page, 1).startswith("Layer 0, head 0")
    layer, head = n_layer - 1, n_head - 1

    _click(page, 0, [layer, head])
    page.wait_for_function(f"() => document.querySelectorAll({CHARTS!r})[1].querySelector('.gtitle')"
                           f".textContent.startsWith('Layer {layer}, head {head}')", timeout=60_000)
    assert page.get_by_role("combobox", name="Layer").input_value() == str(layer)  # the selectbox follows

    _click(page, 1, [3])  # any cell of row 3 of the large view
    page.wait_for_function(f"() => document.querySelectorAll({CHARTS!r})[2].querySelector('.gtitle')"
                           ".textContent.endsWith('query 3')", timeout=60_000)
    assert _title(page, 1).startswith(f"Layer {layer}, head {head}")  # the head stays chosen
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
