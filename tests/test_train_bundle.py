"""Model zips: export and import give back the same model; broken and hostile zips get a clear refusal."""
from __future__ import annotations

import io
import json
import pickle
import stat
import zipfile

import pytest
import torch

from engine.train.bundle import BundleError, check_zip, export_zip, import_zip
from engine_fixtures import tiny_model, tokenizer


@pytest.fixture(scope="module")
def good_zip() -> bytes:
    return export_zip(tiny_model(seed=3), tokenizer(), "my-model", card="# A test model\n")


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(files: dict[str, bytes], mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _with(good: bytes, **changes: bytes | None) -> bytes:
    """The good zip's files with some replaced (bytes), added, or removed (None); names are bare."""
    files = {n.split("/")[-1]: d for n, d in _files(good).items()}
    for name, data in changes.items():
        name = name.replace("__", "/").replace("_DOT_", ".")
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return _zip(files)


def test_round_trip_gives_the_same_model_and_tokenizer(good_zip):
    names = set(_files(good_zip))
    assert {"my-model/config.json", "my-model/model.safetensors", "my-model/tokenizer.json",
            "my-model/README.md"} <= names
    model, tok = import_zip(good_zip)
    original = tiny_model(seed=3)
    ids = torch.tensor([[0, 5, 17, 42, 99]])
    torch.testing.assert_close(model(ids)[0], original(ids)[0])
    text = "Tom liked to play with a red ball."
    assert tok(text)["input_ids"] == tokenizer()(text)["input_ids"]
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 0


def test_the_zip_loads_in_transformers(good_zip, tmp_path):
    from transformers import AutoModelForCausalLM
    with zipfile.ZipFile(io.BytesIO(good_zip)) as zf:
        zf.extractall(tmp_path)  # our own zip, in a test: safe to extract as is
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "my-model")
    ids = torch.tensor([[0, 5, 17, 42, 99]])
    torch.testing.assert_close(hf(ids).logits, tiny_model(seed=3)(ids)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd", "a/b/c/config.json", "..\\config.json", "C:x.json"])
def test_paths_that_could_escape_are_refused(good_zip, name):
    files = _files(good_zip) | {name: b"{}"}
    with pytest.raises(BundleError, match="unsafe"):
        import_zip(_zip(files))


def test_pickles_are_refused_even_beside_safetensors(good_zip):
    evil = pickle.dumps({"weights": [1, 2, 3]})
    with pytest.raises(BundleError, match="pickle-style file .* safetensors weights only"):
        import_zip(_with(good_zip, pytorch_model_DOT_bin=evil))
    with pytest.raises(BundleError, match="no model.safetensors .*never pickles"):
        import_zip(_with(good_zip, model_DOT_safetensors=None))


def test_a_zip_bomb_is_refused_before_it_is_unpacked(good_zip):
    bomb = b"{" + b" " * (200 * 2**20) + b"}"  # 200 MB of spaces: compresses about a thousandfold
    with pytest.raises(BundleError, match="tokenizer.json is 200 MB; the limit is 2 MB"):
        import_zip(_with(good_zip, tokenizer_DOT_json=bomb))
    with pytest.raises(BundleError, match="zip bomb"):
        import_zip(_with(good_zip, model_DOT_safetensors=b"\x00" * (20 * 2**20)))


def test_wrong_shapes_are_refused(good_zip):
    config = json.loads(_files(good_zip)["my-model/config.json"])
    config["n_embd"] = 64  # the tensors are 32 wide
    with pytest.raises(BundleError, match="shape|too small"):
        import_zip(_with(good_zip, config_DOT_json=json.dumps(config).encode()))
    config["n_embd"], config["n_layer"] = 32, 3  # a layer the weights do not have
    with pytest.raises(BundleError, match="lacks"):
        import_zip(_with(good_zip, config_DOT_json=json.dumps(config).encode()))


@pytest.mark.parametrize("data, message", [
    (b"not a zip at all", "not a zip"),
    (b"PK\x03\x04" + b"\x00" * 40, "not a zip"),
])
def test_broken_files_are_refused(data, message):
    with pytest.raises(BundleError, match=message):
        import_zip(data)


def test_anything_unexpected_is_refused(good_zip):
    with pytest.raises(BundleError, match="unexpected file"):
        import_zip(_with(good_zip, run_DOT_py=b"import os"))
    with pytest.raises(BundleError, match="symbolic link"):
        import_zip(_zip({n: d for n, d in _files(good_zip).items()} | {"m/link": b"/etc/passwd"},
                        mode=stat.S_IFLNK | 0o777))
    with pytest.raises(BundleError, match="config.json is not valid JSON"):
        import_zip(_with(good_zip, config_DOT_json=b"{nope"))
    with pytest.raises(BundleError, match="tokenizer.json must hold a JSON object"):
        import_zip(_with(good_zip, tokenizer_DOT_json=b"[]"))
    with pytest.raises(BundleError, match="could not be read|too small"):
        import_zip(_with(good_zip, model_DOT_safetensors=b"\x00" * 64))


def test_weights_holding_nan_are_refused(good_zip, tmp_path):
    from safetensors.torch import load, save
    tensors = load(_files(good_zip)["my-model/model.safetensors"])
    tensors["transformer.wte.weight"][0, 0] = float("nan")
    with pytest.raises(BundleError, match="NaN"):
        import_zip(_with(good_zip, model_DOT_safetensors=save(tensors)))


def test_check_zip_reads_only_the_needed_files(good_zip):
    assert set(check_zip(good_zip)) == {"config.json", "model.safetensors", "tokenizer.json"}
