"""The views drawn in the browser (ui/views), in Chromium: the numbers they show are the Trace's, picking and
sliding redraw in the browser and reach the session (the URL follows) with a few kilobytes back from the server
instead of the view's data, the keyboard works, and token text stays text."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import open_app, wait_for_app
from engine import SamplingSettings, load_pretrained, load_tokenizer, run_trace, sampling_stages
from ui.models import default_model_dir
from ui.state import DEFAULT_TEXT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
ATTENTION, SAMPLING, LENS = ".gb-v-attention", ".gb-v-sampling", ".gb-v-lens-view"


@pytest.fixture(scope="module")
def trace():
    model, _ = load_pretrained(default_model_dir())
    return run_trace(model.eval(), load_tokenizer(default_model_dir()), DEFAULT_TEXT)


def _drawn(tab, root: str) -> int:
    tab.wait_for_selector(f"{root}[data-draws]:not([data-draws='0'])", timeout=60_000)
    return int(tab.get_attribute(root, "data-draws"))


def _redrawn(tab, root: str, before: int) -> None:
    tab.wait_for_function(f"() => Number(document.querySelector({root!r}).dataset.draws) > {before}", timeout=10_000)


def _received(tab) -> list[int]:
    """Sizes of the websocket frames the page receives from now on."""
    sizes: list[int] = []
    tab.on("websocket", lambda ws: ws.on("framereceived", lambda f: sizes.append(len(f))))
    return sizes


def _table(tab, selector: str) -> list[list[str]]:
    return tab.eval_on_selector_all(f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def _no_failure(tab) -> None:
    assert tab.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in tab.inner_text("[data-testid='stMain']")


def _click_cell(tab, figure: str, row: float, col: float, rows: int, cols: int) -> None:
    """Click the middle of cell (row, col) of a heatmap drawn with `rows` x `cols` cells."""
    hit = tab.locator(f"{figure} .gb-v-hit")
    hit.scroll_into_view_if_needed()
    box = hit.bounding_box()
    tab.mouse.click(box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows)


def test_attention_numbers_are_the_traces_and_a_click_costs_the_server_little(page, app_server: str, trace) -> None:
    frames = _received(page)
    open_app(page, app_server + "/Attention")
    draws = _drawn(page, ATTENTION)
    n = len(trace)
    patterns = torch.stack([trace.pattern(layer, h) for layer in range(4) for h in range(4)]).reshape(4, 4, n, n)

    def shown_weights(layer: int, head: int, query: int) -> None:
        rows = _table(page, f"{ATTENTION} .gb-v-topkeys")
        assert len(rows) == min(8, query + 1)
        for position, _, weight in rows:
            assert float(weight) == pytest.approx(float(patterns[layer, head, query, int(position)]), abs=5e-4)

    assert page.locator(f"{ATTENTION} .gb-v-head .gb-v-title").text_content().startswith("Layer 0, head 0")
    shown_weights(0, 0, n - 1)

    # A tile of the overview: the large view and the line view follow in the browser; the session learns it.
    frames.clear()
    side, gap = n, max(1, n // 6)
    step = side + gap
    _click_cell(page, f"{ATTENTION} .gb-v-overview", 2 * step + side / 2, 1 * step + side / 2, 4 * step - gap, 4 * step - gap)
    _redrawn(page, ATTENTION, draws)
    assert page.locator(f"{ATTENTION} .gb-v-head .gb-v-title").text_content().startswith("Layer 2, head 1")
    shown_weights(2, 1, n - 1)
    page.wait_for_url(re.compile(r"layer=2.*head=1|head=1.*layer=2"))
    wait_for_app(page)
    assert sum(frames) < 20_000, frames  # the view's data is not sent again: a reference to it is
    assert page.locator(f"{ATTENTION} select[data-role='layer']").input_value() == "2"

    # A row of the large view picks the query token.
    draws = _drawn(page, ATTENTION)
    _click_cell(page, f"{ATTENTION} .gb-v-head", 5, 1, n, n)
    _redrawn(page, ATTENTION, draws)
    assert page.locator(f"{ATTENTION} .gb-v-h").text_content() == f"What “{trace.tokens[5]}” looks at"
    shown_weights(2, 1, 5)
    page.wait_for_url(re.compile(r"token=5(&|$)"))

    # The keyboard: Tab to the overview, arrows, Enter.
    page.locator(f"{ATTENTION} .gb-v-overview").focus()
    for key in ("ArrowDown", "ArrowRight", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function(f"() => document.querySelector('{ATTENTION} .gb-v-head .gb-v-title')"
                           ".textContent.startsWith('Layer 3, head 2')")
    assert page.evaluate("document.activeElement.dataset.role") == "gb-v-overview"  # focus stays on the overview
    page.wait_for_url(re.compile(r"layer=3"))
    _no_failure(page)


def _metrics(tab) -> dict[str, str]:
    return dict(tab.eval_on_selector_all(f"{SAMPLING} .gb-v-metric", "ms => ms.map(m => "
                                         "[m.children[0].textContent, m.children[1].textContent])"))


def _bar_texts(tab) -> list[str]:
    return tab.eval_on_selector_all(f"{SAMPLING} .gb-v-dist svg text", "ts => ts.map(t => t.textContent)")


def test_the_sampling_lab_shows_the_engines_numbers_as_the_temperature_moves(page, app_server: str, trace) -> None:
    open_app(page, app_server + "/Next_token")
    draws = _drawn(page, SAMPLING)
    logits = trace.logits[-1]

    def check(temperature: float) -> None:
        st = sampling_stages(logits, SamplingSettings(temperature=temperature))
        m = _metrics(page)
        assert m["Entropy"] == f"{st.entropy_after:.2f} bits" and m["Can be drawn"] == f"{int(st.kept.sum()):,}"
        top = float(st.probs_after[int(st.order[0])])
        assert f"{top:.1%}" in _bar_texts(page)  # the first bar's text

    check(1.0)
    thumb = page.locator(f"{SAMPLING} input[data-role='temperature']")
    thumb.focus()
    for _ in range(5):  # 1 -> 0.5, one option per key
        thumb.press("ArrowLeft")
    _redrawn(page, SAMPLING, draws)
    assert thumb.get_attribute("aria-valuetext") == "0.5"
    check(0.5)
    page.wait_for_url(re.compile(r"temp=0\.5(&|$)"))  # the settings reached the session
    wait_for_app(page)
    assert page.evaluate("document.activeElement.dataset.role") == "temperature"

    thumb.press("Home")  # greedy
    page.get_by_text("T = 0: greedy.").wait_for()
    page.wait_for_url(re.compile(r"temp=0(&|$)"))
    wait_for_app(page)
    draw = page.get_by_role("button", name="Draw one token")
    for n in (1, 2):
        draw.click()
        page.wait_for_function(f"() => document.querySelectorAll('.gb-nt-draw').length === {n}", timeout=60_000)
        wait_for_app(page)
    first, second = page.locator(".gb-nt-draw").all_inner_texts()
    assert first == second and first.strip()
    _no_failure(page)


def test_the_logit_lens_table_follows_a_clicked_column(page, app_server: str, trace) -> None:
    open_app(page, app_server + "/Feed_forward?tab=logit-lens")
    draws = _drawn(page, LENS)
    n = len(trace) - 1  # the start marker is left out
    assert page.locator(f"{LENS} .gb-v-h4 strong").text_content() == f"Position {len(trace) - 1}"
    _click_cell(page, f"{LENS} .gb-v-lens", 0, 2, 9, n)
    _redrawn(page, LENS, draws)
    assert page.locator(f"{LENS} .gb-v-h4 strong").text_content() == "Position 3"
    last = _table(page, f"{LENS} .gb-v-lens-table")[-1]
    probs = trace.logits[3].softmax(-1)
    token, share = last[1].rsplit("  ", 1)
    assert share == f"{float(probs.max()):.1%}"  # the model's own output at position 3
    page.wait_for_url(re.compile(r"token=3(&|$)"))
    _no_failure(page)


def test_token_text_is_shown_as_text(page, app_server: str) -> None:
    open_app(page, app_server + "/Attention?text=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20%3Cb%3Ehi")
    _drawn(page, ATTENTION)
    options = page.locator(f"{ATTENTION} select[data-role='query'] option").all_text_contents()
    text = "".join(o.split(" · ", 1)[1] for o in options).replace("␣", " ")
    assert "<img src=x onerror=alert(1)> <b>hi" in text  # every character shown, none read as markup
    assert page.locator(f"{ATTENTION} img").count() == 0 and page.locator(f"{ATTENTION} b").count() == 0
    _no_failure(page)
