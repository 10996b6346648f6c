"""The app with NDIF turned on, against the NDIF-protocol server of tests/ndif_fake.py: the picker lists what
NDIF runs, the Attention, Next token and Scale ladder pages draw an NDIF model once its job is done, the other
pages say in one line that they need a local model, every failure is one sentence, and a typed key stays in its
session's memory (never in the URL, another key or a message)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui.ndif
from conftest import ROOT
from engine.remote import BOARD
from ndif_fake import FakeNdif, Served, served_model, start, write_tiny
from views_at import floats, sent

KEY = "ndif-host-key-0987654321"
GPT2, LLAMA = "ndif:openai-community/gpt2", "ndif:meta-llama/Llama-3.1-8B"
PAGES = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]
TIMEOUT = 120


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("ndif-models")
    models = {}
    for repo, family in (("openai-community/gpt2", "gpt2"), ("meta-llama/Llama-3.1-8B", "llama")):
        folder = root / repo.replace("/", "--")
        write_tiny(folder, family)
        models[repo] = Served(repo, served_model(folder))
    f = FakeNdif(models, keys={KEY})
    server = start(f)
    f.root = root
    yield f
    server.shutdown()


@pytest.fixture(autouse=True)
def env(fake, monkeypatch):
    monkeypatch.setenv("GLASSBOX_NDIF", "1")
    monkeypatch.setenv("GLASSBOX_NDIF_URL", fake.base)
    monkeypatch.setenv("GLASSBOX_NDIF_DIR", str(fake.root))
    monkeypatch.setenv("NDIF_API_KEY", KEY)
    monkeypatch.setenv("GLASSBOX_NDIF_TIMEOUT_S", "20")
    fake.behaviour = "normal"
    ui.ndif._offers.clear()
    yield
    ui.ndif._offers.clear()


def run(page: str, model: str | None = None, text: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    if model is not None:
        at.session_state["models.selected"] = model
    if text is not None:
        at.session_state["state.text"] = text
    return at.run()


def settle(at: AppTest, limit_s: float = 30.0) -> AppTest:
    """Run the page again until no NDIF job it waits on is active (AppTest does not run fragments' timers)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        waiting = [t for t in list(BOARD._tickets.values()) if t.active]
        if not waiting:
            return at.run()
        time.sleep(0.1)
    raise AssertionError("an NDIF job did not end")


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    return " ".join(parts)


def test_the_picker_lists_what_ndif_runs_and_says_the_text_goes_there():
    at = run("app.py")
    labels = at.sidebar.selectbox(key="home.model_select").options
    assert "openai-community/gpt2 · 37.8 K (NDIF)" in labels, labels  # its config is here: counted, not fetched
    assert "meta-llama/Llama-3.1-8B · 43.7 K (NDIF)" in labels
    assert any(label.startswith("meta-llama/Llama-3.1-405B (NDIF, not running") for label in labels)
    at = run("app.py", GPT2)
    sidebar = " ".join(c.value for c in at.sidebar.caption) + " ".join(m.value for m in at.sidebar.markdown)
    assert "sends your text to 127\\.0\\.0\\.1" in sidebar and "bf16" in sidebar  # Markdown-escaped
    assert "GPT-2 architecture" in sidebar and "The host's NDIF key is used" in sidebar


@pytest.mark.parametrize("model", [GPT2, LLAMA])
def test_the_attention_page_draws_one_layer_of_an_ndif_model(model):
    at = settle(run("pages/2_Attention.py", model))
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) >= 3, "the layer's heads, the head large, its line view"
    said = text_of(at)
    assert "bfloat16" in said and "one layer's" in said
    at.selectbox(key="attention.layer").set_value(1).run()
    at = settle(at)
    assert not at.exception and "Layer 1" in str([c.proto.spec for c in at.get("plotly_chart")])


def test_the_next_token_page_draws_the_distribution_of_an_ndif_model():
    at = settle(run("pages/4_Next_token.py", LLAMA))
    assert not at.exception, at.exception
    lab = sent(at, "next_token.ndif_lab")  # the sampling lab, drawn in the browser from NDIF's whole logits
    row = floats(lab["logits"])
    assert row.size > 1 and np.isfinite(row).all() and lab["labels"], row.size
    assert "as the model computed them, in bfloat16" in text_of(at)
    at.button(key="next_token.draw_one").click().run()
    assert not at.exception and at.session_state["next_token.draws"], "drawn here, from NDIF's logits"


def test_the_scale_ladder_puts_local_and_ndif_models_side_by_side():
    at = run("pages/8_Scale_ladder.py")
    at = settle(at)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {"glassbox-stories", "openai-community/gpt2", "meta-llama/Llama-3.1-8B"} <= set(table["model"])
    assert set(table["runs"]) >= {"built in", "NDIF"} and (table["time (s)"].astype(float) > 0).all()


LOCAL_ONLY = ("Tokens", "Feed_forward", "Intervene", "Train", "RLHF", "Room")  # the pages that run their model here


@pytest.mark.parametrize("page", [p for p in PAGES if "Attention" not in p and "Next_token" not in p
                                  and "Scale" not in p])
def test_every_other_page_works_or_says_in_one_line_that_it_needs_a_local_model(page):
    at = settle(run(page, GPT2))
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    said = [i.value for i in at.info if "runs on NDIF" in i.value]
    assert bool(said) == any(name in page for name in LOCAL_ONLY), (page, said)


def test_a_wrong_key_is_one_sentence_and_the_page_keeps_working(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "not-the-key")
    at = settle(run("pages/2_Attention.py", GPT2, text="A wrong key is said once."))
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("did not accept the API key" in e for e in errors), errors
    assert not any("not-the-key" in e for e in errors)


def test_ndif_down_is_one_sentence_and_local_models_still_work(fake):
    fake.behaviour = "down"
    at = settle(run("pages/2_Attention.py", GPT2, text="While NDIF is down."))
    assert not at.exception
    assert any("NDIF is down or overloaded" in e.value for e in at.error), [e.value for e in at.error]
    at.sidebar.selectbox(key="attention.model_select").set_value("glassbox-stories").run()
    assert not at.exception and not at.error and sent(at, "attention.view")  # the local model's heads, in the browser


def test_a_typed_key_stays_in_this_session_s_memory(monkeypatch, fake):
    monkeypatch.delenv("NDIF_API_KEY")
    typed = "typed-user-key-5555"
    fake.keys.add(typed)
    try:
        at = run("pages/2_Attention.py", GPT2, text="Only my key.")
        assert any("NDIF needs an API key" in e.value for e in at.error)
        at.text_input(key="ndif.key_box").input(typed).run()
        assert at.session_state["ndif.key"] == typed and at.session_state["ndif.key_box"] == ""
        holders = [k for k in at.session_state.keys() if typed in str(at.session_state[k])]
        assert holders == ["ndif.key"], holders
        at = settle(at)
        assert not at.exception and typed not in str(at.query_params) and typed not in text_of(at)
        assert [r for r in fake.requests if r["key"] == typed], "the request carried the typed key"
        at.button(key="ndif.forget").click().run()
        assert "ndif.key" not in at.session_state
    finally:
        fake.keys.discard(typed)


def test_ndif_off_says_how_to_turn_it_on(monkeypatch):
    monkeypatch.setenv("GLASSBOX_NDIF", "0")
    at = run("app.py")
    assert not any("(NDIF" in o for o in at.sidebar.selectbox(key="home.model_select").options)
    assert "GLASSBOX_NDIF=1" in " ".join(m.value for m in at.sidebar.markdown)


def test_gpt2_here_and_on_ndif_agree_to_bf16_on_the_ladder(monkeypatch, fake):
    """The same GPT-2 weights as a Hub model on this server (float32) and on NDIF (bf16): one rung each, and
    the page says how far apart their probabilities are, which bf16 bounds."""
    import re

    import ui.models
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(fake.root))  # the same folders, as downloaded Hub models
    monkeypatch.setenv("GLASSBOX_HUB_SHARED", "1")  # ... that the host shares with every visitor
    ui.models.server_models.clear()
    try:
        at = settle(run("pages/8_Scale_ladder.py", text="Once upon a time, there was a little cat."))
        assert not at.exception, at.exception
        rows = at.dataframe[0].value
        gpt2 = rows[rows["model"] == "openai-community/gpt2"]
        assert set(gpt2["runs"]) == {"this server", "NDIF"}
        said = [i.value for i in at.info if "here (float32) and on NDIF (bf16)" in i.value]
        assert len(said) == 1 and "pick the same next token" in said[0], said
        diff = float(re.search(r"differ by at most ([0-9.e-]+)", said[0]).group(1))
        assert diff < 0.02
    finally:
        ui.models.server_models.clear()
        ui.models.SHARED.clear()
