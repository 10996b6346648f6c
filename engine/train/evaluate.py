"""Held-out quality in bits per character: the model's total surprise over a text, divided by its length.

Unlike loss per token it does not depend on the tokenizer, so models with different vocabularies compare.
Each document starts after an `<|endoftext|>`, as in training; long documents are scored with a sliding
window so every token after the first window keeps half a context of history.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.gpt import GPT
from ..model.tokenizer import EOT


@dataclass(frozen=True)
class HeldoutScore:
    bits_per_char: float
    loss_per_token: float  # nats
    n_chars: int
    n_tokens: int


@torch.no_grad()
def token_nll(model: GPT, ids: list[int]) -> torch.Tensor:
    """Negative log-likelihood (nats) of ids[1:] given what precedes each, any length: [len(ids) - 1]."""
    block = model.config.block_size
    device = next(model.parameters()).device
    stride = max(1, block // 2)
    out = torch.empty(len(ids) - 1)
    done = 0  # targets ids[1:done + 1] are scored
    start = 0
    while done < len(ids) - 1:
        window = ids[start:start + block + 1]
        x = torch.tensor([window[:-1]], device=device)
        y = torch.tensor(window[1:], device=device)
        logits, _ = model(x)
        nll = F.cross_entropy(logits[0].float(), y, reduction="none").cpu()
        first_new = done - start  # targets before this were scored by an earlier window
        out[done:start + len(y)] = nll[first_new:]
        done = start + len(y)
        start += stride
    return out


def bits_per_char(model: GPT, tokenizer, docs: Iterable[str]) -> HeldoutScore:
    was_training = model.training
    model.eval()
    eot = tokenizer.convert_tokens_to_ids(EOT)
    nats, chars, tokens = 0.0, 0, 0
    for doc in docs:
        ids = [eot] + tokenizer(doc, add_special_tokens=False)["input_ids"]
        nll = token_nll(model, ids)
        nats += float(nll.sum())
        chars += len(doc)
        tokens += len(nll)
    model.train(was_training)
    if chars == 0:
        raise ValueError("the held-out text is empty")
    return HeldoutScore(nats / math.log(2) / chars, nats / tokens, chars, tokens)
