"""Ablation: switch one part of the model off and see what changes.

Three parts, each one activation of the forward pass (TransformerLens names):
- an attention head: its output before the output projection, `blocks.{L}.attn.hook_z[..., head, :]`;
- a whole MLP layer: what it adds to the residual stream, `blocks.{L}.hook_mlp_out`;
- one neuron: `blocks.{L}.mlp.hook_post[..., neuron]` (for a gated MLP, the product gate x up).

Two ways to switch it off:
- zero: set it to 0. Simple, but 0 may be a value the part never takes, so the damage can come from pushing
  the model somewhere it has never been rather than from losing what the part computes;
- mean: set it to its average over a reference text (every position but the start marker), which removes
  what the part says about *this* text while keeping its usual contribution.

What it shows: what the model does without that part, on this text. What it does not: a part whose
ablation changes nothing may still matter (another part can make up for it), and a large change does not
mean the part "stores" what was lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.hooks import Edits

HEAD, MLP, NEURON = "head", "mlp", "neuron"
ZERO, MEAN = "zero", "mean"


@dataclass(frozen=True)
class Ablation:
    kind: str  # HEAD, MLP or NEURON
    layer: int
    index: int | None  # the head or the neuron; None for a whole MLP layer
    mode: str = ZERO  # ZERO or MEAN

    def __post_init__(self) -> None:
        if self.kind not in (HEAD, MLP, NEURON) or self.mode not in (ZERO, MEAN):
            raise ValueError(f"no ablation of kind {self.kind!r} by {self.mode!r}")
        if (self.index is None) != (self.kind == MLP):
            raise ValueError("a head or a neuron needs its index; a whole MLP layer takes none")

    @property
    def name(self) -> str:
        """The activation it changes."""
        return {HEAD: f"blocks.{self.layer}.attn.hook_z", MLP: f"blocks.{self.layer}.hook_mlp_out",
                NEURON: f"blocks.{self.layer}.mlp.hook_post"}[self.kind]

    def describe(self) -> str:
        part = {HEAD: f"head {self.index} of layer {self.layer}", MLP: f"the whole MLP of layer {self.layer}",
                NEURON: f"neuron {self.index} of layer {self.layer}"}[self.kind]
        return part + (" set to zero" if self.mode == ZERO else " set to its mean")

    def check(self, cfg) -> None:
        """ValueError for a layer, head or neuron the model does not have."""
        if not 0 <= self.layer < cfg.n_layer:
            raise ValueError(f"the model has layers 0 to {cfg.n_layer - 1}")
        top = {HEAD: cfg.n_head, NEURON: cfg.d_mlp}.get(self.kind)
        if top is not None and not 0 <= self.index < top:
            raise ValueError(f"the model has {self.kind}s 0 to {top - 1} in each layer")


@torch.no_grad()
def reference_means(model, ids: list[int], names: list[str]) -> dict[str, torch.Tensor]:
    """The mean of each named activation over every position of a reference text but the first (the start
    marker, whose activations are often far from any word's): {name: [...]} without batch or position."""
    _, cache = model.run_with_cache(torch.tensor([ids], device=next(model.parameters()).device))
    skip = 1 if len(ids) > 1 else 0
    return {n: cache[n][0, skip:].float().mean(0).cpu() for n in names}


def ablation_edits(ab: Ablation, means: dict[str, torch.Tensor] | None = None) -> Edits:
    """The edit that switches `ab` off; a mean ablation needs `means[ab.name]` (from `reference_means`)."""
    if ab.mode == MEAN and (means is None or ab.name not in means):
        raise ValueError(f"a mean ablation needs the mean of {ab.name}")
    mean = None if ab.mode == ZERO else means[ab.name]

    def edit(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        if ab.kind == HEAD:  # x [batch, pos, head, d_head]
            x[:, :, ab.index] = 0 if mean is None else mean[ab.index].to(x)
        elif ab.kind == NEURON:  # x [batch, pos, d_mlp]
            x[..., ab.index] = 0 if mean is None else mean[ab.index].to(x)
        else:  # x [batch, pos, d_model]
            x[:] = 0 if mean is None else mean.to(x)
        return x
    return {ab.name: edit}
