"""Checkpoint folders: a round trip keeps every weight; broken or hostile folders get a CheckpointError with a
plain message and are never unpickled; saving is atomic."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import engine.model.checkpoint
from engine import CheckpointError, load_pretrained, save_pretrained
from engine_fixtures import tiny_model, tokenizer


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A valid checkpoint, saved once; tests copy it before breaking it."""
    return save_pretrained(tiny_model(seed=3), tokenizer(), tmp_path_factory.mktemp("good") / "ckpt")


@pytest.fixture
def ckpt(good, tmp_path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "ckpt"))


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch):
    """Any attempt to unpickle during a test fails it loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    class RefusingUnpickler(pickle.Unpickler):  # a class, so modules imported mid-test may still subclass it
        __init__ = refuse

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", RefusingUnpickler)


class Trap:
    """Unpickling this creates a file: proof that something ran code from the checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def edit_weights(folder: Path, change) -> None:
    state = load_file(str(folder / "model.safetensors"))
    change(state)
    save_file(state, str(folder / "model.safetensors"))


def refused(folder: Path, match: str, **kwargs) -> str:
    with pytest.raises(CheckpointError, match=match) as e:
        load_pretrained(folder, **kwargs)
    return str(e.value)


# --- the good case --------------------------------------------------------------------------------------------

def test_round_trip_keeps_every_weight(good):
    original = tiny_model(seed=3)
    model, tok = load_pretrained(good)
    assert not model.training
    assert model.config == original.config
    assert model.lm_head.weight is model.transformer.wte.weight
    for name, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert tok.encode("Tom was sad.") == tokenizer().encode("Tom was sad.")
    model_only, none = load_pretrained(good, with_tokenizer=False)
    assert none is None and torch.equal(model_only.transformer.wte.weight, original.transformer.wte.weight)


def test_saved_folder_holds_a_gpt2_config_and_safetensors_only(good):
    names = {p.name for p in good.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    config = json.loads((good / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_embd"] == 32 and config["tie_word_embeddings"]
    state = load_file(str(good / "model.safetensors"))
    assert "lm_head.weight" not in state  # tied: stored once, as wte
    assert all(t.dtype == torch.float32 for t in state.values())


def test_gpt2_style_names_without_prefix_and_old_mask_buffers_load(ckpt):
    def rename(state):
        for key in list(state):
            state[key.removeprefix("transformer.")] = state.pop(key)
        state["h.0.attn.bias"] = torch.ones(1, 1, 16, 16)  # the causal-mask buffer of old GPT-2 files
        state["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    edit_weights(ckpt, rename)
    model, _ = load_pretrained(ckpt)
    assert torch.equal(model.transformer.ln_f.weight, tiny_model(seed=3).transformer.ln_f.weight)


def test_saving_a_loaded_checkpoint_again_writes_the_same_tokenizer_config(good, tmp_path):
    # A resumed run saves the tokenizer it loaded: how it was loaded must not leak into the shipped config.
    model, tok = load_pretrained(good)
    save_pretrained(model, tok, tmp_path / "again")
    config = json.loads((tmp_path / "again" / "tokenizer_config.json").read_text())
    assert config == json.loads((good / "tokenizer_config.json").read_text())
    assert "local_files_only" not in config and "is_local" not in config


# --- config.json ----------------------------------------------------------------------------------------------

def test_missing_config(ckpt):
    (ckpt / "config.json").unlink()
    refused(ckpt, "config.json is missing")


@pytest.mark.parametrize("content,match", [
    (b"{not json", "config.json is not valid JSON"),
    (b"\xff\xfe\x00garbage", "config.json is not valid JSON"),
    (b"", "config.json is not valid JSON"),
    (b"[1, 2, 3]", "config.json must hold a JSON object"),
    (b'"gpt2"', "config.json must hold a JSON object"),
])
def test_config_that_is_not_a_json_object(ckpt, content, match):
    (ckpt / "config.json").write_bytes(content)
    refused(ckpt, match)


def test_oversized_config(ckpt):
    (ckpt / "config.json").write_text(json.dumps({"model_type": "gpt2", "pad": "x" * (1 << 20)}))
    refused(ckpt, "larger than 1 MB")


@pytest.mark.parametrize("changes,match", [
    ({"model_type": "llama"}, "expected model_type 'gpt2', got 'llama'"),
    ({"model_type": None}, "expected model_type 'gpt2'"),
    ({"activation_function": "relu"}, "unsupported activation_function"),
    ({"n_inner": 7}, "n_inner"),
    ({"tie_word_embeddings": False}, "tie_word_embeddings"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"n_layer": "two"}, "does not describe a GPT-2-style model"),
    ({"n_layer": None}, "does not describe a GPT-2-style model"),
    ({"n_layer": 0}, "n_layer must be at least 1"),
    ({"n_head": 3}, "must be divisible by n_head"),
])
def test_config_that_does_not_describe_our_model(ckpt, changes, match):
    edit_config(ckpt, **changes)
    message = refused(ckpt, match)
    assert message.startswith("config.json")


def test_config_without_a_required_field(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    del config["n_positions"]
    (ckpt / "config.json").write_text(json.dumps(config))
    refused(ckpt, "config.json does not describe a GPT-2-style model: 'n_positions'")


@pytest.mark.parametrize("changes", [
    {"vocab_size": 2**20, "n_embd": 2**20, "n_head": 1},  # terabytes of parameters
    {"n_layer": 10**6},  # a million blocks: slow to build even where memory allows
])
def test_config_asking_for_a_huge_model_is_refused_before_allocating(ckpt, changes):
    edit_config(ckpt, **changes)
    refused(ckpt, "too small for")


# --- model.safetensors ------------------------------------------------------------------------------------------

def test_missing_weights(ckpt):
    (ckpt / "model.safetensors").unlink()
    refused(ckpt, "model.safetensors is missing .*never pickles")


def test_pytorch_bin_only_folder_is_refused_and_never_unpickled(ckpt, tmp_path):
    marker = tmp_path / "pwned"
    (ckpt / "model.safetensors").unlink()
    (ckpt / "pytorch_model.bin").write_bytes(pickle.dumps(Trap(marker)))
    refused(ckpt, "only safetensors weights are accepted")
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_never_unpickled(ckpt, tmp_path):
    marker = tmp_path / "pwned"
    weights = ckpt / "model.safetensors"
    # Padded to the real file's size (unpickling stops at the end of the pickle), so the size check passes.
    weights.write_bytes(pickle.dumps(Trap(marker)).ljust(weights.stat().st_size, b"\0"))
    refused(ckpt, "model.safetensors could not be read")
    assert not marker.exists()


@pytest.mark.parametrize("corrupt,match", [
    ("truncated", "could not be read"),
    ("garbage", "could not be read"),
    ("huge header", "could not be read"),
    ("empty", "is too small"),
    ("header past the end", "is too small"),
])
def test_corrupt_weights(ckpt, corrupt, match):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({
        "truncated": data[:len(data) // 2],
        "garbage": os.urandom(len(data)),
        "empty": b"",
        "huge header": struct.pack("<Q", 2**60) + data[8:],
        "header past the end": data[:8] + b"{" * 50,
    }[corrupt])
    refused(ckpt, f"model.safetensors {match}")


def test_tensor_with_the_wrong_shape(ckpt):
    def transpose(state):
        key = "transformer.h.0.attn.c_attn.weight"
        state[key] = state[key].t().contiguous()
    edit_weights(ckpt, transpose)
    refused(ckpt, r"transformer.h.0.attn.c_attn.weight has shape \(96, 32\), config.json implies \(32, 96\)")


def test_config_wider_than_the_weights(ckpt):
    edit_config(ckpt, n_embd=64)
    refused(ckpt, "has shape")


def test_missing_and_unexpected_tensors(ckpt, tmp_path):
    edit_weights(ckpt, lambda state: state.pop("transformer.ln_f.bias"))
    refused(ckpt, r"lacks 1 tensors, e.g. transformer.ln_f.bias")
    other = Path(shutil.copytree(ckpt, tmp_path / "other"))
    edit_weights(other, lambda state: state.update({"transformer.h.7.ln_1.weight": torch.ones(32)}))
    refused(other, "unexpected tensor 'transformer.h.7.ln_1.weight'")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinite_weights(ckpt, bad):
    def poison(state):
        state["transformer.h.1.mlp.c_fc.weight"][3, 4] = bad
    edit_weights(ckpt, poison)
    refused(ckpt, "transformer.h.1.mlp.c_fc.weight holds NaN or infinite values")


def test_weights_over_max_bytes(ckpt):
    size = (ckpt / "model.safetensors").stat().st_size
    refused(ckpt, "over the .* limit", max_bytes=size - 1)
    model, _ = load_pretrained(ckpt, max_bytes=size)  # exactly at the limit is fine
    assert model.config.n_layer == 2


def test_half_precision_weights_load_as_float32(ckpt):
    def halve(state):
        for key in state:
            state[key] = state[key].half()
    edit_weights(ckpt, halve)
    model, _ = load_pretrained(ckpt)
    assert model.transformer.wte.weight.dtype == torch.float32


# --- tokenizer files ------------------------------------------------------------------------------------------

def test_gpt2s_vocab_and_merges_stand_in_for_tokenizer_json(ckpt):
    from engine.model.tokenizer import load_tokenizer
    text = "Once upon a time, ünïcode 🦊 and   spaces\nnew line.<|endoftext|>"
    _, want = load_pretrained(ckpt)
    want.backend_tokenizer.model.save(str(ckpt))  # GPT-2's older repos ship these two files, not tokenizer.json
    (ckpt / "tokenizer.json").unlink()
    _, tok = load_pretrained(ckpt)
    assert tok(text).input_ids == want(text).input_ids and tok.decode(tok(text).input_ids) == text
    assert load_tokenizer(ckpt).convert_tokens_to_ids("<|endoftext|>") == want.convert_tokens_to_ids("<|endoftext|>")


def test_missing_tokenizer(ckpt):
    (ckpt / "tokenizer.json").unlink()
    refused(ckpt, "tokenizer.json is missing")
    model, tok = load_pretrained(ckpt, with_tokenizer=False)
    assert tok is None


def test_broken_tokenizer(ckpt):
    (ckpt / "tokenizer.json").write_text("{broken")
    refused(ckpt, "the tokenizer files could not be loaded")


def test_tokenizer_larger_than_the_model_vocabulary(tmp_path):
    folder = save_pretrained(tiny_model(vocab_size=300), tokenizer(), tmp_path / "small-vocab")
    refused(folder, "the tokenizer has 320 tokens, the model only 300")


# --- atomic save ----------------------------------------------------------------------------------------------

def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_save_creates_a_readable_folder_and_leaves_no_temp_folder(tmp_path):
    folder = save_pretrained(tiny_model(), tokenizer(), tmp_path / "deep" / "new", extra_files={"README.md": "hi"})
    assert folder == tmp_path / "deep" / "new" and (folder / "README.md").read_text() == "hi"
    assert leftovers(folder.parent) == []
    assert (folder.stat().st_mode & 0o777) == 0o755
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in folder.iterdir())


def test_save_replaces_an_existing_folder(ckpt):
    (ckpt / "stale.txt").write_text("from an older save")
    save_pretrained(tiny_model(seed=9), tokenizer(), ckpt)
    assert not (ckpt / "stale.txt").exists()
    assert leftovers(ckpt.parent) == []
    model, _ = load_pretrained(ckpt)
    assert torch.equal(model.transformer.wpe.weight, tiny_model(seed=9).transformer.wpe.weight)


def test_a_failed_save_leaves_the_old_folder_intact(ckpt, monkeypatch):
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")
    monkeypatch.setattr(engine.model.checkpoint, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_pretrained(tiny_model(seed=9), tokenizer(), ckpt)
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before
    assert leftovers(ckpt.parent) == []
