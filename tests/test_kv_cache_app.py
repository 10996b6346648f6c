"""The key/value cache under step-by-step generation, on the Next token page (AppTest): the strip grows one
column per step, the proof is printed, the bytes are the formula's and the tensors', the timing is measured on
request, every step can be checked, and past the context the page says the window slid and what a shortcut
would have cost."""
from __future__ import annotations

import base64
import json
import re

import numpy as np

from streamlit.testing.v1 import AppTest

import ui.models
from conftest import ROOT
from engine import encode
from engine.inspect.kv import model_bytes_per_token
from engine.model.cost import size_text
from engine_fixtures import save_server_models, tiny_model, tokenizer
from ui.models import ModelChoice

PAGE = str(ROOT / "pages" / "4_Next_token.py")
TIMEOUT = 120
TEXT = "Once upon a time, there was a little"


def page(state: dict | None = None, text: str = TEXT) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.query_params["text"] = text
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def strip(at: AppTest) -> dict:
    return json.loads(next(el.proto.spec for el in at.get("plotly_chart")
                           if el.proto.id.endswith("next_token.kv_strip")))


def array(value) -> np.ndarray:
    """A figure's data array: Plotly sends numpy arrays base64-encoded ({"bdata", "dtype", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def width(at: AppTest) -> int:
    return array(strip(at)["data"][0]["z"]).shape[1]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_strip_grows_one_column_per_step_and_the_cache_is_exact():
    at = page()
    n_prompt = len(at.session_state["next_token.run"].prompt_ids)
    assert width(at) == n_prompt
    assert any(f"will run your text's {n_prompt} tokens" in m.value for m in at.markdown)
    for _ in range(3):
        at.button(key="next_token.step").click().run()
        ok(at)
    assert width(at) == n_prompt + 2  # step 3 ran the token step 2 drew, on the prompt's cache and step 2's
    assert float(metric(at, "Largest difference in any logit")) < 1e-4
    assert any("the most likely next token is the same" in m.value for m in at.markdown)
    rows = array(strip(at)["data"][0]["z"]).shape[0]
    assert rows == 4 * 4  # the built-in model: 4 layers x 4 key/value heads
    at.slider(key="next_token.view").set_value(2).run()
    ok(at)
    assert width(at) == n_prompt + 1


def test_the_bytes_are_the_formulas_and_the_tensors():
    at = page()
    at.button(key="next_token.step").click().run()
    table = next(d.value for d in at.dataframe if "key/value heads" in d.value.columns)
    assert table["model"].tolist()[1:] == ["GPT-2 small", "Llama 2 7B", "Llama 3.1 8B", "SmolLM2-135M"]
    assert table["per token"].tolist()[:4] == ["4 KB", "36 KB", "512 KB", "128 KB"]
    assert metric(at, "Per token") == "4 KB"
    line = next(c.value for c in at.caption if "The cache's tensors hold" in c.value)
    formula, real = re.search(r"= ([0-9,]+) bytes\. The cache's tensors hold ([0-9,]+) bytes", line).groups()
    assert formula == real
    assert any("Why grouped-query attention exists" in m.value and "4 times less" in m.value for m in at.markdown)


def test_time_per_token_is_measured_on_request_and_every_step_checked():
    at = page()
    assert not [el for el in at.get("plotly_chart") if el.proto.id.endswith("next_token.kv_timing")]
    at.button(key="next_token.kv_time").click().run()
    ok(at)
    assert [el for el in at.get("plotly_chart") if el.proto.id.endswith("next_token.kv_timing")]
    assert any("ms per token on the cache" in c.value and "load average" in c.value for c in at.caption)
    for _ in range(4):
        at.button(key="next_token.step").click().run()
    at.button(key="next_token.kv_check").click().run()
    ok(at)
    line = next(c.value for c in at.caption if "replayed one token at a time" in c.value)
    n, worst = re.search(r"last ([0-9,]+) steps, replayed one token at a time: largest difference ([0-9.e+-]+)",
                         line).groups()
    assert int(n) == 3 and float(worst) < 1e-4  # steps 2, 3 and 4 ran on the cache


def test_past_the_context_the_window_slides_and_the_page_says_so():
    choice = ModelChoice("tiny", tiny_model(block_size=16), tokenizer(), key="session:test:tiny-kv", shared=False)
    at = page({"models.session": {"tiny": choice}, "models.selected": "tiny"}, text="The cat")
    n_prompt = 1 + len(encode(choice.tokenizer, "The cat").ids)
    assert n_prompt < 16
    at.number_input(key="next_token.n_steps").set_value(20).run()
    at.button(key="next_token.run_n").click().run()
    ok(at)
    assert any("The window slid by one" in m.value for m in at.markdown)
    assert any("Why not keep the cache" in m.value for m in at.markdown)
    assert width(at) == 16  # the whole window, run again
    runs = array(json.loads(next(el.proto.spec for el in at.get("plotly_chart")
                                 if el.proto.id.endswith("next_token.kv_runs")))["data"][0]["y"]).tolist()
    assert runs[0] == n_prompt and 1 in runs and runs[-1] == 16
    assert metric(at, "Per token") == size_text(model_bytes_per_token(choice.model))


def test_a_transformers_model_with_grouped_query_heads(tmp_path, monkeypatch):
    save_server_models(tmp_path, families=("llama",))  # 2 layers, 4 query heads sharing 2 key/value heads
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(tmp_path / ".hub"))
    ui.models.server_models.clear()
    try:
        at = page({"models.selected": "folder:tiny-llama"}, text="The cat")
        for _ in range(2):
            at.button(key="next_token.step").click().run()
            ok(at)
        assert array(strip(at)["data"][0]["z"]).shape[0] == 2 * 2  # rows: layers x key/value heads, not query heads
        assert float(metric(at, "Largest difference in any logit")) < 1e-4
        line = next(c.value for c in at.caption if "The cache's tensors hold" in c.value)
        assert "× 2 key/value heads ×" in line
        formula, real = re.search(r"= ([0-9,]+) bytes\. The cache's tensors hold ([0-9,]+) bytes", line).groups()
        assert formula == real
    finally:
        ui.models.server_models.clear()
        ui.models.SHARED.clear()
