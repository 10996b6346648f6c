"""Non-finite numbers are refused in a sentence, never drawn: a model folder of any family holding one NaN or
infinite weight is refused when it loads (as uploads are: engine/train/bundle.py), and a forward pass whose
activations or logits overflow (finite weights, numbers too big) raises NonFiniteTrace in the engine and a
plain refusal on the page instead of "nan%" and "nan bits"."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from streamlit.testing.v1 import AppTest

import ui.models
from conftest import ROOT
from engine import run_trace
from engine.model.checkpoint import save_pretrained
from engine.model.files import CheckpointError
from engine.model.hf import load_model
from engine.model.trace import NonFiniteTrace
from engine_fixtures import TINY_HF, save_tiny_hf, tiny_model, tokenizer

KINDS = ["gpt2", "gpt2-relu", *sorted(TINY_HF)]  # our GPT, GPT-2 in transformers, and every other family


def save_kind(kind: str, folder) -> None:
    if kind == "gpt2":
        save_pretrained(tiny_model(), tokenizer(), folder)
    elif kind == "gpt2-relu":
        from transformers import GPT2Config, GPT2LMHeadModel
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config(n_positions=16, n_embd=32, n_layer=2, n_head=2, vocab_size=320,
                                   activation_function="relu")).save_pretrained(folder)
        tokenizer().save_pretrained(folder)
    else:
        save_tiny_hf(kind, folder)


def poke(folder, value: float, where: str = "mlp") -> str:
    """Write `value` into one number of the first weight whose name holds `where`; that weight's name."""
    weights = load_file(str(folder / "model.safetensors"))
    name = next(n for n in sorted(weights) if where in n and n.endswith("weight"))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[7] = value
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return name


def overflow(folder) -> None:
    """Scale the final norm's weight to 3e38: finite, but the normalized values above 1.14 overflow to inf."""
    weights = load_file(str(folder / "model.safetensors"))
    ends = ("ln_f.weight", "final_layer_norm.weight", "model.norm.weight")
    norm = next(n for n in sorted(weights) if n.endswith(ends))
    weights[norm] = weights[norm] * 3e38
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("kind", KINDS)
def test_a_non_finite_weight_is_refused_at_load_naming_it(tmp_path, kind, value):
    save_kind(kind, tmp_path)
    load_model(tmp_path)  # loads while every weight is finite
    name = poke(tmp_path, value)
    with pytest.raises(CheckpointError, match="holds NaN or infinite values") as e:
        load_model(tmp_path)
    assert name.split(".")[-2] in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pass_that_overflows_is_refused_in_the_engine(tmp_path, kind):
    """Finite weights whose products overflow float32: the trace is refused, naming the first bad activation."""
    save_kind(kind, tmp_path)
    overflow(tmp_path)
    model, tok = load_model(tmp_path)
    with pytest.raises(NonFiniteTrace) as e:
        run_trace(model, tok, "Once upon a time")
    assert e.value.name.startswith(("hook_", "blocks.", "ln_final", "logits"))
    assert "NaN or infinite" in str(e.value)


def test_masked_scores_are_minus_infinity_by_design_and_pass(tmp_path):
    save_kind("llama", tmp_path)
    model, tok = load_model(tmp_path)
    trace = run_trace(model, tok, "Once upon a time")
    assert torch.isneginf(trace.act["blocks.0.attn.hook_attn_scores"]).any()


# -- on the page ------------------------------------------------------------------------------------------------

@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    save_kind("llama", tmp_path / "nan-llama")
    poke(tmp_path / "nan-llama", float("nan"))
    save_kind("gpt_neox", tmp_path / "huge-neox")
    overflow(tmp_path / "huge-neox")
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(tmp_path / ".hub"))
    ui.models.server_models.clear()
    ui.models.SHARED.clear()
    yield tmp_path
    ui.models.server_models.clear()
    ui.models.SHARED.clear()


def _page_text(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in (at.markdown, at.caption, at.metric, at.error, at.info)
                    for e in kind)


def test_a_server_model_with_a_nan_weight_is_refused_with_a_line(models_dir):
    at = AppTest.from_file(str(ROOT / "pages" / "4_Next_token.py"), default_timeout=120)
    at.session_state["models.selected"] = "folder:nan-llama"
    at.run()
    assert not at.exception
    assert any("holds NaN or infinite values" in w.value for w in at.sidebar.warning), "said once, in the sidebar"
    assert "nan%" not in _page_text(at) and "nan bits" not in _page_text(at)


def test_a_model_whose_numbers_overflow_shows_a_refusal_not_nan(models_dir):
    at = AppTest.from_file(str(ROOT / "pages" / "4_Next_token.py"), default_timeout=120)
    at.session_state["models.selected"] = "folder:huge-neox"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["models.selected"] == "folder:huge-neox"
    assert any("neox's" in e.value and "NaN or infinite values" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert not any("Something went wrong" in e.value for e in at.error)
    text = _page_text(at)
    assert "nan%" not in text and "nan bits" not in text and "nan" not in " ".join(m.value for m in at.metric)
