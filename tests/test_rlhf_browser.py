"""The Pre-training vs RLHF page in a real browser: add a built-in preference set, tune, and see the reward
margin grow and the tuned model's next-token distribution differ from the original's."""
from __future__ import annotations

import pytest

from conftest import ROOT, open_app, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
ARTIFACTS = ROOT / "test-artifacts"
TRACES = """(name) => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.data && p.data.some(
        t => t.name === name));
    return plot ? plot.data.map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])})) : null;
}"""


def test_mark_a_set_tune_and_see_the_model_change(page, app_server: str) -> None:
    open_app(page, f"{app_server}/Pretraining_vs_RLHF")
    assert page.locator(EXCEPTION).count() == 0
    page.get_by_role("button", name="Add this set's pairs").click()
    page.wait_for_selector("text=/Added [0-9]+ pairs labelled by the rule/", timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Tune a copy of the model on these pairs").click()
    page.wait_for_selector("text=/Tuned for [0-9]+ steps/", timeout=180_000)
    wait_for_app(page)
    page.wait_for_selector("text=4. What changed")
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")

    tuning = page.evaluate(TRACES, "reward margin")
    margin = next(t for t in tuning if t["name"] == "reward margin")["y"]
    assert margin[0] == pytest.approx(0, abs=1e-6) and margin[-1] > margin[0] + 0.5  # the margin grew
    bars = {t["name"]: t["x"] for t in page.evaluate(TRACES, "before (pre-trained)")}
    before, after = bars["before (pre-trained)"], bars["after (tuned)"]
    assert len(before) == len(after) > 1
    assert max(abs(a - b) for a, b in zip(before, after)) > 0.05  # the distribution after differs
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rlhf-tuned.png"), full_page=True)
    # the tuned model is this session's, selectable on every page
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    assert page.get_by_role("option", name="tuned model (yours, this session only)").count() == 1
