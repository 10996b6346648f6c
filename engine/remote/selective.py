"""A selective trace: what one remote job recorded of one forward pass, under the Trace's names.

A `Trace` (engine/model/trace.py) holds every activation of a forward pass; a `Selective` holds what its
`TraceRequest` asked for and says so: `pattern(layer, head)` is the same call as on a Trace
(`blocks.{L}.attn.hook_pattern` [head, query_pos, key_pos] in `act`), and asking for what was not recorded raises
`NotRecorded`, whose message says what to ask for instead (one more job), never a made-up value.

Values keep the precision they came back in (`dtype`: bfloat16 from NDIF, whose models run in bf16; float32
from a local run): `digits` is how many significant digits a figure may claim.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.families.base import ArchConfig
from .request import TraceRequest

SIGNIFICANT = {torch.bfloat16: 3, torch.float16: 4}  # bf16 keeps 8 bits of mantissa: about 2.4 decimal digits


class NotRecorded(KeyError):
    """A view asked a selective trace for something its request did not record."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not recorded"


class BadAnswer(ValueError):
    """An answer whose tensors are not what the request asked for (a server that answered something else)."""


@dataclass(frozen=True)
class Selective:
    text: str
    ids: list[int]  # the token ids the model saw, start marker included
    tokens: list[str]  # display form of each token
    offsets: list[tuple[int, int]]
    config: ArchConfig
    request: TraceRequest
    act: dict[str, torch.Tensor]  # Trace names: blocks.{L}.attn.hook_pattern [head, q, k] for request.layer
    top_ids: torch.Tensor  # [pos, top_n] int32: the final distribution's most likely tokens at every position
    top_probs: torch.Tensor  # [pos, top_n] their probabilities
    entropy: torch.Tensor  # [pos] bits, of the whole final distribution
    logits: dict[int, torch.Tensor] = field(default_factory=dict)  # position -> [vocab] final logits, whole
    lens_ids: torch.Tensor | None = None  # [stage, P, k] at request.lens_at; stage 0 = the embeddings
    lens_probs: torch.Tensor | None = None  # [stage, P, k]
    lens_target: torch.Tensor | None = None  # [stage, P] probability of the final top token at each stage
    resid: torch.Tensor | None = None  # [stage, P, d_model] at request.resid_at
    dtype: torch.dtype = torch.float32  # the precision the values came back in
    seconds: float = 0.0  # measured: from sending the request to holding the answer
    where: str = "NDIF"  # who ran it
    n_dropped: int = 0
    has_bos: bool = True

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        tensors = [self.top_ids, self.top_probs, self.entropy, *self.act.values(), *self.logits.values(),
                   *(t for t in (self.lens_ids, self.lens_probs, self.lens_target, self.resid) if t is not None)]
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def digits(self) -> int | None:
        """Significant digits a figure may show of these values (None: float32, as every local trace)."""
        return SIGNIFICANT.get(self.dtype)

    def pattern(self, layer: int, head: int) -> torch.Tensor:
        name = f"blocks.{layer}.attn.hook_pattern"
        if name not in self.act:
            raise NotRecorded(f"layer {layer}'s attention was not recorded: ask for TraceRequest(layer={layer})")
        return self.act[name][head]  # [query_pos, key_pos]

    def final_logits(self, pos: int) -> torch.Tensor:
        """The whole final logits at `pos` [vocab], float32, if the request kept them."""
        if pos not in self.logits:
            raise NotRecorded(f"the logits at position {pos} were not recorded: ask for logits_at=({pos},)")
        return self.logits[pos].float()

    def lens_column(self, pos: int) -> int:
        if pos not in self.request.lens_at:
            raise NotRecorded(f"the lens at position {pos} was not recorded: ask for lens_at=({pos},)")
        return self.request.lens_at.index(pos)


def _tensor(saved: dict, name: str, shape: tuple, ints: bool = False) -> torch.Tensor:
    value = saved.get(name)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise BadAnswer(f"the answer's {name} is {got}, not {shape}")
    if ints != (not value.is_floating_point()):
        raise BadAnswer(f"the answer's {name} has the wrong kind of numbers ({value.dtype})")
    return value


def from_answer(saved: dict, *, text: str, ids: list[int], tokens: list[str], offsets: list[tuple[int, int]],
                config: ArchConfig, request: TraceRequest, seconds: float, where: str, n_dropped: int = 0,
                has_bos: bool = True) -> Selective:
    """Check a job's answer against its request (shapes, kinds, token ids in the vocabulary) and keep it.
    Raises BadAnswer: the answer came over the network, and a page must not draw what it did not ask for."""
    n, cfg, req = len(ids), config, request
    top_n = min(req.top_n, cfg.vocab_size)
    top_ids = _tensor(saved, "top_ids", (n, top_n), ints=True)
    top_probs = _tensor(saved, "top_probs", (n, top_n))
    entropy = _tensor(saved, "entropy", (n,))
    act, logits, lens = {}, {}, {}
    if req.layer is not None:
        act[f"blocks.{req.layer}.attn.hook_pattern"] = _tensor(saved, "pattern", (cfg.n_head, n, n))
    if req.logits_at:
        whole = _tensor(saved, "logits", (len(req.logits_at), cfg.vocab_size))
        logits = {p: whole[i] for i, p in enumerate(req.logits_at)}
    stages, k = cfg.n_layer + 1, min(req.lens_k, cfg.vocab_size)
    if req.lens_at:
        lens = dict(lens_ids=_tensor(saved, "lens_ids", (stages, len(req.lens_at), k), ints=True),
                    lens_probs=_tensor(saved, "lens_probs", (stages, len(req.lens_at), k)),
                    lens_target=_tensor(saved, "lens_target", (stages, len(req.lens_at))))
    resid = _tensor(saved, "resid", (stages, len(req.resid_at), cfg.n_embd)) if req.resid_at else None
    for name, t in (("top_ids", top_ids), ("lens_ids", lens.get("lens_ids"))):
        if t is not None and t.numel() and not (0 <= int(t.min()) and int(t.max()) < cfg.vocab_size):
            raise BadAnswer(f"the answer's {name} holds ids outside the vocabulary")
    return Selective(text=text, ids=list(ids), tokens=list(tokens), offsets=list(offsets), config=cfg,
                     request=req, act=act, top_ids=top_ids, top_probs=top_probs, entropy=entropy.float(),
                     logits=logits, resid=resid, dtype=top_probs.dtype, seconds=seconds, where=where,
                     n_dropped=n_dropped, has_bos=has_bos, **lens)
