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
from engine.inspect.neurons import rank_neurons
from ui.models import ModelChoice
from views_at import floats, ints, report, sent

PAGE = str(ROOT / "pages" / "3_Feed_forward.py")
TIMEOUT = 120  # seconds per script run: the first loads the model, the busy test machine is slow
TAB = "feedforward.tab"
TEXT_BOX = "feedforward.text_area"
ACTIVATIONS, LENS = "feedforward.activations", "feedforward.lens"  # views drawn in the browser (ui/views)


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


def shown(data: dict) -> np.ndarray:
    """The activations the view draws for its selection: [pos, neuron shown], most active first."""
    values = floats(data["values"]).reshape(len(data["tokens"]), -1)
    order = data["by_max" if data["sel"]["by"] == "max" else "by_mean"][:data["sel"]["n_show"]]
    return values[:, order]


def test_activations_follow_the_layer_without_rerunning_the_model(monkeypatch) -> None:
    calls = []
    real = ui.cache.run_trace
    monkeypatch.setattr(ui.cache, "run_trace", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    text = "A text only the feed-forward layer test uses."
    at = page(text)
    clean(at)
    first = sent(at, ACTIVATIONS)
    assert first["layer"] == 0 and first["sel"] == {"n_show": 32, "by": "max", "metric": "out_norm"}
    model, tok = load_pretrained(ROOT / "models" / "glassbox-stories", torch.device("cpu"))
    post = ui.cache.run_trace(model, tok, text).act["blocks.0.mlp.hook_post"][1:]  # the start marker left out
    order, _ = rank_neurons(post, 32, "max")
    assert np.array_equal(ints(first["neurons"])[first["by_max"][:32]], order.numpy())  # the engine's ranking
    assert np.array_equal(shown(first), post[:, order].numpy())  # and the trace's own numbers
    at.selectbox(key="feedforward.layer").set_value(1).run()
    clean(at)
    second = sent(at, ACTIVATIONS)
    assert second["layer"] == 1 and shown(second).shape == shown(first).shape
    assert not np.array_equal(shown(second), shown(first))
    report(at, ACTIVATIONS, {"n_show": 8, "by": "mean", "metric": "firing", "n": 1})
    clean(at)
    assert [at.session_state[f"feedforward.{k}.kept"] for k in ("act_neurons", "act_by", "overview_metric")] == [
        8, "mean", "firing"]
    assert sent(at, ACTIVATIONS) == second  # drawn in the browser already: the same message
    report(at, ACTIVATIONS, {"n_show": 1000, "by": "loudest", "metric": 3, "n": 2})  # hand-made: nothing changes
    assert at.session_state["feedforward.act_neurons.kept"] == 8
    calls.remove(text)  # the test's own run above
    assert calls == [text]


def test_start_marker_toggle_changes_the_rows() -> None:
    at = page("One two three")
    n_rows = len(sent(at, ACTIVATIONS)["tokens"])
    at.toggle(key="feedforward.skip_bos").set_value(False).run()
    clean(at)
    assert len(sent(at, ACTIVATIONS)["tokens"]) == n_rows + 1


@pytest.mark.parametrize("tab", ["Neuron explorer", "Residual stream", "Parameters"])
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
    data = sent(at, LENS)
    stages, n, k = len(data["stages"]), len(data["tokens"]), data["k"]
    assert stages == 1 + 2 * model.config.n_layer and n == len(trace) - 1  # the start marker left out
    assert data["sel"] == {"position": len(trace) - 1}  # the end of the text, until a column is clicked
    probs = trace.probs(-1)
    top = int(probs.argmax())
    top_ids, top_probs = ints(data["top_ids"]).reshape(stages, n, k), floats(data["top_probs"]).reshape(stages, n, k)
    assert top_ids[-1, -1, 0] == top and data["labels"][str(top)] == display_token(tok, top)
    assert top_probs[-1, -1, 0] == pytest.approx(float(probs[top]), abs=1e-6)  # the last row is the model output
    assert floats(data["target_probs"]).reshape(stages, n)[-1, -1] == pytest.approx(float(probs[top]), abs=1e-6)
    assert ints(data["target_ranks"]).reshape(stages, n)[-1, -1] == 0
    # The embeddings row reads back the input token itself (tied weights), and the page says why beside it.
    assert (top_ids[0, :, 0] == np.array(trace.ids[1:])).mean() > 0.8
    assert "input itself" in data["ticks"][0] and "tied" in data["ticks"][0]
    assert any("tied" in c.value and "embeddings row" in c.value for c in at.caption)
    report(at, LENS, {"position": 3, "n": 1})  # a column clicked in the browser
    clean(at)
    assert at.session_state["feedforward.position.kept"] == 3 and at.query_params["token"] == "3"
    report(at, LENS, {"position": 0, "n": 2})  # the start marker, which the lens leaves out: nothing changes
    assert at.session_state["feedforward.position.kept"] == 3


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
    assert shown(sent(at, ACTIVATIONS)).shape[1] == 32
    assert "feedforward.atlas" in at.session_state  # its atlas lives in the session, not the shared cache


def test_choices_survive_a_visit_to_another_page() -> None:
    """The open tab, the layer and the neuron count are as they were after a visit to the home page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    at.selectbox(key="feedforward.layer").set_value(1).run()
    report(at, ACTIVATIONS, {"n_show": 7, "by": "max", "metric": "out_norm", "n": 1})
    at.switch_page("app.py").run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    assert at.selectbox(key="feedforward.layer").value == 1
    assert sent(at, ACTIVATIONS)["sel"]["n_show"] == 7
    at.session_state[TAB] = "Logit lens"
    at.run()
    at.switch_page("app.py").run()
    at.switch_page("pages/3_Feed_forward.py").run()
    clean(at)
    assert sent(at, LENS)


def test_the_intro_follows_the_models_own_parameter_shares() -> None:
    """The built-in model's MLPs hold 39% of its parameters, its embeddings 41%: the intro says so, as the
    Parameters tab does, instead of "Most of a model's parameters live here"."""
    at = page(tab="Parameters")
    clean(at)
    shares = {m.label: m.value for m in at.metric}
    intro = next(m.value for m in at.markdown if "neuron" in m.value and "feed-forward" in m.value)
    assert f"MLPs hold {shares['MLP']} of the parameters and the embeddings {shares['Embeddings']}" in intro
    assert "Most of a model's parameters" not in intro
