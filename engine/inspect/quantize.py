"""Weights in fewer bits: a quantized copy of a model, and what it costs in accuracy, memory and time.

Two kinds, and which is which matters:

- 8 bits, real: PyTorch's own dynamic quantization (`torch.ao.quantization.quantize_dynamic` on every
  `nn.Linear`). Each weight matrix is stored as int8 with one scale (per tensor, symmetric: torch's default
  weight observer); at run time each input is quantized to 8 bits too (one scale per call), the matrix product
  runs in integer arithmetic (fbgemm or onednn on x86, qnnpack on ARM) with 32-bit accumulation, and the result
  is scaled back to float. Our GPT stores its weights GPT-2's way ([in, out], `Conv1D`), which
  `quantize_dynamic` does not know: the copy's Conv1D layers become `nn.Linear` with the same numbers first
  (their outputs are equal, a test says so).
- 4, 3 or 2 bits, simulated: group-wise round-to-nearest. Each row of a weight matrix is cut into groups of
  GROUP numbers; each group gets its own scale and zero point (its min and max spread over 2^bits levels)
  and every number is rounded to the nearest level, then stored back as float32. The arithmetic stays
  float32: the rounding error is real, the memory saving and any speed are not (what a packed format would
  take is estimated, and said to be).

Embeddings, norms and biases stay float32 in both (as is usual); the output layer is quantized, so a tied
output layer is untied in the copy. The model given is never changed: everything happens on a deepcopy.
"""
from __future__ import annotations

import copy
import io
import math
import re
import statistics
import time
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..model.gpt import Conv1D

INT8 = 8  # the real one
SIMULATED = (4, 3, 2)
BITS = (INT8, *SIMULATED)
GROUP = 32  # numbers per scale in the simulated formats (GPTQ / AWQ use 32-128)
GROUP_OVERHEAD = 3  # bytes per group a packed format adds: an fp16 scale and an 8-bit zero point
_LAYER = re.compile(r"(?:^|\.)(?:h|layers)\.(\d+)\.")

# A held-out story: written for Glassbox, in no training set.
HELDOUT_STORY = (
    "Pip was a small grey mouse who lived under the stairs of an old bakery. Every night, when the baker went "
    "home, Pip came out to look for crumbs. One cold evening he found something new: a round loaf as big as a "
    "house, still warm from the oven. Pip walked all the way around it. He could not carry it, and he could not "
    "eat it all, so he sat down and thought. Then he ran to the garden and woke his friend Rosa, a tired old "
    "hedgehog. \"There is more bread than we can eat,\" said Pip. \"Let us ask everyone.\" Rosa told the birds, "
    "the birds told the rabbits, and soon the whole garden was in the bakery, eating quietly in the dark. In the "
    "morning the baker found only crumbs and a thank-you note, written in very small letters. He laughed, and "
    "from that day on he left one loaf by the stairs every night.")


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """[out, in] float32, a copy: a linear layer's weight as nn.Linear holds it (Conv1D stores the transpose)."""
    w = module.weight.detach()
    return (w.t() if isinstance(module, Conv1D) else w).float().clone()


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every matrix the quantized copy rounds: the model's Conv1D and nn.Linear layers, by name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (Conv1D, nn.Linear))]


def layer_of(name: str) -> str:
    """Which part of the model a linear layer belongs to: "layer 3" or "output layer"."""
    found = _LAYER.search(name)
    return f"layer {found.group(1)}" if found else "output layer"


def _to_linear(model: nn.Module) -> None:
    """Replace every Conv1D with an nn.Linear holding the same numbers (weights transposed), in place."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                n_in, n_out = child.weight.shape
                linear = nn.Linear(n_in, n_out, device=child.weight.device)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    linear.bias.copy_(child.bias)
                setattr(module, child_name, linear.requires_grad_(False))


def _untie_output(model: nn.Module) -> None:
    """Give the copy's output layer its own weight if it shares the token embedding's (so rounding one leaves
    the other as it is)."""
    head = model.lm_head
    if head.weight is model.token_embedding():
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)


def round_to_nearest(w: torch.Tensor, bits: int, group: int | None = GROUP) -> torch.Tensor:
    """w [out, in] rounded to `bits` bits and returned as float32 (dequantized: what a packed format holds):
    asymmetric min-max, one scale and zero point per group of `group` numbers along each row (None: one for the
    whole tensor). Every range includes 0, so 0 stays exactly 0."""
    out, n_in = w.shape
    levels = 2**bits - 1
    if group is None:
        x = w.float().reshape(1, 1, -1)  # [1, 1, all]: one group
    else:
        x = F.pad(w.float(), (0, (-n_in) % group)).reshape(out, -1, group)  # [out, groups, group]
    lo = x.amin(dim=-1, keepdim=True).clamp(max=0)
    hi = x.amax(dim=-1, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / levels).clamp(min=1e-12)
    zero = torch.round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero, 0, levels)  # the stored integers, 0..2^bits - 1
    deq = (q - zero) * scale
    return deq.reshape(out, n_in) if group is None else deq.reshape(out, -1)[:, :n_in]


def _int8_weight(module: nn.Module) -> torch.Tensor:
    """The float weight [out, in] a torch dynamic-quantized linear layer really multiplies by."""
    return module.weight().dequantize().float()


@dataclass
class Quantized:
    """A quantized copy of a model and what its quantization did to each weight matrix."""
    model: nn.Module
    bits: int
    real: bool  # True: PyTorch's int8 kernels; False: rounding simulated, arithmetic in float32
    weight_error: dict[str, float]  # part ("layer 0", ..., "output layer") -> relative error of its weights
    n_weights: int  # numbers that were rounded
    n_groups: int  # scales a packed format stores (simulated); 1 per matrix for int8


def quantized_copy(model: nn.Module, bits: int, group: int = GROUP) -> Quantized:
    """A copy of `model` with every linear layer's weights in `bits` bits (8: PyTorch's int8 dynamic
    quantization; 4, 3, 2: simulated, group-wise round-to-nearest). `model` itself is not touched."""
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")
    q = copy.deepcopy(model).eval()
    if bits == INT8:
        q = q.cpu()  # PyTorch's dynamic int8 kernels are CPU kernels: the copy runs there, wherever the model does
    _to_linear(q)
    _untie_output(q)
    originals = {n: weight_matrix(m) for n, m in linear_layers(q)}  # [out, in] each, float32
    sq_err: dict[str, float] = {}
    sq_ref: dict[str, float] = {}
    if bits == INT8:
        from torch.ao.quantization import quantize_dynamic  # deprecated in favour of torchao, still in torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(q, {nn.Linear}, dtype=torch.qint8, inplace=True)
            after = {n: _int8_weight(m) for n, m in q.named_modules() if n in originals}
        n_groups = len(originals)
    else:
        after = {}
        n_groups = 0
        with torch.no_grad():
            for name, module in linear_layers(q):
                deq = round_to_nearest(originals[name], bits, group)
                module.weight.copy_(deq.to(module.weight.dtype))
                after[name] = deq
                n_groups += originals[name].shape[0] * math.ceil(originals[name].shape[1] / group)
    for name, w in originals.items():
        part = layer_of(name)
        sq_err[part] = sq_err.get(part, 0.0) + float((after[name] - w).pow(2).sum())
        sq_ref[part] = sq_ref.get(part, 0.0) + float(w.pow(2).sum())
    errors = {part: math.sqrt(sq_err[part] / max(sq_ref[part], 1e-30)) for part in sq_err}
    return Quantized(q, bits, bits == INT8, _ordered(errors), sum(w.numel() for w in originals.values()), n_groups)


def _ordered(parts: dict[str, float]) -> dict[str, float]:
    def key(part: str) -> tuple[int, int]:
        return (1, 0) if part == "output layer" else (0, int(part.split()[1]))
    return dict(sorted(parts.items(), key=lambda kv: key(kv[0])))


def saved_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as torch saves them (int8 layers as int8: a real size, not an estimate)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return buffer.tell()


def packed_bytes(q: Quantized) -> int:
    """What the simulated copy would take packed: `bits` per rounded number plus GROUP_OVERHEAD bytes per
    group, and float32 for everything else (an estimate: here it is held in float32)."""
    rest = sum(p.numel() for p in q.model.parameters()) - q.n_weights  # embeddings, norms, biases
    return math.ceil(q.n_weights * q.bits / 8) + q.n_groups * GROUP_OVERHEAD + 4 * max(rest, 0)


@dataclass(frozen=True)
class Comparison:
    """The float model and its quantized copy on the same tokens."""
    bits: int
    real: bool
    ids: tuple[int, ...]
    kl: torch.Tensor  # [pos - 1] KL(float || quantized) of the next-token distribution, nats
    flips: torch.Tensor  # [pos - 1] bool: the most likely next token differs
    top_float: torch.Tensor  # [pos - 1] the float model's most likely next token
    top_quant: torch.Tensor  # [pos - 1] the quantized copy's
    loss_float: float  # mean cross-entropy of the actual next tokens, nats
    loss_quant: float
    parts: tuple[str, ...]  # "layer 0", ..., "output layer"
    weight_error: tuple[float, ...]  # per part: relative error of its weights
    resid_error: tuple[float, ...]  # per layer (parts without the output layer): relative error of the residual
    #                                 stream after it, mean over positions
    bytes_float: int
    bytes_quant: int  # int8: saved size; simulated: packed estimate
    seconds_float: float  # one forward pass over the tokens, median of a few, measured here
    seconds_quant: float

    @property
    def ppl_float(self) -> float:
        return math.exp(self.loss_float)

    @property
    def ppl_quant(self) -> float:
        return math.exp(self.loss_quant)

    @property
    def flip_rate(self) -> float:
        return float(self.flips.float().mean()) if len(self.flips) else 0.0


def _forward_seconds(model: nn.Module, idx: torch.Tensor, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        float(model(idx)[0][0, -1, 0])  # reads the result: on a GPU, waits for the pass to finish
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def compare(model: nn.Module, q: Quantized, ids: list[int]) -> Comparison:
    """The float model and its quantized copy on `ids` (at least two tokens, within the context): next-token
    KL and top-token flips at every position, the loss on the actual next tokens, each layer's weight error and
    the residual stream's error after each layer, memory and a measured forward time."""
    if len(ids) < 2:
        raise ValueError("comparing needs at least two tokens")
    idx = torch.tensor([list(ids)], device=next(model.parameters()).device)
    idx_q = torch.tensor([list(ids)], device=next(q.model.parameters()).device)  # int8: the CPU
    logits_f, cache_f = model.run_with_cache(idx)
    logits_q, cache_q = q.model.run_with_cache(idx_q)
    lf, lq = logits_f[0, :-1].float().cpu(), logits_q[0, :-1].float().cpu()  # [pos - 1, vocab]
    logp_f, logp_q = lf.log_softmax(-1), lq.log_softmax(-1)
    kl = (logp_f.exp() * (logp_f - logp_q)).sum(-1).clamp(min=0)  # [pos - 1]
    target = torch.tensor(list(ids[1:]))
    resid = []
    for layer in range(model.config.n_layer):
        a = cache_f[f"blocks.{layer}.hook_resid_post"][0].float().cpu()  # [pos, d_model]
        b = cache_q[f"blocks.{layer}.hook_resid_post"][0].float().cpu()
        resid.append(float(((b - a).norm(dim=-1) / a.norm(dim=-1).clamp(min=1e-12)).mean()))
    bytes_quant = saved_bytes(q.model) if q.real else packed_bytes(q)
    return Comparison(
        bits=q.bits, real=q.real, ids=tuple(ids), kl=kl, flips=lf.argmax(-1) != lq.argmax(-1),
        top_float=lf.argmax(-1), top_quant=lq.argmax(-1),
        loss_float=float(F.cross_entropy(lf, target)), loss_quant=float(F.cross_entropy(lq, target)),
        parts=tuple(q.weight_error), weight_error=tuple(q.weight_error.values()), resid_error=tuple(resid),
        bytes_float=saved_bytes(model), bytes_quant=bytes_quant,
        seconds_float=_forward_seconds(model, idx), seconds_quant=_forward_seconds(q.model, idx_q))
