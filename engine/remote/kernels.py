"""The code that runs inside an NDIF job, next to the model: it reads what one forward pass computes and keeps
only what a page draws, so the answer stays small however big the model is.

nnsight ships this module's functions with the request by their source (engine/remote/record.py registers the
module for that), and NDIF runs them in a sandbox that lets the code import torch and math only. So this
module imports nothing else, takes and returns plain Python values, tensors and the model's module envoys,
and never touches the rest of Glassbox. The same functions run on a local model through nnsight's local
execution, which is how the tests check them against the engine's own Trace.

`job(model, spec, parts)` is the whole job. `spec` says what to keep (a TraceRequest as a dict), `parts` where
the model keeps its pieces and how its attention scores are made (a Recipe as a dict). Values leave the job in
the model's own dtype (bfloat16 on NDIF; float32 for a local model), on the CPU; they are computed in float32.

Attention patterns are rebuilt, because a hosted model runs a fused kernel that never forms them:
softmax(q k^T * scale + causal mask) from the layer's own q and k projections, rotated by the model's own
rotary module's cos and sin (so Llama-3.1's rope scaling is applied exactly as the model applies it),
with grouped-query heads' keys repeated to one per query head.
"""
import math

import torch

_EMBED = "embeddings"  # the lens's first stage: the residual stream before the first layer


def _get(root, path: str):
    """`root.a.b` for path "a.b" (an envoy of the model, or the model's own module)."""
    for name in path.split("."):
        root = getattr(root, name)
    return root


def _tensor(out):
    """A module's output as one tensor: decoder layers return a tuple in some transformers versions."""
    return out[0] if isinstance(out, (tuple, list)) else out


def split_heads(x: torch.Tensor, d_head: int) -> torch.Tensor:
    """[1, pos, heads * d_head] -> [1, heads, pos, d_head]."""
    return x.view(x.shape[0], x.shape[1], -1, d_head).transpose(1, 2)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Llama's rotation: the second half of the last dimension, negated, swapped with the first."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """GPT-J's rotation: each pair of neighbouring dimensions (x0, x1) -> (-x1, x0)."""
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


def rope_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [1, heads, pos, d_head] rotated by the model's cos, sin [1, pos, rot] over its first `rot` dims."""
    rot = cos.shape[-1]
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)  # [1, 1, pos, rot]
    turned = x[..., :rot] * cos + rotate_half(x[..., :rot]) * sin
    return torch.cat((turned, x[..., rot:]), dim=-1)


def rope_pairs(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """x [1, heads, pos, d_head] rotated as GPT-J does: sin, cos [1, pos, rot / 2] from its rotary module,
    each angle applied to a neighbouring pair of the first `rot` dims."""
    rot = 2 * sin.shape[-1]
    sin = sin[:, None].to(x.dtype).repeat_interleave(2, dim=-1)  # [1, 1, pos, rot]
    cos = cos[:, None].to(x.dtype).repeat_interleave(2, dim=-1)
    turned = x[..., :rot] * cos + rotate_every_two(x[..., :rot]) * sin
    return torch.cat((turned, x[..., rot:]), dim=-1)


def causal_pattern(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale + causal mask): q [1, heads, pos, d], k [1, kv_heads, pos, d] -> [heads, pos, pos]
    in float32. Grouped-query keys are repeated to one per query head, as the model's attention repeats them."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
    n = q.shape[2]
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # [1, heads, pos, pos]
    future = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, -math.inf).softmax(dim=-1)[0]


def pattern_of(layer, parts: dict, rotary) -> torch.Tensor:
    """One layer's attention pattern [heads, pos, pos] (float32), rebuilt from its q and k projections."""
    d = parts["d_head"]
    if parts["qkv"]:  # GPT-2: one projection makes q, k and v side by side
        qkv = _get(layer, parts["qkv"]).output
        width = parts["n_head"] * d
        q, k = split_heads(qkv[..., :width], d), split_heads(qkv[..., width:2 * width], d)
    else:
        q, k = split_heads(_get(layer, parts["q"]).output, d), split_heads(_get(layer, parts["k"]).output, d)
    if parts["rope"] == "halves":
        cos, sin = rotary
        q, k = rope_halves(q.float(), cos.float(), sin.float()), rope_halves(k.float(), cos.float(), sin.float())
    elif parts["rope"] == "pairs":
        sin, cos = rotary
        q, k = rope_pairs(q.float(), sin.float(), cos.float()), rope_pairs(k.float(), sin.float(), cos.float())
    return causal_pattern(q, k, parts["scale"])


def lens_stage(model, parts: dict, resid: torch.Tensor, at: list) -> torch.Tensor:
    """The model's final norm and unembedding applied to the residual stream at positions `at`:
    [1, pos, d_model] -> [len(at), vocab] probabilities in float32."""
    x = resid[:, at]  # [1, P, d_model]
    logits = _get(model, parts["head"])(_get(model, parts["norm"])(x))
    return logits[0].float().softmax(dim=-1)


def top_of(probs: torch.Tensor, k: int) -> tuple:
    """The k most likely tokens of [..., vocab] probabilities: (ids int32, probabilities)."""
    top = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return top.indices.int(), top.values


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """[..., vocab] probabilities -> [...] entropy in bits (0 log 0 = 0)."""
    logs = torch.where(probs > 0, probs.log2(), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=-1)


def job(model, spec: dict, parts: dict) -> dict:
    """The whole job, run while the model runs: what `spec` asks for, and nothing else.

    spec: layer (int or None: whose heads' patterns), lens_at (positions of the logit lens), lens_k, resid_at
    (positions whose residual stream is kept after every layer), logits_at (positions whose final logits are
    kept whole), top_n (tokens of the final distribution kept at every position, with its entropy).
    Returns {name: tensor} in the model's dtype on the CPU (ids as int32, entropy in float32).
    """
    out = {}
    layers = _get(model, parts["layers"])
    rotary = None
    if spec["layer"] is not None and parts["rope"] != "none":
        rotary = _get(model, parts["rotary"]).output  # computed once, before the first layer runs
    lens_at, resid_at = list(spec["lens_at"]), list(spec["resid_at"])
    stages, kept = [], []
    dtype = None
    for i in range(parts["n_layer"]):
        layer = layers[i]
        if i == 0 and (lens_at or resid_at):
            first = _tensor(layer.input)  # [1, pos, d_model]: the embeddings (and positions) the layers read
            dtype = first.dtype
            if lens_at:
                stages.append(lens_stage(model, parts, first, lens_at))
            if resid_at:
                kept.append(first[0, resid_at])
        if i == spec["layer"]:
            pattern = pattern_of(layer, parts, rotary)
            out["pattern"] = pattern
        if lens_at or resid_at:
            h = _tensor(layer.output)  # [1, pos, d_model]
            if lens_at:
                stages.append(lens_stage(model, parts, h, lens_at))
            if resid_at:
                kept.append(h[0, resid_at])
    logits = _tensor(_get(model, parts["head"]).output)[0]  # [pos, vocab]
    dtype = logits.dtype if dtype is None else dtype
    probs = logits.float().softmax(dim=-1)
    ids, top = top_of(probs, spec["top_n"])
    out["top_ids"], out["top_probs"] = ids, top.to(dtype)
    out["entropy"] = entropy_bits(probs)
    if spec["logits_at"]:
        out["logits"] = logits[list(spec["logits_at"])].to(dtype)
    if "pattern" in out:
        out["pattern"] = out["pattern"].to(dtype)
    if stages:
        lens = torch.stack(stages)  # [stage, P, vocab]
        lens_ids, lens_probs = top_of(lens, spec["lens_k"])
        target = lens[-1].argmax(dim=-1)  # [P]: the final stage is the model's own prediction
        out["lens_ids"], out["lens_probs"] = lens_ids, lens_probs.to(dtype)
        out["lens_target"] = lens.gather(-1, target[None, :, None].expand(lens.shape[0], -1, 1))[..., 0].to(dtype)
    if kept:
        out["resid"] = torch.stack(kept).to(dtype)  # [stage, P, d_model]
    return {name: value.detach().cpu() for name, value in out.items()}
