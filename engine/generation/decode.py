"""Batched generation with a key/value cache, for writing many texts at once (reference stories, completions).

Every row advances together: one `model.decode_step` per new token for the whole batch, each feeding only the
new tokens and reusing every earlier position's keys and values. It uses only the generation contract
(`decode_step`, `config.block_size`, `parameters()`; engine/model/gpt.py), so any model
class offering it generates the same way.

Prompts of different lengths share a batch by left padding: padded positions are masked out as keys
(`key_mask`), and each row's position ids count from its first real token, so every row computes what it
would alone. Rows stop at the context: positions past it have no embedding, and sliding a batch's windows
would re-run every row at every step (engine/generation/window.py does that for one sequence).
"""
from __future__ import annotations

import torch

from .sampling import SamplingSettings, sample


@torch.no_grad()
def generate_batch(model, prompts: list[list[int]], n_tokens: int, settings: SamplingSettings,
                   generator: torch.Generator | None = None, stop_id: int | None = None) -> list[list[int]]:
    """New token ids for every prompt (at most `n_tokens` each, fewer if `stop_id` is drawn or the context
    is full). Draws with the engine's `sample`, all rows at once per step, from the given generator."""
    if not prompts or any(not p for p in prompts):
        raise ValueError("every prompt needs at least one token")
    device = next(model.parameters()).device
    block = model.config.block_size
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    width = int(lengths.max())
    if width > block:
        raise ValueError(f"a prompt of {width} tokens exceeds the context of {block}")
    n_tokens = min(n_tokens, block - width)  # positions past the context have no embedding
    pad = width - lengths  # [batch] left padding per row
    ids = torch.tensor([[0] * (width - len(p)) + list(p) for p in prompts], device=device)
    cols = torch.arange(width, device=device)
    positions = (cols[None] - pad[:, None]).clamp(min=0)  # [batch, width]: each row counts from its first token
    padded = bool((pad > 0).any())
    real = cols[None] >= pad[:, None]  # [batch, width]: keys that are tokens, not padding
    logits, past = model.decode_step(ids, None, positions, real if padded else None)
    last, out = logits[:, -1], [[] for _ in prompts]
    done = torch.zeros(len(prompts), dtype=torch.bool)
    ones = torch.ones(len(prompts), 1, dtype=torch.bool, device=device)
    for step in range(n_tokens):
        drawn = sample(last.float().cpu(), settings, generator)  # [batch]
        for row, tok in enumerate(drawn.tolist()):
            if done[row]:
                continue
            if stop_id is not None and tok == stop_id:
                done[row] = True
            else:
                out[row].append(tok)
        if bool(done.all()) or step == n_tokens - 1:
            break
        real = torch.cat([real, ones], dim=1)  # [batch, width + step + 1]
        logits, past = model.decode_step(drawn.to(device)[:, None], past, (lengths + step)[:, None],
                                         real if padded else None)
        last = logits[:, -1]
    return out
