"""The model-family table (engine/model/families/): every family resolves from its config.json, its parts are
where it says in transformers, its quirks reach its facts; one guarded reader of config.json (read, not trusted
from stat), read once per load; the model surface every page uses is one Protocol both model classes meet."""
from __future__ import annotations

import builtins
import importlib
import json
import os
import re
from pathlib import Path

import pytest
import torch
import transformers

from engine import GPT, GPTConfig
from engine.model.arch import Model, ModelConfig, differences
from engine.model.checkpoint import save_pretrained
from engine.model.families import FAMILIES, SUPPORTED, family_for, family_name
from engine.model.families.base import GATED_MLP, GELU_MLP, LEARNED, RMSNORM, ROTARY
from engine.model.files import CheckpointError, read_config_json
from engine.model.hf import HFModel, load_model
from engine_fixtures import TINY_HF, save_tiny_hf, tiny_model, tokenizer

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2"]


def hf_config(key: str):
    """A tiny transformers config of the family (GPT-2: transformers' defaults)."""
    if key == "gpt2":
        return transformers.GPT2Config()
    cls, _, fields = TINY_HF[key]
    return getattr(transformers, cls)(vocab_size=320, **fields)


def config_json(key: str) -> dict:
    return json.loads(hf_config(key).to_json_string()) | {"architectures": [FAMILIES[key].architecture]}


# -- the table --------------------------------------------------------------------------------------------------

def test_the_table_holds_every_family_once_in_the_apps_order():
    assert list(FAMILIES) == KEYS
    assert SUPPORTED == {"GPT2LMHeadModel": "gpt2", "GPTNeoForCausalLM": "gpt_neo",
                         "GPTNeoXForCausalLM": "gpt_neox", "LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
    assert [f.name for f in FAMILIES.values()] == ["GPT-2", "GPT-Neo", "GPT-NeoX", "Llama", "Qwen2"]


def test_one_file_per_family_and_each_is_a_row():
    files = {p.stem for p in (ROOT / "engine/model/families").glob("*.py")} - {"__init__", "base"}
    assert files == set(FAMILIES)
    for key in files:
        assert importlib.import_module(f"engine.model.families.{key}").FAMILY is FAMILIES[key]


@pytest.mark.parametrize("key", KEYS)
def test_every_family_resolves_from_its_config(key):
    family = family_for(config_json(key))
    assert family is FAMILIES[key] and family.key == hf_config(key).model_type
    assert hasattr(transformers, family.architecture) and hasattr(transformers, family.config_class)
    assert type(family.transformers_config(config_json(key))).__name__ == family.config_class
    assert family_name(type("Cfg", (), {"family": key})) == family.name


@pytest.mark.parametrize("key", [k for k in KEYS if not FAMILIES[k].native])
def test_its_parts_are_where_it_says(key):
    """Every attribute path of the family's Parts exists in the transformers model it names."""
    family, conf = FAMILIES[key], hf_config(key)
    with torch.device("meta"):
        model = getattr(transformers, family.architecture)(conf)
    parts = family.parts
    base = getattr(model, parts.base)
    for name in (parts.embed, parts.layers, parts.norm, parts.pos):
        assert name is None or hasattr(base, name), name
    layer = getattr(base, parts.layers)[0]
    mlp = getattr(layer, parts.mlp)
    assert hasattr(layer, parts.attn)
    assert all(name is None or hasattr(mlp, name) for name in (parts.mlp_in, parts.mlp_up, parts.mlp_out))
    assert (parts.mlp_up is not None) == family.gated_mlp == (family.arch(conf).mlp == GATED_MLP)
    assert (parts.pos is not None) == (family.arch(conf).positions == LEARNED)


def test_gpt2_is_glassboxs_own_gpt():
    gpt2 = FAMILIES["gpt2"]
    assert gpt2.native and gpt2.arch is None and gpt2.gpt2_pair and GPTConfig.family == gpt2.key
    with pytest.raises(CheckpointError, match="Glassbox's own GPT"):
        HFModel(torch.nn.Module(), "gpt2")


def test_the_quirks_reach_the_facts():
    neo = FAMILIES["gpt_neo"].arch(hf_config("gpt_neo"))
    assert (neo.attn_scale, neo.scale, neo.positions, neo.local_layers, neo.local_window) == (1.0, 1.0, LEARNED,
                                                                                             (1,), 4)
    assert FAMILIES["gpt_neo"].attention == "eager" and FAMILIES["gpt_neo"].complete is not None
    neox = FAMILIES["gpt_neox"].arch(hf_config("gpt_neox"))
    assert (neox.positions, neox.rotary_dims, neox.d_head, neox.parallel_residual, neox.mlp) == (
        ROTARY, 2, 8, True, GELU_MLP)
    llama = FAMILIES["llama"].arch(hf_config("llama"))
    assert (llama.n_kv_head, llama.kv_groups, llama.mlp, llama.norm, llama.rotary_dims, llama.tied_embeddings) == (
        2, 2, GATED_MLP, RMSNORM, 8, False)
    qwen = FAMILIES["qwen2"].arch(hf_config("qwen2"))
    assert qwen.tied_embeddings and qwen.local_layers == () and qwen.n_kv_head == 2
    windowed = transformers.Qwen2Config(**TINY_HF["qwen2"][2], use_sliding_window=True, sliding_window=8,
                                        max_window_layers=1)
    assert FAMILIES["qwen2"].arch(windowed).local_layers == (1,) and FAMILIES["qwen2"].arch(windowed).local_window == 8
    assert any("No 1/sqrt(d_head)" in d for d in differences(neo))
    assert any("Grouped-query" in d for d in differences(llama)) and differences(GPTConfig()) == []


@pytest.mark.parametrize("changes, words", [
    ({"auto_map": {"AutoModelForCausalLM": "evil.Evil"}}, "own Python code (auto_map)"),
    ({"architectures": []}, "names no architecture"),
    ({"architectures": ["MambaForCausalLM"]}, "MambaForCausalLM is not supported (it runs GPT2LMHeadModel"),
    ({"model_type": "mistral"}, "model_type 'mistral', not 'llama'"),
])
def test_a_config_it_does_not_run_is_one_sentence(changes, words):
    with pytest.raises(CheckpointError, match=re.escape(words)):
        family_for(config_json("llama") | changes, CheckpointError)


def test_gpt2_may_omit_its_architecture_where_the_loader_allows():
    ours = GPTConfig().to_hf_dict()
    del ours["architectures"]
    assert family_for(ours, untyped_gpt2=True) is FAMILIES["gpt2"]
    with pytest.raises(ValueError, match="names no architecture"):
        family_for(ours)


def test_gpt_neo_refuses_a_layer_list_that_would_explode():
    with pytest.raises(ValueError, match="attention_types"):
        family_for(config_json("gpt_neo") | {"attention_types": [[["global"], 10**9]]})


# -- config.json: one guarded reader, read once ------------------------------------------------------------------

@pytest.mark.parametrize("raw, words", [
    (b'{"pad": "' + b"x" * (1 << 20) + b'"}', "config.json is larger than 1 MB: not a model config"),
    (b"{not json", "config.json is not valid JSON"),
    (b"\xff\xfe{}", "config.json is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "config.json is nested too deeply to be a model config"),
    (b"[1, 2]", "config.json must hold a JSON object"),
])
def test_the_reader_refuses_what_is_not_a_config(tmp_path, raw, words):
    (tmp_path / "config.json").write_bytes(raw)
    with pytest.raises(CheckpointError, match=words):
        read_config_json(tmp_path)
    with pytest.raises(ValueError, match=words):  # each caller's own error class
        read_config_json(tmp_path, ValueError)


def test_the_reader_counts_the_bytes_it_reads_not_what_stat_says(tmp_path, monkeypatch):
    """A /proc file says 0 bytes; the reader reads to the cap and no further, whatever stat says."""
    (tmp_path / "config.json").write_bytes(b"{" + b" " * (4 << 20) + b"}")
    real_stat = Path.stat

    def lying_stat(self, *args, **kwargs):
        st = real_stat(self, *args, **kwargs)
        return os.stat_result((*st[:6], 0, *st[7:])) if self.name == "config.json" else st

    monkeypatch.setattr(Path, "stat", lying_stat)
    assert (tmp_path / "config.json").stat().st_size == 0 and (tmp_path / "config.json").is_file()
    with pytest.raises(CheckpointError, match="larger than 1 MB"):
        read_config_json(tmp_path)


def test_a_fifo_is_not_a_config_and_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "config.json")  # opening it to read would wait for a writer forever
    with pytest.raises(CheckpointError, match="config.json is missing"):
        read_config_json(tmp_path)


def _opens_of_config(monkeypatch) -> list[str]:
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file).endswith("config.json") and not str(file).endswith(("tokenizer_config.json",
                                                                         "generation_config.json")):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    return opened


@pytest.mark.parametrize("key", KEYS)
def test_loading_reads_config_json_once(tmp_path, monkeypatch, key):
    if key == "gpt2":
        save_pretrained(tiny_model(), tokenizer(), tmp_path)
    else:
        save_tiny_hf(key, tmp_path)
    opened = _opens_of_config(monkeypatch)
    model, _ = load_model(tmp_path)
    assert model.config.family == key
    assert opened == [str(tmp_path / "config.json")], opened


# -- the surface the pages use -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["gpt2", "llama"])
def test_both_model_classes_meet_the_protocols(tmp_path, key):
    if key == "gpt2":
        model = tiny_model()
    else:
        save_tiny_hf(key, tmp_path)
        model, _ = load_model(tmp_path)
    assert isinstance(model, Model) and isinstance(model.config, ModelConfig)
    assert isinstance(model, GPT) == (key == "gpt2")
