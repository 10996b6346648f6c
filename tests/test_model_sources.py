"""Where models come from, priced before loading (engine.model.facts, engine.model.sources, engine.model.hub).

Facts from config.json alone: for a tiny random model of every supported family (built offline by
transformers), the parameter count equals transformers' own count of the real model, and the fp32 and
trace bytes follow. Refusals: unknown architectures, custom code, quantized or absurd configs, huge files,
over budget, pickles. Local folders: discovery under GLASSBOX_MODELS_DIR and the checks before loading. The
Hub: fetch_hub_model against tests/hub_fake.py on 127.0.0.1 (HF_ENDPOINT), which serves one tiny GPT-2 repo
and repos that are wrong in one way each, plus a server that never answers, one that stalls mid-file, a
closed port and a name lookup that hangs: only the files a model needs are ever asked for, refusals come
before any weight, and every failure is one plain sentence within the timeout.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import transformers
from hub_fake import COMMIT, FakeHub, SilentServer, closed_port
from transformers import (AutoModelForCausalLM, GPT2Config, GPTNeoConfig, GPTNeoXConfig, LlamaConfig,
                          Qwen2Config)

from engine.model import facts as facts_module
from engine.model import sources
from engine.model.cost import trace_cost
from engine.model.sources import (CURATED, MODEL_BUDGET_ENV, MODELS_DIR_ENV, SUPPORTED, HubUnreachable,
                                  LocalModel, SourceError, check_folder, fetch_hub_model, local_models,
                                  model_budget_bytes, model_facts, read_model_config)
from engine_fixtures import VOCAB, tokenizer

ALLOWED = {"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json",
           "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "generation_config.json"}
# Tiny configs, one per family, in the shapes that matter: grouped-query attention (kv heads < heads),
# GPT-Neo's local layers, Pythia's untied unembedding, Qwen2's q/k/v biases and tied embeddings.
TINY = {
    "gpt2": lambda: GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=VOCAB, bos_token_id=0,
                               eos_token_id=0, architectures=["GPT2LMHeadModel"]),
    "gpt_neo": lambda: GPTNeoConfig(num_layers=2, attention_types=[[["global", "local"], 1]], hidden_size=32,
                                    num_heads=2, max_position_embeddings=64, window_size=8, vocab_size=VOCAB,
                                    bos_token_id=0, eos_token_id=0, architectures=["GPTNeoForCausalLM"]),
    "gpt_neox": lambda: GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=64, vocab_size=VOCAB,
                                      tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                      architectures=["GPTNeoXForCausalLM"]),
    "llama": lambda: LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, max_position_embeddings=64, vocab_size=VOCAB,
                                 bos_token_id=0, eos_token_id=0, architectures=["LlamaForCausalLM"]),
    "qwen2": lambda: Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=1, max_position_embeddings=512, vocab_size=VOCAB,
                                 tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
                                 architectures=["Qwen2ForCausalLM"]),
}
QWEN25_05B = {  # Qwen/Qwen2.5-0.5B's config.json, as published
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
    "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
    "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.40.1",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936}


def config_dict(family: str, **changes) -> dict:
    """What config.json holds for the family's tiny model (as save_pretrained writes it)."""
    return json.loads(TINY[family]().to_json_string()) | changes


def save_model(folder: Path, family: str = "gpt2", **save_kwargs) -> Path:
    """A tiny random model and our test tokenizer, as a Hugging Face folder."""
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(TINY[family]()).save_pretrained(folder, **save_kwargs)
    tokenizer().save_pretrained(folder)
    return folder


def refused(fn, *fragments: str, kind=SourceError) -> str:
    with pytest.raises(kind) as e:
        fn()
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)
    return str(e.value)


# -- facts from config.json -----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", list(TINY))
def test_parameter_count_is_transformers_own(family):
    cfg = TINY[family]()
    torch.manual_seed(0)
    real = AutoModelForCausalLM.from_config(cfg)  # real tensors: what from_pretrained would hold
    facts = model_facts(config_dict(family))
    assert facts.n_params == real.num_parameters()
    assert facts.weights_bytes == 4 * real.num_parameters()
    assert (facts.architecture, facts.family) == (cfg.architectures[0], family)
    n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    assert (facts.n_layer, facts.n_head, facts.n_kv_head, facts.d_model, facts.context, facts.vocab_size) == (
        cfg.num_hidden_layers, cfg.num_attention_heads, n_kv, cfg.hidden_size, cfg.max_position_embeddings, VOCAB)


@pytest.mark.parametrize("family", list(TINY))
def test_trace_bytes_count_what_each_family_records(family):
    """Written out per family, independently of cost.py: per layer resid_pre/attn_out/resid_mid/mlp_out/
    resid_post, q, k, v and z over every head (a Trace repeats grouped heads' keys and values: each query head's
    own), 2 MLP widths (3 when gated), 2 patterns; embed, pos_embed (zeros for rotary) and ln_final."""
    f = model_facts(config_dict(family))
    t, d, L, h, dh = min(256, f.context), f.d_model, f.n_layer, f.n_head, f.d_model // f.n_head
    gated = family in ("llama", "qwen2")
    per_layer = 5 * d + 4 * h * dh + (3 if gated else 2) * f.d_mlp
    values = t * (3 * d + L * per_layer) + 2 * L * h * t * t + t * VOCAB
    assert f.trace_bytes == 4 * values
    assert f.d_mlp == (4 * d if family in ("gpt2", "gpt_neo") else 64)
    assert (f.n_kv_head < f.n_head) == (family in ("llama", "qwen2"))


def test_trace_cost_keywords_keep_our_gpt_and_price_the_others():
    base = trace_cost(4, 8, 256, 128, 1000, n_pos=100)
    assert trace_cost(4, 8, 256, 128, 1000, n_pos=100, n_kv_head=8, d_head=32, gated_mlp=False, pos_embed=True) == base
    # A gated MLP records one more d_mlp-wide activation per layer; grouped-query k and v are narrower.
    gated = trace_cost(4, 8, 256, 128, 1000, n_pos=100, gated_mlp=True)
    assert gated.activations - base.activations == 4 * 100 * 4 * 1024
    gqa = trace_cost(4, 8, 256, 128, 1000, n_pos=100, n_kv_head=2)
    assert base.activations - gqa.activations == 4 * 100 * 4 * 2 * (256 - 64)
    assert base.activations - trace_cost(4, 8, 256, 128, 1000, n_pos=100, pos_embed=False).activations == 4 * 100 * 256
    assert gqa.attention == base.attention and gqa.flops < base.flops


def test_real_sizes_on_the_meta_device_in_well_under_a_second():
    """GPT-2 small and Qwen2.5-0.5B counted without allocating their 0.5 and 2 GB: the published counts. The
    time bound guards against a real allocation (about 25 ms measured against 1 s allowed)."""
    model_facts(config_dict("qwen2"))  # the first call of a family imports its modeling module
    start = time.perf_counter()
    qwen = model_facts(QWEN25_05B)
    assert time.perf_counter() - start < 1.0
    assert qwen.n_params == 494_032_768 and (qwen.n_head, qwen.n_kv_head, qwen.d_mlp) == (14, 2, 4864)
    gpt2 = model_facts(json.loads(GPT2Config(architectures=["GPT2LMHeadModel"]).to_json_string()))
    assert gpt2.n_params == 124_439_808 and gpt2.weights_bytes == 497_759_232
    assert gpt2.summary() == ("GPT-2 family · 124 M parameters · 475 MB in fp32 · one 256-token look inside: "
                              f"{gpt2.trace_bytes / 2**20:.0f} MB")
    assert model_facts(QWEN25_05B) is qwen  # cached by the config's JSON


def test_a_short_context_prices_the_whole_context():
    f = model_facts(config_dict("gpt2"))
    assert f.context == 64 and "one 64-token look inside" in f.summary()


def test_refuses_an_architecture_it_does_not_run_naming_it_and_the_supported():
    msg = refused(lambda: model_facts({"architectures": ["BertForMaskedLM"], "model_type": "bert"}), "BertForMaskedLM")
    assert all(name in msg for name in SUPPORTED)


@pytest.mark.parametrize("changes, fragment", [
    ({"auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}, "auto_map"),
    ({"quantization_config": {"quant_method": "gptq"}}, "quantized"),
    ({"architectures": []}, "names no architecture"),
    ({"architectures": None}, "names no architecture"),
    ({"model_type": "mistral"}, "model_type"),
    ({"n_layer": "twelve"}, "n_layer"),
    ({"n_layer": 0}, "n_layer"),
    ({"n_layer": -2}, "n_layer"),
    ({"n_layer": 10**9}, "n_layer"),  # refused before transformers builds a billion layers
    ({"n_layer": True}, "n_layer"),
    ({"n_layer": 2.0}, "n_layer"),
    ({"n_head": None}, "n_head"),
    ({"vocab_size": 10**12}, "vocab_size"),
    ({"n_positions": [64]}, "n_positions"),
    ({"n_embd": 33}, "divide"),  # 33 wide over 2 heads
    ({"activation_function": "no_such_thing"}, "GPT-2"),  # transformers cannot build it: we say so, in one line
])
def test_refuses_custom_code_and_garbage_numbers(changes, fragment):
    refused(lambda: model_facts(config_dict("gpt2", **changes)), fragment)


def test_refuses_a_gpt_neo_layer_list_that_would_explode():
    start = time.perf_counter()
    refused(lambda: model_facts(config_dict("gpt_neo", attention_types=[[["global"], 10**9]])), "attention_types")
    six_layers = config_dict("gpt_neo", attention_types=[[["global", "local"], 3]])
    del six_layers["attention_layers"]  # saved configs hold the expanded list too, which wins over the types
    refused(lambda: model_facts(six_layers), "GPT-Neo")
    assert time.perf_counter() - start < 5


def test_refuses_grouped_heads_that_do_not_divide():
    refused(lambda: model_facts(config_dict("llama", num_key_value_heads=3)), "divide")


@pytest.mark.parametrize("raw, fragment", [
    (b"{" + b'"a": "' + b"x" * (1 << 20) + b'"}', "larger than"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"architectures": [', "not valid JSON"),
    (b'["GPT2LMHeadModel"]', "JSON object"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_read_model_config_refuses_what_is_not_a_config(tmp_path, raw, fragment):
    (tmp_path / "config.json").write_bytes(raw)
    refused(lambda: read_model_config(tmp_path), fragment)


def test_read_model_config_reads_a_config_and_says_when_there_is_none(tmp_path):
    refused(lambda: read_model_config(tmp_path), "config.json is missing")
    (tmp_path / "config.json").write_text(json.dumps(config_dict("llama")))
    assert read_model_config(tmp_path)["model_type"] == "llama"


# -- the budget -------------------------------------------------------------------------------------------------

def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(MODEL_BUDGET_ENV, raising=False)
    assert model_budget_bytes() == 1536 * 2**20
    monkeypatch.setenv(MODEL_BUDGET_ENV, "300")
    assert model_budget_bytes() == 300 * 2**20
    for bad in ("lots", "-5", "0", "inf"):
        monkeypatch.setenv(MODEL_BUDGET_ENV, bad)
        refused(model_budget_bytes, MODEL_BUDGET_ENV)


def test_refusal_names_what_the_model_needs_and_what_the_server_has():
    f = model_facts(QWEN25_05B)
    msg = f.refusal(1536 * 2**20)
    assert msg is not None and MODEL_BUDGET_ENV in msg and "1.8 GB" in msg and "1.5 GB" in msg
    gpt2 = model_facts(json.loads(GPT2Config(architectures=["GPT2LMHeadModel"]).to_json_string()))
    assert gpt2.refusal(1536 * 2**20) is None
    assert "already loaded" in gpt2.refusal(1536 * 2**20, loaded_bytes=1300 * 2**20)
    assert gpt2.refusal(gpt2.weights_bytes + gpt2.trace_bytes) is None
    assert gpt2.refusal(gpt2.weights_bytes + gpt2.trace_bytes - 1) is not None


def test_the_curated_list_is_owner_slash_name():
    assert len(CURATED) == 11 and all(n.count("/") == 1 for n in CURATED)
    # each instruct model the list offers comes with its base model: the RLHF page compares the pair
    assert all(n.removesuffix("-Instruct") in CURATED for n in CURATED)


# -- local folders ----------------------------------------------------------------------------------------------

def test_local_models_are_the_sub_folders_with_a_config(tmp_path, monkeypatch):
    for name in ("zeta", "Alpha", "beta", ".beta.partial-x1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "loose.txt").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert local_models() == []
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    assert local_models() == [LocalModel("Alpha", tmp_path / "Alpha"), LocalModel("beta", tmp_path / "beta"),
                              LocalModel("zeta", tmp_path / "zeta")]
    assert [m.name for m in local_models(tmp_path / "zeta")] == []
    assert local_models(tmp_path / "missing") == []


def test_check_folder_passes_a_model_folder(tmp_path):
    for family in ("gpt2", "llama"):
        folder = save_model(tmp_path / family, family)
        assert check_folder(folder) == model_facts(read_model_config(folder))


def test_check_folder_refuses_pickled_weights_naming_them(tmp_path):
    folder = save_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    msg = refused(lambda: check_folder(folder), "pytorch_model.bin (a pickle, never loaded)")
    assert "safetensors" in msg


def test_check_folder_needs_a_tokenizer(tmp_path):
    folder = save_model(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    refused(lambda: check_folder(folder), "no tokenizer", "tokenizer.json")
    (folder / "vocab.json").write_text("{}")  # GPT-2's pair of files is a tokenizer too
    (folder / "merges.txt").write_text("#version: 0.2\n")
    check_folder(folder)
    llama = save_model(tmp_path / "llama", "llama")
    (llama / "tokenizer.json").unlink()
    (llama / "vocab.json").write_text("{}")  # not GPT-2's tokenizer in this family: the loader would refuse it
    (llama / "merges.txt").write_text("#version: 0.2\n")
    msg = refused(lambda: check_folder(llama), "no tokenizer", "tokenizer.json is missing")
    assert "would also do" not in msg


def test_check_folder_refuses_custom_tokenizer_code(tmp_path):
    folder = save_model(tmp_path / "m")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg | {"auto_map": {"AutoTokenizer": ["t.T", None]}}))
    refused(lambda: check_folder(folder), "auto_map")


def test_check_folder_takes_shards_and_wants_them_all(tmp_path):
    folder = save_model(tmp_path / "m", max_shard_size="40KB")
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    check_folder(folder)
    (folder / shards[-1]).unlink()
    refused(lambda: check_folder(folder), shards[-1])


# -- the Hub ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def repo_files(tmp_path_factory) -> dict[str, bytes]:
    """A tiny GPT-2 repo as the Hub holds it, with files that must never be fetched beside the model's."""
    folder = save_model(tmp_path_factory.mktemp("repo"))
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    return files | {"pytorch_model.bin": b"\x80\x04pickle", "modeling_evil.py": b"import os", "README.md": b"# m",
                    ".gitattributes": b"*.bin lfs", "flax_model.msgpack": b"x", "onnx/model.onnx": b"x",
                    "original/model.safetensors": b"x"}


@pytest.fixture
def hub(monkeypatch, repo_files):
    h = FakeHub()
    h.add("tiny/gpt2", repo_files)
    monkeypatch.setenv("HF_ENDPOINT", h.base_url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv(MODEL_BUDGET_ENV, raising=False)
    yield h
    h.stop()


def _variant(repo_files: dict[str, bytes], drop=(), **replace: dict) -> dict[str, bytes]:
    """The repo with files dropped and JSON files changed (names with _DOT_ for the dot)."""
    files = {k: v for k, v in repo_files.items() if k not in drop}
    for name, changes in replace.items():
        name = name.replace("_DOT_", ".")
        files[name] = json.dumps(json.loads(files[name]) | changes).encode()
    return files


def _nothing_left(dest_root: Path) -> None:
    assert not dest_root.exists() or list(dest_root.iterdir()) == []  # no folder, complete or partial


def test_fetch_downloads_only_what_a_model_needs(hub, repo_files, tmp_path):
    seen: list[tuple[int, int]] = []
    dest = fetch_hub_model("tiny/gpt2", tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert dest == tmp_path / "tiny--gpt2"
    wanted = {n for n in repo_files if n in ALLOWED}
    assert set(hub.fetched()) == wanted and len(hub.fetched()) == len(wanted)  # each once, nothing else
    assert hub.fetched()[0] == "config.json" and hub.fetched()[-1] == "model.safetensors"  # priced first
    assert {p.name for p in dest.iterdir()} == wanted | {".glassbox-source.json"}
    for name in wanted:
        assert (dest / name).read_bytes() == repo_files[name]
    total = sum(len(repo_files[n]) for n in wanted)
    assert seen[-1] == (total, total) and len(seen) > 3  # called as files arrive, not once at the end
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:])) and {t for _, t in seen} == {total}
    assert [p.name for p in tmp_path.iterdir()] == ["tiny--gpt2"]  # no partial folder left beside it
    record = json.loads((dest / ".glassbox-source.json").read_text())
    assert (record["repo_id"], record["revision"], record["commit"]) == ("tiny/gpt2", "main", COMMIT)
    assert check_folder(dest).family == "gpt2"
    assert all(f"/resolve/{COMMIT}/" in r["path"] for r in hub.requests if "/resolve/" in r["path"])


def test_a_complete_folder_is_not_downloaded_again(hub, tmp_path):
    fetch_hub_model("tiny/gpt2", tmp_path)
    asked = len(hub.requests)
    assert fetch_hub_model("tiny/gpt2", tmp_path) == tmp_path / "tiny--gpt2"
    assert len(hub.requests) == asked


def test_sharded_weights_come_with_their_index(hub, tmp_path):
    folder = save_model(tmp_path / "src", max_shard_size="40KB")
    hub.add("tiny/sharded", {p.name: p.read_bytes() for p in folder.iterdir()})
    dest = fetch_hub_model("tiny/sharded", tmp_path / "models")
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) > 1 and hub.fetched().index("model.safetensors.index.json") < hub.fetched().index(shards[0])
    check_folder(dest)


def test_the_token_goes_to_the_hub_only_and_never_into_a_message(hub, tmp_path, monkeypatch):
    token = "hf_secret_token_8d1e"
    monkeypatch.setenv("HF_TOKEN", token)
    fetch_hub_model("tiny/gpt2", tmp_path)
    assert {r["auth"] for r in hub.requests if r["server"] == "hub"} == {f"Bearer {token}"}
    assert {r["auth"] for r in hub.requests if r["server"] == "cdn"} == {None}  # the LFS redirect's other origin
    msg = refused(lambda: fetch_hub_model("nobody/nothing", tmp_path), "nobody/nothing")
    assert token not in msg and "HF_TOKEN" in msg


def test_a_repo_with_only_a_pickle_is_refused_before_any_download(hub, repo_files, tmp_path):
    hub.add("tiny/pickled", _variant(repo_files, drop=("model.safetensors",)))
    msg = refused(lambda: fetch_hub_model("tiny/pickled", tmp_path),
                  "tiny/pickled has no safetensors weights", "pytorch_model.bin (a pickle, never loaded)")
    assert "flax_model.msgpack (Flax weights)" in msg
    assert hub.fetched() == []
    _nothing_left(tmp_path)


def test_a_repo_without_a_tokenizer_is_refused_before_any_download(hub, repo_files, tmp_path):
    hub.add("tiny/notok", _variant(repo_files, drop=("tokenizer.json", "vocab.json", "merges.txt")))
    refused(lambda: fetch_hub_model("tiny/notok", tmp_path), "no tokenizer")
    assert hub.fetched() == []


def test_a_llama_repo_with_only_gpt2s_pair_is_refused_after_its_config(hub, tmp_path_factory, tmp_path):
    folder = save_model(tmp_path_factory.mktemp("llama"), "llama")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "tokenizer.json"}
    hub.add("tiny/llama-pair", files | {"vocab.json": b"{}", "merges.txt": b"#version: 0.2\n"})
    refused(lambda: fetch_hub_model("tiny/llama-pair", tmp_path), "no tokenizer Glassbox can load")
    assert "model.safetensors" not in hub.fetched()
    _nothing_left(tmp_path)


@pytest.mark.parametrize("variant, fragment", [
    ({"config_DOT_json": {"auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}}, "auto_map"),
    ({"config_DOT_json": {"architectures": ["MambaForCausalLM"], "model_type": "mamba"}}, "MambaForCausalLM"),
    ({"tokenizer_config_DOT_json": {"auto_map": {"AutoTokenizer": ["evil.Tok", None]}}}, "tokenizer_config.json"),
])
def test_custom_code_and_unsupported_architectures_are_refused_before_the_weights(hub, repo_files, tmp_path,
                                                                                 variant, fragment):
    hub.add("tiny/odd", _variant(repo_files, **variant))
    refused(lambda: fetch_hub_model("tiny/odd", tmp_path), fragment)
    assert "model.safetensors" not in hub.fetched() and not any(r["server"] == "cdn" for r in hub.requests)
    _nothing_left(tmp_path)


def test_over_budget_is_refused_from_the_config_before_the_weights(hub, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_BUDGET_ENV, "0.1")  # 100 KB: less than the tiny model's fp32 weights
    refused(lambda: fetch_hub_model("tiny/gpt2", tmp_path), MODEL_BUDGET_ENV)
    assert hub.fetched() == ["config.json"]
    _nothing_left(tmp_path)


def test_weights_listed_larger_than_the_budget_are_refused(hub, repo_files, tmp_path, monkeypatch):
    files = dict(repo_files)
    files["model.safetensors"] = files["model.safetensors"] + b"\0" * (3 << 20)  # 3 MB listed
    hub.add("tiny/padded", files)
    facts = check_folder(save_model(tmp_path / "src"))
    monkeypatch.setenv(MODEL_BUDGET_ENV, str((facts.weights_bytes + facts.trace_bytes) / 2**20 + 1))
    refused(lambda: fetch_hub_model("tiny/padded", tmp_path / "models"), "weights are 3.", MODEL_BUDGET_ENV)
    assert "model.safetensors" not in hub.fetched()


@pytest.mark.parametrize("mode, fragment", [("longer", "more of model.safetensors"), ("corrupt", "corrupted"),
                                            ("gated", "gated")])
def test_a_file_that_is_not_what_the_list_says_is_not_kept(hub, repo_files, tmp_path, mode, fragment):
    hub.add("tiny/bad", repo_files, mode=mode)
    refused(lambda: fetch_hub_model("tiny/bad", tmp_path), fragment)
    _nothing_left(tmp_path)


def test_an_unknown_repo_or_revision_says_so(hub, tmp_path):
    refused(lambda: fetch_hub_model("nobody/nothing", tmp_path), "no model nobody/nothing", "private or gated")
    refused(lambda: fetch_hub_model("tiny/gpt2", tmp_path, revision="v9"), "no revision 'v9'")
    _nothing_left(tmp_path)


@pytest.mark.parametrize("repo_id", ["gpt2", "a/b/c", "../etc", "owner/..", "owner/na..me", "own--er/name",
                                     "owner/name with space", "owner/name?x=1", "-owner/name", "owner/", "/name",
                                     "owner/name.", "ówner/name", "owner\\name", ""])
def test_repo_ids_are_checked_before_anything_is_asked(hub, tmp_path, repo_id):
    refused(lambda: fetch_hub_model(repo_id, tmp_path), "owner/name")
    assert hub.requests == []


def test_a_bad_endpoint_is_one_sentence(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "ftp://example.org")
    refused(lambda: fetch_hub_model("tiny/gpt2", tmp_path), "HF_ENDPOINT")


def _timed_refusal(fn, limit_s: float, *fragments: str, kind=SourceError) -> str:
    start = time.monotonic()
    msg = refused(fn, *fragments, kind=kind)
    assert time.monotonic() - start < limit_s, msg
    return msg


def test_a_closed_port_answers_at_once_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    msg = _timed_refusal(lambda: fetch_hub_model("tiny/gpt2", tmp_path, timeout=5.0), 2.0,
                         "The Hugging Face Hub could not be reached (", "refused the connection", MODELS_DIR_ENV,
                         kind=HubUnreachable)
    assert "\n" not in msg
    _nothing_left(tmp_path)


def test_a_server_that_never_answers_fails_within_the_timeout(tmp_path, monkeypatch):
    silent = SilentServer()
    monkeypatch.setenv("HF_ENDPOINT", silent.base_url)
    try:
        _timed_refusal(lambda: fetch_hub_model("tiny/gpt2", tmp_path, timeout=1.0), 2.5,
                       "could not be reached", "within 1 s", kind=HubUnreachable)
    finally:
        silent.stop()


def test_a_name_lookup_that_hangs_fails_within_the_timeout(tmp_path, monkeypatch):
    """getaddrinfo has no timeout of its own; offline, a resolver can take tens of seconds to give up."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == "hub.invalid":
            release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    try:
        _timed_refusal(lambda: fetch_hub_model("tiny/gpt2", tmp_path, timeout=0.5), 2.0, "could not be reached",
                       kind=HubUnreachable)
    finally:
        release.set()


def test_a_name_that_does_not_resolve_says_so(tmp_path, monkeypatch):
    def no_such_name(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    _timed_refusal(lambda: fetch_hub_model("tiny/gpt2", tmp_path), 2.0, "the name hub.invalid does not resolve",
                   kind=HubUnreachable)


def test_a_download_that_stalls_mid_file_fails_in_bounded_time_and_keeps_nothing(hub, repo_files, tmp_path):
    hub.add("tiny/stall", repo_files, mode="stall")
    _timed_refusal(lambda: fetch_hub_model("tiny/stall", tmp_path, timeout=1.0), 4.0, "model.safetensors",
                   "stalled")
    _nothing_left(tmp_path)
    assert local_models(tmp_path) == []


def test_a_download_that_drips_fails_in_bounded_time(hub, repo_files, tmp_path):
    """A byte every 0.2 s never trips a socket timeout; the stall window catches it."""
    hub.add("tiny/drip", repo_files, mode="drip")
    _timed_refusal(lambda: fetch_hub_model("tiny/drip", tmp_path, timeout=1.0), 4.0, "stalled")
    _nothing_left(tmp_path)


def test_two_fetches_of_one_repo_at_once_download_it_once(hub, tmp_path):
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fetch_hub_model("tiny/gpt2", tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [tmp_path / "tiny--gpt2"] * 2
    assert hub.fetched().count("model.safetensors") == 1


def test_counting_never_touches_torch_process_wide_defaults(monkeypatch):
    """Counting runs beside other sessions' work: AutoModelForCausalLM.from_config would set torch's default
    dtype to the config's (float16 here) for the duration, under every other thread's feet."""
    calls = []
    monkeypatch.setattr(torch, "set_default_dtype", lambda dtype: calls.append(dtype))
    monkeypatch.setattr(torch, "set_default_device", lambda device: calls.append(device))
    facts = model_facts(QWEN25_05B | {"torch_dtype": "float16", "hidden_size": 128, "num_attention_heads": 2,
                                      "num_key_value_heads": 1})
    assert calls == [] and facts.n_params > 0
    assert facts_module.SUPPORTED is SUPPORTED and hasattr(transformers, "Qwen2ForCausalLM")


def test_a_killed_downloads_leftovers_are_swept_before_the_next_download(hub, repo_files, tmp_path):
    import os
    import time
    stale, fresh = tmp_path / ".other--model.partial-abc", tmp_path / ".tiny--busy.partial-def"
    for folder in (stale, fresh):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "model.safetensors").write_bytes(b"x" * 1000)
    old = time.time() - sources.STALE_PARTIAL_S - 60
    for path in (stale / "sub" / "model.safetensors", stale / "sub", stale):
        os.utime(path, (old, old))
    fetch_hub_model("tiny/gpt2", tmp_path)
    assert not stale.exists()  # nothing written for longer than any live download pauses
    assert fresh.exists()  # another process may still be writing it
    assert sources.sweep_partials(tmp_path) == []
