"""Uploaded models are priced before they are accepted: the cost of one trace from config.json alone, caps on
the shape, config numbers that must be plain finite numbers, tokenizers held to what our trainer writes, and a
test sentence that the loaded model must answer with finite, sane logits. Every zip here is generated: a tiny
random GPT exported with export_zip, then its config.json, tokenizer.json or weights edited."""
from __future__ import annotations

import io
import json
import tomllib
import zipfile

import pytest
import torch
from safetensors.torch import load, save

from conftest import ROOT
from engine import GPT, GPTConfig, run_trace
from engine.model.cost import BUDGET_MB_ENV, TraceBudget, config_cost, over_budget, trace_cost
from engine.train import bundle
from engine.train.bundle import BundleError, export_zip, import_zip
from engine_fixtures import VOCAB, tiny_config, tiny_model, tokenizer


@pytest.fixture(scope="module")
def good_zip() -> bytes:
    return export_zip(tiny_model(seed=5), tokenizer(), "m")


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename.split("/")[-1]: zf.read(i) for i in zf.infolist()}


def _edit(data: bytes, **files: bytes) -> bytes:
    """The zip with some files replaced (names with `_DOT_` for the dot)."""
    out = _files(data) | {k.replace("_DOT_", "."): v for k, v in files.items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, raw in out.items():
            zf.writestr(f"m/{name}", raw)
    return buf.getvalue()


def _config(data: bytes, **changes) -> bytes:
    cfg = json.loads(_files(data)["config.json"]) | changes
    return _edit(data, config_DOT_json=json.dumps(cfg).encode())


def _tok(data: bytes, change) -> bytes:
    tok = json.loads(_files(data)["tokenizer.json"])
    change(tok)
    return _edit(data, tokenizer_DOT_json=json.dumps(tok).encode())


def _refused(data: bytes, *fragments: str, **kwargs) -> str:
    with pytest.raises(BundleError) as e:
        import_zip(data, **kwargs)
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)
    return str(e.value)


# -- the cost of one trace ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, text", [
    (dict(), "Tom liked to play with a red ball."),
    (dict(n_layer=3, n_head=4, n_embd=32, block_size=64), "One day, the ball rolled under the bed. " * 3),
    (dict(n_layer=1, n_head=8, n_embd=16, block_size=32), "The sun was warm and the sky was blue. " * 9),
])
def test_the_estimate_matches_the_bytes_a_real_trace_holds(fields, text):
    model = tiny_model(**fields)
    trace = run_trace(model, tokenizer(), text)
    estimate = config_cost(model.config, n_pos=len(trace)).bytes
    assert trace.nbytes / 2 <= estimate <= 2 * trace.nbytes  # in fact equal: it counts what run_trace keeps
    full = config_cost(model.config)
    assert full.n_pos == model.config.block_size and full.bytes >= estimate


def test_the_estimate_takes_plain_numbers_and_grows_with_heads_and_context_squared():
    base = trace_cost(n_layer=2, n_head=16, n_embd=16, block_size=2048, vocab_size=320)
    assert base.attention == 2 * 2 * 16 * 2048**2 * 4  # the 162 KB zip: 1 GB of attention per trace
    assert trace_cost(2, 16, 16, 4096, 320).attention == 4 * base.attention
    assert trace_cost(4, 16, 16, 2048, 320).attention == 2 * base.attention
    assert trace_cost(2, 16, 16, 2048, 640).logits == 2 * base.logits
    assert trace_cost(2000, 1, 16, 16, 320).seconds > trace_cost(2, 1, 16, 16, 320).seconds
    assert over_budget(base, TraceBudget(256 * 2**20, 5.0)).startswith("One look inside this model over its full "
                                                                       "2,048-token context would hold 1.0 GB")


def test_the_default_model_fits_the_default_budget():
    cfg = GPTConfig.from_hf_dict(json.loads((ROOT / "models/glassbox-stories/config.json").read_text()))
    assert over_budget(config_cost(cfg), TraceBudget.from_env()) is None


def test_the_budget_comes_from_the_environment(monkeypatch, good_zip):
    assert import_zip(good_zip)  # a tiny model fits the default budget
    monkeypatch.setenv(BUDGET_MB_ENV, "0.01")
    assert TraceBudget.from_env().max_bytes == int(0.01 * 2**20)
    _refused(good_zip, "would hold 102 KB (74 KB other activations, 20 KB logits, 8 KB attention patterns)",
             "this server allows 10 KB per trace (GLASSBOX_TRACE_BUDGET_MB)")
    monkeypatch.setenv(BUDGET_MB_ENV, "lots")
    with pytest.raises(ValueError, match="GLASSBOX_TRACE_BUDGET_MB must be a number"):
        TraceBudget.from_env()


def test_a_small_zip_whose_attention_is_huge_is_refused_naming_the_figure():
    model = GPT(GPTConfig(block_size=1024, vocab_size=VOCAB, n_layer=2, n_head=16, n_embd=16)).eval()
    data = export_zip(model, tokenizer(), "m")
    assert len(data) < 200_000
    _refused(data, "over its full 1,024-token context would hold 260 MB (256 MB attention patterns",
             "allows 256 MB per trace")


def test_a_model_too_slow_to_trace_is_refused_naming_the_time(good_zip):
    seconds = config_cost(tiny_config()).seconds
    _refused(good_zip, f"would take about {seconds:.2g} s on a server CPU (", "million operations); this server "
             "allows 0.001 s per trace (GLASSBOX_TRACE_BUDGET_S)", budget=TraceBudget(2**30, max_seconds=0.001))
    slow = trace_cost(n_layer=24, n_head=16, n_embd=1024, block_size=1024, vocab_size=8192)  # 24 layers of GPT-2 medium
    assert "would take about 82 s on a server CPU (738.7 billion operations)" in over_budget(
        slow, TraceBudget(2**40, 5.0))


# -- caps on the shape, checked before anything is built --------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    (dict(n_layer=2000), "The model has 2,000 layers; Glassbox takes uploads with up to 24."),
    (dict(n_head=64, n_embd=128), "The model has 64 heads per layer; Glassbox takes uploads with up to 32."),
    (dict(n_positions=4096), "The model has 4,096 tokens of context; Glassbox takes uploads with up to 1,024."),
    (dict(vocab_size=50257), "The model has 50,257 tokens in its vocabulary; Glassbox takes uploads with up to 8,192."),
    (dict(n_layer=20, n_embd=768, n_head=12), "parameters; Glassbox takes models up to 50,000,000."),
])
def test_shapes_beyond_the_caps_are_refused(good_zip, changes, message):
    _refused(_config(good_zip, **changes), message)


# -- config numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, message", [
    ('"n_layer": 1e400', "n_layer must be a finite number, got inf"),
    ('"n_layer": true', "n_layer must be a number, got 'True'"),
    ('"n_layer": "2"', "n_layer must be a number, got '2'"),
    ('"n_layer": 2.5', "n_layer must be a whole number, got 2.5"),
    ('"n_head": -2', "n_head must be at least 1, got -2"),
    ('"layer_norm_epsilon": NaN', "layer_norm_epsilon must be a finite number, got nan"),
    ('"layer_norm_epsilon": -1e-05', "layer_norm_epsilon must be a small positive number, got -1e-05"),
    ('"resid_pdrop": Infinity', "resid_pdrop must be a finite number, got inf"),
    ('"n_embd": ' + "9" * 5000, "config.json is not valid JSON"),
])
def test_config_numbers_that_are_not_plain_finite_numbers_are_refused(good_zip, raw, message):
    text = _files(good_zip)["config.json"].decode()
    key = raw.split(":")[0]
    start = text.index(key)
    end = text.index("\n", start)
    edited = text[:start] + raw + ("," if text[end - 1] == "," else "") + text[end:]
    _refused(_edit(good_zip, config_DOT_json=edited.encode()), message)


def test_deeply_nested_json_gets_a_plain_message(good_zip):
    deep = b"[" * 100_000 + b"]" * 100_000
    _refused(_edit(good_zip, config_DOT_json=deep), "config.json is nested too deeply to be a model config")
    _refused(_edit(good_zip, tokenizer_DOT_json=deep), "tokenizer.json is nested too deeply to be a tokenizer")


# -- tokenizers: what our trainer writes, nothing that runs a pattern --------------------------------------
def _split(pattern):
    return lambda t: t.update(pre_tokenizer={"type": "Split", "pattern": pattern, "behavior": "Isolated",
                                             "invert": False})


def test_a_tokenizer_with_a_regular_expression_is_refused(good_zip):
    _refused(_tok(good_zip, _split({"Regex": "(a+)+$"})), "tokenizer.json holds a regular expression ('(a+)+$')")
    _refused(_tok(good_zip, _split({"String": "a"})), "tokenizer.json splits text with a Split pre-tokenizer; "
             "Glassbox takes byte-level BPE tokenizers (a ByteLevel pre-tokenizer)")
    replace = {"type": "Replace", "pattern": {"Regex": "x*y*z*"}, "content": ""}
    _refused(_tok(good_zip, lambda t: t.update(normalizer=replace)), "holds a regular expression ('x*y*z*')")


def test_a_tokenizer_unlike_ours_is_refused(good_zip):
    # A Precompiled normalizer with a broken charsmap makes the tokenizers library panic on every text.
    broken = {"type": "Precompiled", "precompiled_charsmap": "BAAAAP////8="}
    _refused(_tok(good_zip, lambda t: t.update(normalizer=broken)), "tokenizer.json sets a normalizer")
    _refused(_tok(good_zip, lambda t: t.update(truncation={"max_length": 1})), "tokenizer.json sets a truncation")
    _refused(_tok(good_zip, lambda t: t["model"].update(dropout=0.5)), "BPE dropout")
    _refused(_tok(good_zip, lambda t: t.update(decoder={"type": "WordPiece"})), "a WordPiece decoder")
    _refused(_tok(good_zip, lambda t: t.update(model={"type": "WordLevel", "vocab": {}})), "holds a WordLevel model")


def test_a_tokenizer_bigger_than_our_trainer_writes_is_refused(good_zip):
    def huge(t):
        t["model"]["vocab"] |= {f"tok{i}": len(t["model"]["vocab"]) + i for i in range(9000)}
    _refused(_tok(good_zip, huge), "The tokenizer has 9,32", "tokens; Glassbox takes tokenizers with up to 8,192.")
    big = json.loads(_files(good_zip)["tokenizer.json"])
    big["version"] = torch.randint(0, 16, (3 * 2**20,)).numpy().tobytes().hex()[:3 * 2**20]  # barely compresses
    _refused(_edit(good_zip, tokenizer_DOT_json=json.dumps(big).encode()), "tokenizer.json is 3 MB; the limit is 2 MB.")


def test_a_tokenizer_that_disagrees_with_the_model_is_refused(good_zip):
    def gap(t):
        t["model"]["vocab"]["Ġzz"] = 100_000  # the library accepts it, then hands out an id the model lacks
    _refused(_tok(good_zip, gap), "token ids are not 0, 1, 2, ... one per token")
    smaller = export_zip(tiny_model(seed=5, vocab_size=VOCAB + 8), tokenizer(), "m")
    _refused(smaller, f"The tokenizer has {VOCAB} tokens and the model {VOCAB + 8:,}; they must be the same.")


def test_a_native_panic_while_reading_the_tokenizer_is_a_refusal(good_zip, monkeypatch):
    panic = native_panic()
    assert not isinstance(panic, Exception)  # pyo3's PanicException: `except Exception` would miss it

    def from_str(_):
        raise panic
    monkeypatch.setattr(bundle.Tokenizer, "from_str", from_str)
    _refused(good_zip, "tokenizer.json could not be read: index out of bounds")

    def interrupted(_):
        raise KeyboardInterrupt
    monkeypatch.setattr(bundle.Tokenizer, "from_str", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_zip(good_zip)


def native_panic() -> BaseException:
    """A real pyo3 PanicException from the tokenizers library (a broken Precompiled charsmap)."""
    from tokenizers import normalizers
    try:
        normalizers.Precompiled(b"\x04\x00\x00\x00" + b"\xff" * 4).normalize_str("abc")
    except BaseException as e:  # noqa: BLE001 - that is the point
        return e
    raise AssertionError("the tokenizers library no longer panics on a broken charsmap: find another panic")


# -- after loading: a test sentence ------------------------------------------------------------------------
def _weights(data: bytes, change) -> bytes:
    tensors = load(_files(data)["model.safetensors"])
    change(tensors)
    return _edit(data, model_DOT_safetensors=save(tensors))


def test_huge_finite_weights_are_refused_by_the_test_sentence(good_zip):
    def loud(t):
        t["transformer.ln_f.weight"] *= 1e30
    _refused(_weights(good_zip, loud), "The model's logits on a test sentence reach", "±10,000")

    def overflow(t):
        t["transformer.h.0.mlp.c_fc.weight"] *= 1e38
    message = _refused(_weights(good_zip, overflow), "on a test sentence hold NaN or infinite values")
    assert message.startswith("The model's blocks.")  # it names the first activation that broke


def test_a_good_zip_passes_every_check_and_keeps_its_logits(good_zip):
    model, tok = import_zip(good_zip)
    ids = torch.tensor([[0, 5, 17, 42]])
    torch.testing.assert_close(model(ids)[0], tiny_model(seed=5)(ids)[0])
    assert len(tok) == tiny_config().vocab_size


# -- the upload limit ----------------------------------------------------------------------------------------
def test_the_zip_limit_agrees_with_the_server_upload_limit():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    assert bundle.MAX_ZIP_BYTES == server * 2**20  # Streamlit's MB are 2**20 bytes
    with pytest.raises(BundleError, match=f"The file is {server + 1} MB; the limit is {server} MB."):
        import_zip(b"PK" + b"\x00" * ((server + 1) * 2**20))
