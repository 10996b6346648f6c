"""The Feed-forward page in a real browser: choosing another layer redraws the activation heatmap."""
from __future__ import annotations

import pytest

from conftest import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
# The activation heatmap, found by its title (the page's other figures may finish drawing first); Plotly keeps
# its data on the element.
HEATMAP_STATE = """() => {
  const g = [...document.querySelectorAll('.js-plotly-plot')].find(
      p => p.layout && p.layout.title && String(p.layout.title.text || '').includes('MLP activations'));
  if (!g || !g.data || !g.layout) return null;
  return {title: g.layout.title.text, z: JSON.stringify(g.data[0].z)};
}"""


def _heatmap(tab) -> dict:
    tab.wait_for_function(f"() => ({HEATMAP_STATE})() !== null", timeout=60_000)
    return tab.evaluate(HEATMAP_STATE)


def test_changing_the_layer_changes_the_heatmap(page, app_server: str) -> None:
    page.goto(app_server + "/Feed_forward")
    page.wait_for_selector("[data-testid='stAppViewContainer']", state="attached", timeout=60_000)
    wait_for_app(page)
    before = _heatmap(page)
    assert "Layer 0 MLP activations" in before["title"]
    layer_box = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").filter(has_text="Layer").first
    layer_box.click()
    page.get_by_role("option", name="layer 1", exact=False).first.click()
    page.wait_for_function(
        f"() => {{ const s = ({HEATMAP_STATE})(); return s && s.title.includes('Layer 1 MLP'); }}", timeout=60_000)
    wait_for_app(page)
    after = _heatmap(page)
    assert after["z"] != before["z"]
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
