"""The residual stream, stage by stage: what each block writes, and what the model would predict if it
stopped there.

Logit lens (nostalgebraist, 2020): apply the model's own final layer norm (`ln_f`) and unembedding
(`lm_head`) to the residual stream after the embeddings, after each attention block and after each MLP block.
The last stage is the model's real output, computed by the very same modules on the very same numbers, so
it equals the trace's logits exactly (a test says so).

Direct contributions: the residual stream at the end is a sum of what the embeddings and each block wrote.
The final layer norm is linear once its scale is fixed, so with the scale the real forward pass used, each
part's share of the final prediction's logit is exact, and the shares plus the norm's bias add up to that
logit (the "direct logit attribution" of TransformerLens).

Both are pure functions of (model, trace): the model is only read, never changed, and never re-run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.arch import RMSNORM
from ..model.trace import Trace

TOP_K = 5  # tokens kept per stage and position


def stage_names(n_layer: int) -> list[str]:
    """Residual stream stages in order: "embeddings", "after attention 0", "after MLP 0", ..."""
    names = ["embeddings"]
    for layer in range(n_layer):
        names += [f"after attention {layer}", f"after MLP {layer}"]
    return names


def stage_residuals(trace: Trace) -> torch.Tensor:
    """[stage, pos, d_model]: the residual stream at every stage (see `stage_names`)."""
    stages = [trace.act["blocks.0.hook_resid_pre"]]
    for layer in range(trace.config.n_layer):
        stages += [trace.act[f"blocks.{layer}.hook_resid_mid"], trace.act[f"blocks.{layer}.hook_resid_post"]]
    return torch.stack(stages)


@torch.no_grad()
def unembed(model, resid: torch.Tensor) -> torch.Tensor:
    """[pos, d_model] -> [pos, vocab] float32 on the CPU: the model's ln_f and lm_head applied to `resid`.

    The input goes in as [1, pos, d_model] in the model's dtype on the model's device, the shape and type
    the forward pass itself feeds these modules, so the last stage reproduces the model's logits bit for bit.
    """
    p = next(model.parameters())
    x = resid[None].to(device=p.device, dtype=p.dtype)  # [1, pos, d_model]
    return model.lm_head(model.final_norm(x))[0].float().cpu()


@dataclass(frozen=True)
class Lens:
    stages: list[str]  # stage names, last = the model's output
    top_ids: torch.Tensor  # [stage, pos, k] the k most likely next tokens at each stage
    top_probs: torch.Tensor  # [stage, pos, k] their probabilities
    target_ids: torch.Tensor  # [pos] the model's final prediction at each position (its argmax)
    target_probs: torch.Tensor  # [stage, pos] probability of the final prediction at each stage
    target_ranks: torch.Tensor  # [stage, pos] its rank among all tokens at each stage (0 = the top)


@torch.no_grad()
def logit_lens(model, trace: Trace, k: int = TOP_K) -> Lens:
    """Top tokens and the final prediction's probability and rank at every stage and position."""
    k = min(k, trace.logits.shape[-1])
    target = trace.logits.argmax(dim=-1)  # [pos]
    tops_i, tops_p, t_probs, t_ranks = [], [], [], []
    for resid in stage_residuals(trace):
        logits = unembed(model, resid)  # [pos, vocab]
        probs = logits.softmax(dim=-1)
        top = probs.topk(k, dim=-1)
        tops_i.append(top.indices)
        tops_p.append(top.values)
        t_logit = logits.gather(-1, target[:, None])  # [pos, 1]
        t_probs.append(probs.gather(-1, target[:, None])[:, 0])
        t_ranks.append((logits > t_logit).sum(dim=-1))
    return Lens(stages=stage_names(trace.config.n_layer), top_ids=torch.stack(tops_i),
                top_probs=torch.stack(tops_p), target_ids=target, target_probs=torch.stack(t_probs),
                target_ranks=torch.stack(t_ranks))


def part_names(n_layer: int) -> list[str]:
    """What writes into the residual stream, in order."""
    names = ["token embedding", "position embedding"]
    for layer in range(n_layer):
        names += [f"attention {layer}", f"MLP {layer}"]
    return names


def part_outputs(trace: Trace) -> torch.Tensor:
    """[part, pos, d_model]: what each part writes (see `part_names`); they sum to the final residual."""
    parts = [trace.act["hook_embed"], trace.act["hook_pos_embed"]]
    for layer in range(trace.config.n_layer):
        parts += [trace.act[f"blocks.{layer}.hook_attn_out"], trace.act[f"blocks.{layer}.hook_mlp_out"]]
    return torch.stack(parts)


@dataclass(frozen=True)
class Contributions:
    parts: list[str]  # see `part_names`
    norms: torch.Tensor  # [part, pos] L2 norm of what each part writes
    direct: torch.Tensor  # [part, pos] each part's share of the final prediction's logit
    bias: torch.Tensor  # [pos] the final norm's bias's share (from no part)
    target_ids: torch.Tensor  # [pos] the final prediction at each position
    target_logits: torch.Tensor  # [pos] its logit; = direct.sum(0) + bias


@torch.no_grad()
def contributions(model, trace: Trace) -> Contributions:
    """Norms of what each part writes, and its direct share of the final prediction's logit."""
    ln_f, w_u = model.final_norm, model.lm_head.weight  # w_u: [vocab, d_model]
    gamma = ln_f.weight.detach().float().cpu()  # [d_model]
    rms = model.config.norm == RMSNORM  # no mean subtracted, no bias
    beta = torch.zeros_like(gamma) if rms or ln_f.bias is None else ln_f.bias.detach().float().cpu()
    eps = ln_f.variance_epsilon if rms else ln_f.eps  # transformers' RMSNorm names it so; nn.LayerNorm eps
    target = trace.logits.argmax(dim=-1)  # [pos]
    direction = w_u.detach()[target.to(w_u.device)].float().cpu()  # [pos, d_model] unembedding rows
    outs = part_outputs(trace)  # [part, pos, d_model]
    final = trace.act[f"blocks.{trace.config.n_layer - 1}.hook_resid_post"]  # [pos, d_model]
    # The scale the final norm divided by in the real forward pass (LayerNorm: biased variance; RMSNorm: the
    # mean square), and what it subtracts first (LayerNorm: the mean, a linear step; RMSNorm: nothing).
    if rms:
        scale, centred = (final.pow(2).mean(dim=-1) + eps).sqrt(), outs  # [pos]
    else:
        scale = (final.var(dim=-1, unbiased=False) + eps).sqrt()  # [pos]
        centred = outs - outs.mean(dim=-1, keepdim=True)
    direct = torch.einsum("cpd,d,pd->cp", centred, gamma, direction) / scale  # [part, pos]
    bias = direction @ beta  # [pos]
    return Contributions(parts=part_names(trace.config.n_layer), norms=outs.norm(dim=-1), direct=direct,
                         bias=bias, target_ids=target, target_logits=trace.logits.gather(-1, target[:, None])[:, 0])
