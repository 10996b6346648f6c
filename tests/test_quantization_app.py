"""The Feed-forward page's Quantization tab (AppTest): a link opens it at a bit width, real int8 and simulated
bits are told apart in words, the figures and numbers are drawn, every bit width compares on request, a session's
own model quantizes too, and the shared model is never changed."""
from __future__ import annotations

import json

import torch
from streamlit.testing.v1 import AppTest

import ui.models
from conftest import ROOT
from engine import load_pretrained
from engine_fixtures import save_server_models, tiny_model, tokenizer
from ui.feedforward.quantization import COPIES
from ui.models import ModelChoice, default_model, default_model_dir

PAGE = str(ROOT / "pages" / "3_Feed_forward.py")
TIMEOUT = 120


def page(bits: int | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.query_params["tab"] = "quantization"
    if bits is not None:
        at.query_params["bits"] = str(bits)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_link_opens_the_tab_at_its_bit_width_and_says_what_is_simulated():
    at = page(2)
    assert at.segmented_control(key="feedforward.bits").value == 2
    assert any("Simulated 2-bit" in w.value for w in at.warning)
    m = metrics(at)
    assert set(m) >= {"Weights in memory", "Perplexity", "Mean KL", "Top token flips"}
    assert [el for el in at.get("plotly_chart") if el.proto.id.endswith("feedforward.quant_kl")]
    assert [el for el in at.get("plotly_chart") if el.proto.id.endswith("feedforward.quant_layers")]
    at.segmented_control(key="feedforward.bits").set_value(8).run()
    assert any("Real int8" in i.value for i in at.info) and at.query_params["bits"] == "8"
    assert float(metrics(at)["Top token flips"].rstrip("%")) < float(m["Top token flips"].rstrip("%"))


def test_every_bit_width_on_request_and_the_shared_model_untouched():
    fresh, _ = load_pretrained(default_model_dir())
    at = page(8)
    at.button(key="feedforward.quant_sweep").click().run()
    table = next(d.value for d in at.dataframe if "top token flips" in d.value.columns)
    assert table["bits"].tolist() == ["8 (int8, real)", "4 (simulated)", "3 (simulated)", "2 (simulated)"]
    model = default_model().model
    assert COPIES.values() and all(q.model is not model for q in COPIES.values())  # copies, kept within budget
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert model.lm_head.weight is model.transformer.wte.weight


def test_your_text_and_a_session_model():
    choice = ModelChoice("tiny", tiny_model(block_size=64), tokenizer(), key="session:test:tiny-q", shared=False)
    at = page(4, {"models.session": {"tiny": choice}, "models.selected": "tiny"})
    story = metrics(at)["Perplexity"]
    at.radio(key="feedforward.quant_source").set_value("Your text").run()
    assert not at.exception and metrics(at)["Perplexity"] != story
    at.text_area(key="feedforward.text_area").set_value("H").run()  # the start marker and one token
    assert not at.exception
    assert any("Type a longer text" in i.value for i in at.info)


def test_a_transformers_model_quantizes_too(tmp_path, monkeypatch):
    save_server_models(tmp_path, families=("llama",))
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(tmp_path / ".hub"))
    ui.models.server_models.clear()
    try:
        for bits in (8, 3):
            at = page(bits, {"models.selected": "folder:tiny-llama"})
            m = metrics(at)
            assert m["Perplexity"] and m["Top token flips"].endswith("%")
            layers = json.loads(next(el.proto.spec for el in at.get("plotly_chart")
                                     if el.proto.id.endswith("feedforward.quant_layers")))
            assert layers["data"][0]["x"] == ["layer 0", "layer 1", "output layer"]
    finally:
        ui.models.server_models.clear()
        ui.models.SHARED.clear()
