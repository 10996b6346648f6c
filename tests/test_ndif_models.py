"""An NDIF model as this server holds it: its config.json and tokenizer fetched from a Hub (tests/hub_fake.py on
127.0.0.1) once and never its weights, checked like every model Glassbox opens, then read from
GLASSBOX_NDIF_DIR; its architecture built by nnsight on the meta device, counted, and keyed as nnsight keys it."""
from __future__ import annotations

import json

import pytest

from engine.remote import ModelUnavailable, UnsupportedModel, open_remote
from engine.remote.model import model_folder
from hub_fake import FakeHub, closed_port
from ndif_fake import write_tiny

REPO = "meta-llama/Llama-3.1-8B"


@pytest.fixture(scope="module")
def llama_files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("repo")
    write_tiny(folder, "llama")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    return files | {"pytorch_model.bin": b"\x80\x04pickle", "original/consolidated.00.pth": b"x"}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    h = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", h.base_url)
    monkeypatch.setenv("GLASSBOX_NDIF_DIR", str(tmp_path / "ndif"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield h
    h.stop()


def test_only_the_config_and_tokenizer_are_fetched_once(hub, llama_files):
    import transformers
    hub.add(REPO, llama_files)
    model = open_remote(REPO)
    fetched = hub.fetched(REPO)
    assert "config.json" in fetched and "tokenizer.json" in fetched
    assert not [n for n in fetched if n.endswith((".safetensors", ".bin", ".pth"))], fetched
    assert not any(p.suffix in (".safetensors", ".bin") for p in model_folder(REPO).iterdir())
    hub.stop()  # from now on the folder is enough
    again = open_remote(REPO)
    real = transformers.AutoModelForCausalLM.from_config(again.hf_config)
    assert again.num_params() == sum(p.numel() for p in real.parameters())
    assert again.config.n_kv_head == 2 and again.family_name == "Llama"
    key = again.model_key()
    assert key.startswith("nnsight.modeling.transformers.TransformersModel:")
    assert json.loads(key.split(":", 1)[1]) == {"repo_id": REPO, "revision": None, "task": "text-generation"}
    assert "attn_implementation" in again.env()
    assert all(p.device.type == "meta" for p in again.nnsight._module.parameters()), "no weights"


def test_a_gated_repo_and_an_unreachable_hub_are_one_sentence(hub, llama_files, monkeypatch):
    hub.add(REPO, llama_files, mode="gated")
    with pytest.raises(ModelUnavailable) as e:
        open_remote(REPO)
    assert "gated" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    with pytest.raises(ModelUnavailable, match="could not be reached.*GLASSBOX_NDIF_DIR"):
        open_remote("meta-llama/Llama-3.1-70B")


@pytest.mark.parametrize("change, error, match", [
    ({"auto_map": {"AutoModel": "x.Y"}}, ModelUnavailable, "auto_map"),
    ({"model_type": "gpt_neo", "architectures": ["GPTNeoForCausalLM"]}, UnsupportedModel, "this one is gpt_neo"),
    ({"num_hidden_layers": 100000}, ModelUnavailable, "num_hidden_layers must be a whole number"),
])
def test_a_config_glassbox_will_not_build_is_refused(hub, llama_files, change, error, match):
    config = json.loads(llama_files["config.json"]) | change
    hub.add(REPO, llama_files | {"config.json": json.dumps(config).encode()})
    with pytest.raises(error, match=match):
        open_remote(REPO)


def test_a_tokenizer_with_an_unsafe_splitting_expression_is_refused(hub, llama_files):
    tok = json.loads(llama_files["tokenizer.json"])
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated",
                            "invert": False}
    hub.add(REPO, llama_files | {"tokenizer.json": json.dumps(tok).encode()})
    with pytest.raises(ModelUnavailable):
        open_remote(REPO)
