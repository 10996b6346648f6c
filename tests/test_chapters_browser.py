"""Four chapters in a real browser, one test each: the key/value cache growing under step-by-step generation,
the Quantization tab switching bit widths, a base and instruct pair on a server that has one (tiny stand-ins),
and circuits on the Train page's time-lapse after a short run."""
from __future__ import annotations

import pytest

from conftest import ROOT, open_app, streamlit_server, wait_for_app
from test_base_vs_instruct import CHATML, save_llama

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
ARTIFACTS = ROOT / "test-artifacts"
# A drawn chart whose title starts with `title` (or which has a trace named `title`): its traces, as Plotly
# computed them (typed arrays read as plain ones).
# (Streamlit's theme wraps a title in <b> tags: they are dropped before comparing.)
PLOT = """(title) => {
    const text = (p) => String(((p.layout || {}).title || {}).text || '').replace(/<[^>]+>/g, '');
    const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => p._fullLayout && p._fullData && (
        text(p).startsWith(title) || p._fullData.some(t => t.name === title)));
    return gd ? gd._fullData.map(t => ({name: t.name || '', type: t.type, x: Array.from(t.x || []),
        rows: t.z ? t.z.length : 0, cols: t.z && t.z[0] ? t.z[0].length : 0,
        dash: t.line ? t.line.dash || '' : ''})) : null;
}"""


def plot(tab, title: str) -> list[dict]:
    """The traces of the chart titled `title` (or with a trace of that name), once Plotly has drawn it."""
    tab.wait_for_function(f"(title) => ({PLOT})(title) !== null", arg=title, timeout=60_000)
    return tab.evaluate(PLOT, title)


def clean(tab) -> None:
    assert tab.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in tab.inner_text("[data-testid='stMain']")


def shot(tab, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_cache_strip_grows_with_each_step(page, app_server: str) -> None:
    open_app(page, f"{app_server}/Next_token?text=Once+upon+a+time")
    page.wait_for_selector("text=Behind every step: the key/value cache")
    n_prompt = plot(page, "The cache at step")[0]["cols"]
    for _ in range(3):
        page.get_by_role("button", name="Next token", exact=True).click()
        wait_for_app(page)
    strip = plot(page, "The cache at step 3")
    assert strip[0]["cols"] == n_prompt + 2 and strip[0]["rows"] == 16  # 4 layers x 4 heads
    page.wait_for_selector("text=Largest difference in any logit")
    clean(page)
    page.get_by_text("The cache at step 3").first.scroll_into_view_if_needed()
    shot(page, "kv-cache.png")


def test_the_quantization_tab_switches_bit_widths(page, app_server: str) -> None:
    open_app(page, f"{app_server}/Feed_forward?tab=quantization&bits=4")
    page.wait_for_selector("text=Simulated 4-bit")
    bars = plot(page, "How far each next-token distribution moved (4-bit, simulated")
    assert len(bars[0]["x"]) > 100  # one bar per position of the held-out story
    page.get_by_text("8 · real int8", exact=True).click()  # a segmented control's option
    wait_for_app(page)
    page.wait_for_selector("text=Real int8")
    assert plot(page, "How far each next-token distribution moved (8-bit, real int8")
    assert "bits=8" in page.url
    clean(page)
    shot(page, "quantization.png")


def test_a_base_and_instruct_pair_side_by_side(page, tmp_path) -> None:
    models = tmp_path / "models"
    save_llama(models / "tiny-llama", 0, None)
    save_llama(models / "tiny-llama-Instruct", 1, CHATML)
    env = {"GLASSBOX_MODELS_DIR": str(models), "GLASSBOX_HUB_DIR": str(tmp_path / "hub")}
    with streamlit_server(tmp_path / "streamlit.log", env) as base:
        open_app(page, f"{base}/Pretraining_vs_RLHF")
        page.wait_for_selector("text=Base vs instruct: what tuning did to a real model")
        special = page.locator(".gb-bvi span.sp")
        assert special.count() == 3 and special.first.inner_text() == "<|im_start|>"  # shown as what it is
        page.get_by_role("button", name="Compare both models").click()
        wait_for_app(page)
        lens = plot(page, "Where their logit-lens predictions part")
        assert lens[0]["rows"] == 5  # embeddings, then after attention and after MLP in each of 2 layers
        assert page.get_by_text("tiny-llama-Instruct · seed 11").count() == 1
        clean(page)
        shot(page, "base-vs-instruct.png")


def test_circuits_on_the_time_lapse_after_a_short_run(page, app_server: str) -> None:
    open_app(page, f"{app_server}/Train")
    assert [t["type"] for t in plot(page, "Every head of")] == ["heatmap"] * 3  # the built-in model's, before a run
    page.get_by_role("button", name="tiny: 30 seconds").click()
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_selector("text=/Step [0-9,]{3,} of/", timeout=120_000)  # a few checkpoints in
    page.get_by_role("button", name="Stop training").click()
    page.wait_for_selector("text=4. Time-lapse: scrub through training", timeout=60_000)
    wait_for_app(page)
    traces = plot(page, "induction score")
    induction = next(t for t in traces if t["name"] == "induction score")
    assert len(induction["x"]) >= 2 and sum(1 for t in traces if t["dash"] == "dot") == 3
    clean(page)
    page.get_by_text("Circuits forming").first.scroll_into_view_if_needed()
    shot(page, "circuits.png")
