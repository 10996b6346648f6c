"""The Feed-forward page, run headless with Streamlit's AppTest: every tab renders, widgets change the figures,
and nothing reruns the model or rebuilds cached results when only a layer, neuron or position changes."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import engine.inspect.neurons
import ui.cache
import ui.feedforward.data
from engine import GPT, GPTConfig, display_token, load_pretrained
from ui.models import ModelChoice

PAGE = str(ROOT / "pages" / "3_Feed_forward.py")
TIMEOUT = 120  # seconds per script run: the first loads the model, the busy test machine is slow
TAB = "feedforward.tab"
TEXT_BOX = "feedforward.text_area"


@pytest.fixture(autouse=True)
def small_reference(monkeypatch) -> None:
    # The real set (24 stories x 128 tokens) takes tens of seconds on a busy CPU; the page reads these at call time.
    monkeypatch.setattr(ui.feedforward.data, "REFERENCE_STORIES", 3)
    monkeypatch.setattr(ui.feedforward.data, "REFERENCE_TOKENS", 12)


def page(text: str | None = None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if text is not None:
        at.session_state["state.text"] = text  # the canonical text every page shows (ui/state.py)
    if tab:
        at.session_state[TAB] = tab
    return at.run()


def clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A figure's data array: Plotly sends numpy arrays base64-encoded ({"bdata", "dtype", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(value)


def figure(at: AppTest, title_start: str) -> dict:
    found = [f for f in figures(at) if f["layout"]["title"]["text"].startswith(title_start)]
    assert len(found) == 1, [f["layout"]["title"]["text"] for f in figures(at)]
    return found[0]


def test_activations_follow_the_layer_without_rerunning_the_model(monkeypatch) -> None:
    calls = []
    real = ui.cache.run_trace
    monkeypatch.setattr(ui.cache, "run_trace", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    at = page("A text only the feed-forward layer test uses.")
    clean(at)
    first = figure(at, "Layer 0 MLP activations")
    assert len(first["data"][0]["x"]) == 32  # the 32 most active neurons, by default
    at.selectbox(key="feedforward.layer").set_value(1).run()
    clean(at)
    second = figure(at, "Layer 1 MLP activations")
    assert array(second["data"][0]["z"]).shape == array(first["data"][0]["z"]).shape
    assert not np.array_equal(array(second["data"][0]["z"]), array(first["data"][0]["z"]))
    at.slider[0].set_value(8).run()
    assert len(figure(at, "Layer 1 MLP activations")["data"][0]["x"]) == 8
    at.radio(key="feedforward.act_by").set_value("mean").run()
    at.radio(key="feedforward.overview_metric").set_value("firing").run()
    clean(at)
    assert figure(at, "Every layer at a glance: share of neurons firing")
    assert calls == ["A text only the feed-forward layer test uses."]


def test_start_marker_toggle_changes_the_rows() -> None:
    at = page("One two three")
    n_rows = len(array(figure(at, "Layer 0 MLP activations")["data"][0]["y"]))
    at.toggle(key="feedforward.skip_bos").set_value(False).run()
    clean(at)
    assert len(array(figure(at, "Layer 0 MLP activations")["data"][0]["y"])) == n_rows + 1


@pytest.mark.parametrize("tab", ["Neuron explorer", "Residual stream", "Logit lens", "Parameters"])
def test_every_tab_renders(tab: str) -> None:
    at = page(tab=tab)
    clean(at)
    assert figures(at)


def test_neuron_explorer_builds_its_reference_once(monkeypatch) -> None:
    built = []
    real = engine.inspect.neurons.build_atlas
    monkeypatch.setattr(engine.inspect.neurons, "build_atlas", lambda *a, **k: built.append(1) or real(*a, **k))
    monkeypatch.setattr(ui.feedforward.data, "REFERENCE_TOKENS", 10)  # a set no other test built: a fresh cache entry
    at = page("The dog ran to the park and the dog was happy.", tab="Neuron explorer")
    clean(at)
    captions = " ".join(c.value for c in at.caption)
    assert "reference set" in captions and "3 short stories" in captions and "seed 0" in captions
    html = " ".join(m.value for m in at.markdown if "gb-ff" in m.value)
    neuron = at.selectbox(key="feedforward.neuron")
    assert neuron.options[0].startswith("neuron ")
    # selectbox options are plain text: a token such as "." shows as itself, never as a Markdown escape "\."
    assert not any("\\" in o for o in neuron.options), neuron.options[:5]
    assert any("on “.”" in o for o in neuron.options)
    other = int(neuron.options[5].split()[1])
    neuron.set_value(other).run()
    clean(at)
    assert " ".join(m.value for m in at.markdown if "gb-ff" in m.value) != html
    assert figure(at, f"Neuron {other} of layer 0")
    at.selectbox(key="feedforward.layer").set_value(1).run()
    clean(at)
    assert built == [1]  # one atlas for the model, however the layer and neuron change


def test_logit_lens_ends_with_the_models_own_prediction() -> None:
    text = "Once upon a time there was a cat"
    at = page(text, tab="Logit lens")
    clean(at)
    model, tok = load_pretrained(ROOT / "models" / "glassbox-stories", torch.device("cpu"))
    trace = ui.cache.run_trace(model, tok, text)
    table = at.dataframe[0].value
    last = table.iloc[-1]
    assert last["stage"].endswith("= model output")
    probs = trace.probs(-1)
    top = int(probs.argmax())
    assert last["top 1"] == f"{display_token(tok, top)}  {float(probs[top]):.1%}"
    assert last["final prediction p"] == pytest.approx(float(probs[top]))
    assert last["its rank"] == 1
    assert len(table) == 1 + 2 * model.config.n_layer
    # The embeddings row reads back the input token itself (tied weights), and the page says why beside it.
    from engine.inspect.lens import logit_lens
    lens = logit_lens(model, trace)
    assert (lens.top_ids[0, :, 0] == torch.tensor(trace.ids)).float().mean() > 0.8
    ticks = figure(at, "Logit lens")["layout"]["yaxis"]["ticktext"]
    assert "input token" in ticks[0] and "tied" in ticks[0]
    assert any("tied" in c.value and "embeddings row" in c.value for c in at.caption)


def test_parameters_tab_counts_the_model() -> None:
    at = page(tab="Parameters")
    clean(at)
    model, _ = load_pretrained(ROOT / "models" / "glassbox-stories", torch.device("cpu"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == f"{model.num_params():,}"
    assert at.dataframe[0].value["parameters"].sum() == model.num_params()
    assert "times" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("text, message", [
    ("", "Type some text"),
    ("🍕", None),
    ("<img src=x onerror=alert(1)> **bold** $x$", None),
    ("word " * 2000, "the model sees the last"),
], ids=["empty", "emoji", "hostile", "long"])
@pytest.mark.parametrize("tab", ["Activations", "Neuron explorer", "Residual stream", "Logit lens"])
def test_hard_inputs(text: str, message: str | None, tab: str) -> None:
    at = page(text, tab=tab)
    clean(at)
    if message:
        assert message in " ".join(i.value for i in at.info)
    html = " ".join(m.value for m in at.markdown)
    assert "<img" not in html


def test_a_session_model_of_another_shape() -> None:
    """Any model the app can load: 3 layers, 2 heads, width 24, short context, in this session only."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    default, tok = load_pretrained(ROOT / "models" / "glassbox-stories", torch.device("cpu"))
    torch.manual_seed(0)
    small = GPT(GPTConfig(block_size=24, vocab_size=default.config.vocab_size, n_layer=3, n_head=2, n_embd=24)).eval()
    at.session_state["models.session"] = {"mini": ModelChoice("mini", small, tok, key="session:1:mini", shared=False)}
    at.session_state["models.selected"] = "mini"
    for tab in ["Activations", "Neuron explorer", "Residual stream", "Logit lens", "Parameters"]:
        at.session_state[TAB] = tab
        at.run()
        clean(at)
    assert {m.label: m.value for m in at.metric}["Parameters"] == f"{small.num_params():,}"
    at.session_state[TAB] = "Activations"
    at.run()
    assert len(figure(at, "Layer 0 MLP activations")["data"][0]["x"]) == 32
    assert "feedforward.atlas" in at.session_state  # its atlas lives in the session, not the shared cache


def test_choices_survive_a_visit_to_another_page() -> None:
    """The open tab, the layer and the neuron count are as they were after a visit to the home page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    at.selectbox(key="feedforward.layer").set_value(1).run()
    at.slider(key="feedforward.act_neurons").set_value(7).run()
    at.switch_page("app.py").run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    assert at.selectbox(key="feedforward.layer").value == 1
    assert at.slider(key="feedforward.act_neurons").value == 7
    at.session_state[TAB] = "Logit lens"
    at.run()
    at.switch_page("app.py").run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    assert figure(at, "Logit lens")


def test_the_intro_follows_the_models_own_parameter_shares() -> None:
    """The built-in model's MLPs hold 39% of its parameters, its embeddings 41%: the intro says so, as the
    Parameters tab does, instead of "Most of a model's parameters live here"."""
    at = page(tab="Parameters")
    clean(at)
    shares = {m.label: m.value for m in at.metric}
    intro = next(m.value for m in at.markdown if "neuron" in m.value and "feed-forward" in m.value)
    assert f"MLPs hold {shares['MLP']} of the parameters and the embeddings {shares['Embeddings']}" in intro
    assert "Most of a model's parameters" not in intro
