"""How one attention weight is made, stage by stage, read from a Trace.

For one head and one query token, attention computes:

    scores_j  = q · k_j / sqrt(d_head)          (j <= query; later positions are masked to -inf)
    weights   = softmax(scores)                  (rows sum to 1)
    z         = sum_j weights_j * v_j            (the head's output for this token)

Every stage comes from the trace: q, k, v (`hook_q|k|v`), the scaled and masked scores (`hook_attn_scores`),
the weights (`hook_pattern`) and the output (`hook_z`). Two intermediate values are not recorded by the
model, so they are computed here from recorded ones, to be shown *next to* the recorded stage they lead to:
the raw dot products q · k_j (from hook_q and hook_k, also for the masked positions, so the mask is visible),
and the weighted value vectors (from hook_pattern and hook_v), whose sum a reader can check against hook_z.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.trace import Trace


@dataclass(frozen=True)
class WeightSteps:
    layer: int
    head: int
    query: int  # position of the query token
    q: torch.Tensor  # [d_head], hook_q at the query
    k: torch.Tensor  # [pos, d_head], hook_k at every position
    dots: torch.Tensor  # [pos], q · k_j, computed from hook_q and hook_k (not masked)
    scale: float  # what the dot products are divided by: sqrt(d_head), 1 for a model without the scale, or
    #               sqrt(d_head) x (layer + 1) for GPT-2's scale_attn_by_inverse_layer_idx
    scores: torch.Tensor  # [pos], hook_attn_scores row: dots / scale, -inf after the query
    weights: torch.Tensor  # [pos], hook_pattern row: softmax(scores), sums to 1
    v: torch.Tensor  # [pos, d_head], hook_v at every position
    weighted: torch.Tensor  # [pos, d_head], weights_j * v_j, computed from hook_pattern and hook_v
    z: torch.Tensor  # [d_head], hook_z at the query: the head's output

    @property
    def scaled(self) -> torch.Tensor:
        """[pos]: dots / sqrt(d_head) before the mask (equals `scores` where j <= query)."""
        return self.dots / self.scale

    @property
    def masked(self) -> torch.Tensor:
        """[pos] bool: positions after the query, which the mask hides."""
        return torch.arange(len(self.dots)) > self.query

    @property
    def exp_shifted(self) -> torch.Tensor:
        """[pos]: exp(score - max score), the softmax numerators (exp(-inf) = 0 for masked positions)."""
        return torch.exp(self.scores - self.scores.max())

    @property
    def z_from_sum(self) -> torch.Tensor:
        """[d_head]: the sum of the weighted value vectors, which should equal `z` from the trace."""
        return self.weighted.sum(0)


def weight_steps(trace: Trace, layer: int, head: int, query: int) -> WeightSteps:
    """Every stage of head `head` in layer `layer` for the token at position `query` of `trace`."""
    cfg = trace.config
    if not (0 <= layer < cfg.n_layer and 0 <= head < cfg.n_head and 0 <= query < len(trace)):
        raise IndexError(f"no layer {layer}, head {head}, position {query} in this trace")
    a = f"blocks.{layer}.attn."
    q = trace.act[a + "hook_q"][query, head]  # [d_head]
    k = trace.act[a + "hook_k"][:, head]  # [pos, d_head]
    v = trace.act[a + "hook_v"][:, head]  # [pos, d_head]
    weights = trace.act[a + "hook_pattern"][head, query]  # [pos]
    return WeightSteps(
        layer=layer, head=head, query=query, q=q, k=k, dots=k @ q, scale=1 / cfg.layer_scale(layer),
        scores=trace.act[a + "hook_attn_scores"][head, query], weights=weights, v=v,
        weighted=weights[:, None] * v, z=trace.act[a + "hook_z"][query, head],
    )
