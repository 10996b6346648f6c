"""Weights in fewer bits (engine/inspect/quantize.py): the int8 copy against PyTorch's own quantized modules (on
transformers' own Llama, and layer by layer on our GPT's GPT-2-style weights), the simulated rounding against
torch's quantizer, the model itself never changed, and the comparison's figures."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn as nn

from engine.inspect.quantize import (BITS, GROUP, HELDOUT_STORY, INT8, compare, layer_of, linear_layers,
                                     quantized_copy, round_to_nearest, saved_bytes, weight_matrix)
from engine.model.gpt import Conv1D
from engine.model.hf import load_model
from engine.model.trace import encode_for_model
from engine_fixtures import save_tiny_hf, tiny_model
from ui.models import default_model_dir


def torch_dynamic(module: nn.Module) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(module), {nn.Linear}, dtype=torch.qint8)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    save_tiny_hf("llama", folder)
    model, _ = load_model(folder)
    return model


def test_int8_of_a_transformers_model_is_torchs_own_dynamic_quantization(llama):
    ids = torch.tensor([[1, 5, 9, 40, 7, 3, 200, 11]])
    ours = quantized_copy(llama, INT8)
    theirs = torch_dynamic(llama.hf)  # PyTorch's own, on transformers' own model
    assert torch.equal(ours.model(ids)[0], theirs(input_ids=ids, use_cache=False).logits)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    kinds = {type(m) for _, m in ours.model.named_modules()}
    assert DynamicLinear in kinds and nn.Linear not in kinds  # every linear layer quantized, none left in float


def test_int8_of_our_gpt_is_torchs_module_on_the_same_numbers():
    model = tiny_model()
    q = quantized_copy(model, INT8).model
    x = torch.randn(3, 5, model.config.n_embd)
    for name in ("transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_fc"):
        conv = model.get_submodule(name)
        assert isinstance(conv, Conv1D)
        linear = nn.Linear(*conv.weight.shape)
        with torch.no_grad():
            linear.weight.copy_(conv.weight.t())
            linear.bias.copy_(conv.bias)
        assert torch.allclose(linear(x), conv(x), atol=1e-6)  # the Conv1D layer as an nn.Linear: the same layer
        theirs = torch_dynamic(nn.Sequential(linear))[0]  # torch swaps children, never the module it is given
        assert type(theirs) is type(q.get_submodule(name)) and type(theirs) is not nn.Linear
        assert torch.equal(q.get_submodule(name)(x), theirs(x))
    ids = torch.tensor([[0, 5, 9, 40, 7]])
    assert (q(ids)[0] - model(ids)[0]).abs().max() < 0.1  # close to float32, not equal


def test_the_model_itself_is_never_changed():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for bits in BITS:
        quantized_copy(model, bits)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    assert all(isinstance(m, (Conv1D, nn.Linear)) for _, m in linear_layers(model))


def test_simulated_rounding_with_one_scale_is_torchs_quantizer():
    w = torch.randn(16, 40)
    ours = round_to_nearest(w, 8, group=None)
    lo, hi = float(w.min()), float(w.max())
    scale = (hi - lo) / 255
    zero = round(-lo / scale)
    theirs = torch.quantize_per_tensor(w, scale, zero, torch.quint8).dequantize()
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("bits", [4, 3, 2])
def test_group_rounding_uses_few_levels_per_group_and_errs_by_at_most_half_a_step(bits):
    w = torch.randn(6, 70)  # 70: the last group of each row is short
    deq = round_to_nearest(w, bits)
    for row in range(6):
        for start in range(0, 70, GROUP):
            group, back = w[row, start:start + GROUP], deq[row, start:start + GROUP]
            assert len(torch.unique(back)) <= 2**bits
            step = float(group.max().clamp(min=0) - group.min().clamp(max=0)) / (2**bits - 1)
            assert float((back - group).abs().max()) <= step / 2 + 1e-6
    assert torch.equal(round_to_nearest(torch.zeros(2, 8), bits), torch.zeros(2, 8))


def test_fewer_bits_cost_more_on_the_builtin_model():
    model, tok = load_model(default_model_dir())
    enc, _ = encode_for_model(tok, HELDOUT_STORY, model.config.block_size)
    results = {bits: compare(model, quantized_copy(model, bits), enc.ids) for bits in BITS}
    kls = [float(results[b].kl.mean()) for b in BITS]
    assert kls == sorted(kls) and kls[0] < 0.05  # 8 < 4 < 3 < 2 bits, and int8 close
    int8 = results[INT8]
    assert int8.real and not results[4].real
    assert int8.bytes_quant < int8.bytes_float and results[2].bytes_quant < results[4].bytes_quant
    assert int8.ppl_float == results[2].ppl_float and results[2].ppl_quant > results[4].ppl_quant
    assert int8.parts[-1] == "output layer" and len(int8.resid_error) == model.config.n_layer
    assert 0 <= int8.flip_rate < results[2].flip_rate
    assert int8.bytes_float == saved_bytes(model)


def test_weight_errors_are_reported_per_layer(llama):
    q = quantized_copy(llama, 4)
    assert list(q.weight_error) == ["layer 0", "layer 1", "output layer"]
    assert all(0 < e < 0.5 for e in q.weight_error.values())
    assert layer_of("model.layers.3.mlp.up_proj") == "layer 3" and layer_of("lm_head") == "output layer"
    assert layer_of("transformer.h.11.attn.c_attn") == "layer 11"
    w = weight_matrix(tiny_model().transformer.h[0].attn.c_attn)
    assert w.shape == (96, 32)  # [out, in], as nn.Linear holds it


def test_bad_bit_widths_are_refused():
    with pytest.raises(ValueError):
        quantized_copy(tiny_model(), 5)
    with pytest.raises(ValueError):
        compare(tiny_model(), quantized_copy(tiny_model(), 8), [0])
