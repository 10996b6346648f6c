"""The Feed-forward page in a real browser: the MLP activations are drawn in the browser (ui/views/activations.py);
choosing another layer (a server choice: the view gets that layer's activations) redraws them with that layer's
most active neurons, and the "Neurons shown" slider redraws in the browser and reaches the session."""
from __future__ import annotations

import pytest

from conftest import open_app, wait_for_app
from engine import load_pretrained, load_tokenizer, run_trace
from engine.inspect.neurons import rank_neurons
from ui.models import default_model_dir
from ui.state import DEFAULT_TEXT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = "[data-testid='stException']"
VIEW = ".gb-v-activations"
HEATMAP = f"{VIEW} .gb-v-act"
FIRST = 1  # the start marker is left out by default


@pytest.fixture(scope="module")
def trace():
    model, _ = load_pretrained(default_model_dir())
    return run_trace(model.eval(), load_tokenizer(default_model_dir()), DEFAULT_TEXT)


def _title(tab) -> str:
    return tab.locator(f"{HEATMAP} .gb-v-title").text_content()


def _neurons(tab) -> list[str]:
    """The heatmap's column labels (n<index>), left to right: its x ticks are drawn below the plot."""
    return tab.eval_on_selector_all(f"{HEATMAP} text.gb-v-tick", "ts => ts.map(t => t.textContent)"
                                    ".filter(t => /^n\\d+$/.test(t))")


def _most_active(trace, layer: int, k: int) -> list[str]:
    post = trace.act[f"blocks.{layer}.mlp.hook_post"][FIRST:].float()
    return [f"n{i}" for i in rank_neurons(post, k, "max")[0].tolist()]


def test_changing_the_layer_changes_the_heatmap(page, app_server: str, trace) -> None:
    open_app(page, app_server + "/Feed_forward")
    page.wait_for_selector(f"{VIEW}[data-draws]:not([data-draws='0'])", timeout=60_000)
    assert _title(page).startswith("Layer 0 MLP activations")
    before = _neurons(page)
    assert before and set(before) <= set(_most_active(trace, 0, 128))
    assert before[0] == _most_active(trace, 0, 1)[0]  # the strongest neuron first, as the engine ranks it

    page.get_by_role("combobox", name="Layer", exact=True).first.click()
    page.get_by_role("option", name="layer 1").first.click()
    page.wait_for_function(f"() => (document.querySelector('{HEATMAP} .gb-v-title') || {{}}).textContent"
                           "?.startsWith('Layer 1 MLP')", timeout=60_000)
    wait_for_app(page)
    after = _neurons(page)
    assert after != before and after[0] == _most_active(trace, 1, 1)[0]

    # The slider is the browser's: fewer neurons are drawn at once, and the session learns the choice.
    draws = int(page.get_attribute(VIEW, "data-draws"))
    slider = page.locator(f"{VIEW} input[data-role='n_show']")
    slider.focus()
    slider.press("Home")
    page.wait_for_function(f"() => Number(document.querySelector('{VIEW}').dataset.draws) > {draws}")
    assert _neurons(page) == after[:1]
    wait_for_app(page)
    assert page.locator(EXCEPTION).count() == 0
    assert "Something went wrong" not in page.inner_text("[data-testid='stMain']")
