"""Steering: push the residual stream along a direction and see what the model writes.

The direction is the difference of means ("activation addition", Turner et al. 2023): the residual stream
entering a layer (`blocks.{L}.hook_resid_pre`), averaged over every position but the start marker of every
prompt in set A, minus the same average over set B (happy stories minus sad ones). Adding `strength` times
it at every position of that layer nudges what every later layer reads.

What it shows: that a direction found from a few examples changes what the model writes. What it does not:
that the model has a "happiness feature" there; the difference also holds whatever else the two sets
differ in (words, length), and at high strength the added vector swamps the residual stream and the text
stops being grammatical, which the page lets you see.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.hooks import Edits
from ..model.trace import encode_for_model
from .price import Refusal

MAX_PROMPTS = 16  # prompts per set
MAX_PROMPT_CHARS = 500


@dataclass(frozen=True)
class SteeringVector:
    layer: int
    vector: torch.Tensor  # [d_model], float32 on the CPU: mean(A) - mean(B)
    resid_norm: float  # the typical length of the residual stream there (mean over both sets' positions)

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def relative(self, strength: float) -> float:
        """How long the added vector is next to the residual stream it is added to: |strength| x |v| / |resid|."""
        return abs(strength) * self.norm / max(self.resid_norm, 1e-12)


def _prompts(texts: list[str] | tuple[str, ...], which: str) -> list[str]:
    kept = [t.strip()[:MAX_PROMPT_CHARS] for t in texts if t.strip()]
    if not kept:
        raise Refusal(f"Set {which} has no prompts: write at least one line.")
    if len(kept) > MAX_PROMPTS:
        raise Refusal(f"Set {which} has {len(kept)} prompts; {MAX_PROMPTS} at most.")
    return kept


@torch.no_grad()
def _resid(model, tokenizer, text: str, layer: int) -> torch.Tensor:
    """[pos - 1, d_model]: the residual stream entering `layer` at every position but the start marker."""
    enc, _ = encode_for_model(tokenizer, text, model.config.block_size)
    ids = torch.tensor([enc.ids], device=next(model.parameters()).device)
    _, cache = model.run_with_cache(ids)
    return cache[f"blocks.{layer}.hook_resid_pre"][0, 1:].float().cpu()


def steering_vector(model, tokenizer, set_a: list[str] | tuple[str, ...], set_b: list[str] | tuple[str, ...],
                    layer: int) -> SteeringVector:
    """The mean residual stream entering `layer` over set A's prompts minus set B's (each prompt's positions
    averaged first, so a long prompt counts as much as a short one)."""
    if not 0 <= layer < model.config.n_layer:
        raise ValueError(f"the model has layers 0 to {model.config.n_layer - 1}")
    means, norms = [], []
    for texts, which in ((set_a, "A"), (set_b, "B")):
        per_prompt = [_resid(model, tokenizer, t, layer) for t in _prompts(texts, which)]
        per_prompt = [r for r in per_prompt if len(r)]
        if not per_prompt:
            raise Refusal(f"Set {which}'s prompts have no tokens.")
        means.append(torch.stack([r.mean(0) for r in per_prompt]).mean(0))
        norms += [float(n) for r in per_prompt for n in r.norm(dim=-1)]
    return SteeringVector(layer, means[0] - means[1], sum(norms) / len(norms))


def steering_edits(sv: SteeringVector, strength: float) -> Edits:
    """Add `strength` x the vector to the residual stream entering its layer, at every position."""
    def edit(x: torch.Tensor) -> torch.Tensor:
        return x + strength * sv.vector.to(x.device, x.dtype)
    return {f"blocks.{sv.layer}.hook_resid_pre": edit}
