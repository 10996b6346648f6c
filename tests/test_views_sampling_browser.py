"""The sampling lab's arithmetic as the browser runs it (ui/views/js/sampling_math.js, in Chromium) equals
engine.generation.sampling's: every probability before and after the filters, the running total, which filter
removed each token, the listed tokens and the entropies, for temperatures from 0.01 to 5 (and 0, greedy) with
top-k, top-p and min-p, on the built-in model's logits and on random ones."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import SamplingSettings, load_pretrained, load_tokenizer, run_trace, sampling_stages
from engine.generation.sampling_lab import FILTERS, removed_by, top_tokens
from ui.models import default_model_dir
from ui.state import DEFAULT_TEXT

pytestmark = [pytest.mark.browser]

MATH = Path(__file__).resolve().parents[1] / "ui" / "views" / "js" / "sampling_math.js"
TEMPERATURES = (0.01, 0.1, 0.5, 1.0, 2.0, 5.0)
FILTER_SETTINGS = ((0, 1.0, 0.0), (40, 1.0, 0.0), (0, 0.9, 0.0), (0, 1.0, 0.05), (50, 0.95, 0.05), (1, 1.0, 0.0),
                   (0, 0.01, 0.0), (0, 1.0, 1.0), (1000, 0.5, 0.3))  # (top_k, top_p, min_p)
TOP = 15  # tokens listed, as the page's default

STAGES_JS = """([logits, settings, k]) => settings.map(s => {
  const st = samplingStages(prepare(Float32Array.from(logits)), s), t = topTokens(st, k, null);
  return {before: Array.from(st.before), after: Array.from(st.after), cum: Array.from(st.cumulative),
          removed: Array.from(st.removed), kept: st.nKept, eb: st.entropyBefore, ea: st.entropyAfter,
          ids: t.ids, restBefore: t.restBefore, restAfter: t.restAfter};
})"""


@pytest.fixture(scope="module")
def math_page(browser):
    context = browser.new_context()
    tab = context.new_page()
    tab.set_content("<html><body></body></html>")
    tab.add_script_tag(content=MATH.read_text())  # the very file the page's view runs, as a classic script
    yield tab
    context.close()


def _model_logits() -> torch.Tensor:
    model, _ = load_pretrained(default_model_dir())
    return run_trace(model.eval(), load_tokenizer(default_model_dir()), DEFAULT_TEXT).logits[-1]


@pytest.mark.parametrize("which", ["model", "random"])
def test_browser_sampling_equals_the_engine(math_page, which: str) -> None:
    logits = _model_logits() if which == "model" else torch.randn(4096, generator=torch.Generator().manual_seed(3)) * 4
    settings = [SamplingSettings(t, k, p, m) for t, (k, p, m) in itertools.product((0.0, *TEMPERATURES), FILTER_SETTINGS)]
    got = math_page.evaluate(STAGES_JS, [logits.tolist(), [vars(s) for s in settings], TOP])
    for s, js in zip(settings, got):
        st, masks, top = sampling_stages(logits, s), removed_by(logits, s), top_tokens(sampling_stages(logits, s), TOP)
        where = f"{s}"
        np.testing.assert_allclose(js["before"], st.probs_before.numpy(), atol=1e-6, rtol=0, err_msg=where)
        np.testing.assert_allclose(js["after"], st.probs_after.numpy(), atol=1e-6, rtol=0, err_msg=where)
        np.testing.assert_allclose(js["cum"], st.cumulative.numpy(), atol=1e-6, rtol=0, err_msg=where)
        removed = np.zeros(logits.numel(), dtype=int)
        for i, name in enumerate(FILTERS):
            removed[masks[name].numpy()] = i + 1
        assert js["removed"] == removed.tolist(), where  # each token blamed on the same filter
        assert js["kept"] == int(st.kept.sum()) == top.n_kept, where
        assert js["ids"] == top.ids, where  # the same bars, in the same order
        assert js["ea"] == pytest.approx(st.entropy_after, rel=1e-6, abs=1e-6), where
        assert js["eb"] == pytest.approx(st.entropy_before, rel=1e-6, abs=1e-6), where
        assert js["restBefore"] == pytest.approx(top.rest_before, abs=1e-6)
        assert js["restAfter"] == pytest.approx(top.rest_after, abs=1e-6)


def test_browser_entropy_curve_is_the_engines_at_each_temperature(math_page) -> None:
    logits = _model_logits()
    s = SamplingSettings(top_k=40, top_p=0.9, min_p=0.05)
    curve = math_page.evaluate("""([logits, s]) => entropyCurve(prepare(Float32Array.from(logits)), s, 9)""",
                               [logits.tolist(), vars(s)])
    for t, before, after in zip(curve["temps"], curve["before"], curve["after"]):
        st = sampling_stages(logits, SamplingSettings(t, s.top_k, s.top_p, s.min_p))
        assert before == pytest.approx(st.entropy_before, rel=1e-5, abs=1e-5)
        assert after == pytest.approx(st.entropy_after, rel=1e-5, abs=1e-5)
