"""Two models of one vocabulary on the same tokens: what tuning changed (a base model and its instruct model, or
a model before and after preference tuning).

- the next-token distribution of each at every position, and the KL divergence between them;
- the logit lens of each (engine/inspect/lens.py: the final norm and output layer applied after every block),
  and where along the layers their predictions part: the KL between the two models' lens distributions at
  every stage, and for each position the stage from which their most likely tokens differ to the end;
- completions of each from the same seed (the only difference is the weights).

The models are only read. Both must share the tokenizer's vocabulary (a base and its instruct model do).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..generation.decode import generate_batch
from ..generation.sampling import SamplingSettings
from ..model.trace import trace_ids
from .lens import stage_names, stage_residuals, unembed

TOP_K = 10


def kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) in nats along the last dimension, from log-probabilities."""
    return (p_log.exp() * (p_log - q_log)).sum(-1).clamp(min=0)


@dataclass(frozen=True)
class PairComparison:
    """Model A (the base, or before tuning) and model B (instruct, or after) on the same token ids."""
    ids: tuple[int, ...]
    top_ids: torch.Tensor  # [pos, 2k]: the union of both models' top tokens at each position, by A + B probability
    probs_a: torch.Tensor  # [pos, 2k] their probabilities under A
    probs_b: torch.Tensor  # [pos, 2k] under B
    kl: torch.Tensor  # [pos]: KL(B || A) of the next-token distribution, nats
    stages: tuple[str, ...]  # the lens's stages: embeddings, after attention 0, after MLP 0, ...
    lens_kl: torch.Tensor  # [stage, pos]: KL(B's lens || A's lens)
    lens_top_a: torch.Tensor  # [stage, pos]: A's most likely next token at each stage
    lens_top_b: torch.Tensor  # [stage, pos]
    parting: tuple[int | None, ...]  # per position: the first stage from which the top tokens differ to the end
    #                                  (None: they agree at the end)

    @property
    def n_pos(self) -> int:
        return len(self.ids)


@torch.no_grad()
def compare_pair(model_a, model_b, tokenizer, ids: list[int], k: int = TOP_K) -> PairComparison:
    """Both models on `ids` (within both contexts), side by side. Raises ValueError if their vocabularies differ."""
    if model_a.config.vocab_size != model_b.config.vocab_size:
        raise ValueError(f"the two models have different vocabularies ({model_a.config.vocab_size:,} and "
                         f"{model_b.config.vocab_size:,} tokens), so their predictions cannot be compared")
    trace_a, trace_b = trace_ids(model_a, tokenizer, ids), trace_ids(model_b, tokenizer, ids)
    log_a, log_b = trace_a.logits.log_softmax(-1), trace_b.logits.log_softmax(-1)  # [pos, vocab]
    pa, pb = log_a.exp(), log_b.exp()
    union = torch.cat([pa.topk(k, -1).indices, pb.topk(k, -1).indices], dim=-1)  # [pos, 2k], may repeat
    score = (pa + pb).gather(-1, union)
    order = score.argsort(-1, descending=True)
    union = union.gather(-1, order)
    lens_kl, tops_a, tops_b = [], [], []
    for ra, rb in zip(stage_residuals(trace_a), stage_residuals(trace_b)):
        la, lb = unembed(model_a, ra).log_softmax(-1), unembed(model_b, rb).log_softmax(-1)  # [pos, vocab]
        lens_kl.append(kl(lb, la))
        tops_a.append(la.argmax(-1))
        tops_b.append(lb.argmax(-1))
    top_a, top_b = torch.stack(tops_a), torch.stack(tops_b)  # [stage, pos]
    return PairComparison(
        ids=tuple(ids), top_ids=union, probs_a=pa.gather(-1, union), probs_b=pb.gather(-1, union),
        kl=kl(log_b, log_a), stages=tuple(stage_names(model_a.config.n_layer)), lens_kl=torch.stack(lens_kl),
        lens_top_a=top_a, lens_top_b=top_b, parting=tuple(parting_stage(top_a[:, p], top_b[:, p])
                                                          for p in range(len(ids))))


def parting_stage(top_a: torch.Tensor, top_b: torch.Tensor) -> int | None:
    """The first stage from which two [stage] sequences of top tokens differ at every stage to the end; None
    when they agree at the last stage."""
    differ = (top_a != top_b).tolist()
    if not differ[-1]:
        return None
    stage = len(differ) - 1
    while stage > 0 and differ[stage - 1]:
        stage -= 1
    return stage


def completions(model, ids: list[int], seeds: tuple[int, ...], n_tokens: int, stop_ids: set[int],
                temperature: float = 0.7) -> list[list[int]]:
    """One completion of `ids` per seed, each from its own seeded generator (the same seed and tokens give the
    same draws for any model of this vocabulary), stopping at any of `stop_ids`."""
    ids = list(ids)[-(model.config.block_size - 1):]
    out = []
    for seed in seeds:
        new = generate_batch(model, [ids], n_tokens, SamplingSettings(temperature=temperature),
                             torch.Generator().manual_seed(seed), stop_id=None)[0]
        cut = next((i for i, t in enumerate(new) if t in stop_ids), len(new))
        out.append(new[:cut])
    return out
