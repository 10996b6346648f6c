"""The sidebar's model picker with real pretrained models: server folders (GLASSBOX_MODELS_DIR), priced before
they load, shared by sessions in a bounded least-recently-used set, and every page walked with a GPT-2-family
model and a Llama-family model (tiny, random weights, saved as transformers saves them), with no exception."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import ui.models
from conftest import ROOT
from engine_fixtures import save_server_models

PAGES = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]
TIMEOUT = 120
LLAMA, GPT2, NEO, BROKEN = "folder:tiny-llama", "folder:tiny-gpt2", "folder:tiny-neo", "folder:broken"
RELU = "folder:tiny-gpt2-relu"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_server_models(root)
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text((root / "tiny-llama" / "config.json").read_text())
    (root / "broken" / "pytorch_model.bin").write_bytes(b"not loaded, ever")
    # A GPT-2 config our GPT does not implement (a ReLU MLP, scores divided by the layer's number too): it runs
    # inside transformers.
    from transformers import GPT2Config, GPT2LMHeadModel
    from engine_fixtures import VOCAB, tokenizer
    variant = GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB,
                                         activation_function="relu", scale_attn_by_inverse_layer_idx=True))
    variant.save_pretrained(root / "tiny-gpt2-relu")
    tokenizer().save_pretrained(root / "tiny-gpt2-relu")
    return root


@pytest.fixture(autouse=True)
def server(models_dir, monkeypatch):
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(models_dir / ".hub"))  # empty: no Hub models downloaded
    ui.models.server_models.clear()
    ui.models.SHARED.clear()
    yield
    ui.models.server_models.clear()
    ui.models.SHARED.clear()


def run(page: str = "app.py", model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    if model is not None:
        at.session_state["models.selected"] = model
    return at.run()


def sidebar_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown) + " ".join(c.value for c in at.sidebar.caption)


def test_the_picker_lists_server_models_with_their_size():
    at = run()
    labels = at.sidebar.selectbox(key="home.model_select").options  # as shown
    for name in ("tiny-llama", "tiny-gpt2", "tiny-neo"):
        assert any(label.startswith(name) and "(server)" in label for label in labels), labels
    assert "broken (server: cannot be opened)" in labels


def test_picking_a_llama_folder_shows_its_architecture():
    at = run()
    at.sidebar.selectbox(key="home.model_select").set_value(LLAMA).run()
    assert not at.exception
    text = sidebar_text(at)
    assert "Llama architecture" in text and "key/value" in text
    assert any("Llama family" in c.value for c in at.sidebar.caption), "the facts from config.json are shown"
    assert [c.name for c in ui.models.SHARED.loaded()] == ["tiny-llama"]


@pytest.mark.parametrize("model", [LLAMA, GPT2, NEO])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_with_a_real_architecture(page, model):
    at = run(page, model)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["models.selected"] == model, "the model stayed selected"


def test_a_gpt2_config_our_gpt_does_not_implement_is_listed_and_opens_in_transformers():
    at = run()
    labels = at.sidebar.selectbox(key="home.model_select").options
    assert any(label.startswith("tiny-gpt2-relu") and "(server)" in label for label in labels), labels
    at = AppTest.from_file(str(ROOT / "pages" / "2_Attention.py"), default_timeout=TIMEOUT)
    at.session_state["models.selected"] = RELU
    at.query_params["tab"] = "how-a-weight-is-made"
    at.query_params["layer"] = "1"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error and not at.sidebar.warning, [e.value for e in [*at.error, *at.sidebar.warning]]
    assert at.session_state["models.selected"] == RELU
    text = sidebar_text(at)
    assert "GPT-2 architecture" in text and "MLP nonlinearity: relu" in text and "L + 1" in text
    assert any("by √16 × 2 in layer 1" in c.value for c in at.caption), "the weight's steps divide by the layer too"
    assert ui.models.SHARED.loaded()[0].model.__class__.__name__ == "HFModel"


def test_a_folder_that_cannot_be_opened_falls_back_with_a_line():
    at = run(model=BROKEN)
    assert not at.exception
    assert any("pickle" in w.value for w in at.sidebar.warning)
    assert "GPT-2 architecture, 1.35 M parameters" in sidebar_text(at), "the built-in model took over"


def test_over_the_budget_nothing_loads(monkeypatch):
    monkeypatch.setenv("GLASSBOX_MODEL_BUDGET_MB", "0.01")
    at = run(model=LLAMA)
    assert not at.exception
    assert any("not loaded" in w.value and "GLASSBOX_MODEL_BUDGET_MB" in w.value for w in at.sidebar.warning)
    assert ui.models.SHARED.loaded() == []


def test_at_most_n_models_stay_loaded(monkeypatch):
    monkeypatch.setenv("GLASSBOX_MAX_MODELS", "1")
    run(model=LLAMA)
    run(model=NEO)
    assert [c.name for c in ui.models.SHARED.loaded()] == ["tiny-neo"], "the least recently used one went"
    first = run(model=NEO)
    assert not first.exception and len(ui.models.SHARED.loaded()) == 1


def test_two_sessions_share_one_loaded_model():
    run(model=LLAMA)
    (loaded,) = ui.models.SHARED.loaded()
    run("pages/2_Attention.py", model=LLAMA)
    assert ui.models.SHARED.loaded() == [loaded], "loaded once per process, not per session"


def _folder_files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_hub_model_downloads_and_opens(models_dir, monkeypatch):
    """Through the sidebar: pick a Hub id, download it from a Hub on 127.0.0.1 (HF_ENDPOINT), and it is the model."""
    from hub_fake import FakeHub
    hub = FakeHub()
    try:
        hub.add("tiny/llama", _folder_files(models_dir / "tiny-llama"))
        monkeypatch.setenv("HF_ENDPOINT", hub.base_url)
        at = run()
        at.sidebar.text_input(key="home.model_select.hub_typed").set_value("tiny/llama")
        at.sidebar.button(key="home.model_select.hub_go").click().run()
        assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
        assert at.session_state["models.selected"] == "hub:tiny/llama"
        assert "Llama architecture" in sidebar_text(at)
        assert (models_dir / ".hub" / "tiny--llama" / "model.safetensors").is_file()
    finally:
        hub.stop()


def test_an_unreachable_hub_is_one_line_and_nothing_changes(monkeypatch):
    from hub_fake import closed_port
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    at = run()
    at.sidebar.text_input(key="home.model_select.hub_typed").set_value("openai-community/gpt2")
    at.sidebar.button(key="home.model_select.hub_go").click().run()
    assert not at.exception
    (error,) = at.sidebar.error
    assert "could not be reached" in error.value and "\n" not in error.value
    assert at.session_state["models.selected"] != "hub:openai-community/gpt2" if "models.selected" in at.session_state else True


def test_a_bad_hub_id_is_refused_before_any_request(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    at = run()
    at.sidebar.text_input(key="home.model_select.hub_typed").set_value("../../etc/passwd")
    at.sidebar.button(key="home.model_select.hub_go").click().run()
    assert not at.exception
    assert "not a Hub model id" in at.sidebar.error[0].value


def test_a_link_names_a_server_model_and_opens_on_it():
    at = AppTest.from_file(str(ROOT / "pages" / "2_Attention.py"), default_timeout=TIMEOUT)
    at.query_params["model"] = LLAMA
    at.query_params["layer"] = "1"
    at.run()
    assert not at.exception and at.session_state["models.selected"] == LLAMA
    assert "Llama architecture" in sidebar_text(at)
    assert at.query_params["model"] == [LLAMA] or at.query_params["model"] == LLAMA, "the URL keeps the model"


# -- one visitor's Hub download is that visitor's ------------------------------------------------------------

def _download(at: AppTest, repo_id: str) -> AppTest:
    at.sidebar.text_input(key="home.model_select.hub_typed").set_value(repo_id)
    return at.sidebar.button(key="home.model_select.hub_go").click().run()


def _offers(at: AppTest, name: str) -> bool:
    return any(label.startswith(name) and "(Hub)" in label for label in at.sidebar.selectbox(
        key="home.model_select").options)


def _compared_names() -> list[str]:
    """The tokenizers a fresh session's Tokens page compares with (besides its own and GPT-2's)."""
    def script():
        import streamlit as st

        from ui.models import current_model
        from ui.tokens.splitting import other_tokenizers
        st.text("|".join(name for name, _ in other_tokenizers(current_model())))
    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.message for e in at.exception]
    return at.text[0].value.split("|") if at.text[0].value else []


@pytest.fixture
def hub_with_llama(models_dir, tmp_path, monkeypatch):
    from hub_fake import FakeHub
    hub = FakeHub()
    hub.add("tiny/llama", _folder_files(models_dir / "tiny-llama"))
    monkeypatch.setenv("HF_ENDPOINT", hub.base_url)
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(tmp_path / "hub"))  # empty: nothing downloaded yet
    ui.models.server_models.clear()
    yield hub
    hub.stop()


def test_a_visitors_hub_download_is_listed_in_their_session_only(hub_with_llama, tmp_path):
    alice = _download(run(), "tiny/llama")
    assert not alice.exception and alice.session_state["models.selected"] == "hub:tiny/llama"
    assert _offers(alice, "tiny/llama")
    assert [c.name for c in ui.models.SHARED.loaded()] == ["tiny/llama"], "loaded once, for Alice"

    bob = run()
    assert not _offers(bob, "tiny/llama")
    assert "tiny/llama's BPE" not in _compared_names(), "Alice's download does not join Bob's comparison"
    # A link naming it does not open it for Bob either: it is not among the models offered to him.
    linked = AppTest.from_file(str(ROOT / "pages" / "2_Attention.py"), default_timeout=TIMEOUT)
    linked.query_params["model"] = "hub:tiny/llama"
    linked.run()
    assert not linked.exception
    assert linked.session_state["models.selected"] != "hub:tiny/llama" if "models.selected" in linked.session_state \
        else True
    assert any("model=" in i.value and "no model of that name here" in i.value for i in linked.info)

    # Bob asks for the same id: the files on disk are reused (nothing fetched again), and it is his too.
    before = len(hub_with_llama.fetched("tiny/llama"))
    bob = _download(bob, "tiny/llama")
    assert not bob.exception and bob.session_state["models.selected"] == "hub:tiny/llama"
    assert len(hub_with_llama.fetched("tiny/llama")) == before, "a second visitor does not download it again"
    assert len(list((tmp_path / "hub").iterdir())) == 1


def test_the_host_may_share_downloads_with_every_visitor(hub_with_llama, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HUB_SHARED", "1")
    _download(run(), "tiny/llama")
    bob = run()
    assert _offers(bob, "tiny/llama")
    assert "tiny/llama's BPE" in _compared_names()


def test_the_hosts_folders_are_everyones_and_join_every_comparison():
    run(model=LLAMA)
    assert "tiny-llama's BPE" in _compared_names()
