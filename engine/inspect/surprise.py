"""How surprised the model is by each token of a text, for texts of any length.

A model reads at most `block_size` tokens, so a longer text is scored in windows. With the sliding schedule
(stride = half a window, as engine.train.evaluate.token_nll) every token after the first window keeps at least half
a context of history. With stride = a whole window the model starts afresh at every window boundary and
forgets everything before it: that is what "the window is full" costs, and the loss plot shows it.

Surprise of a token = -log p(token | what precedes it); perplexity = exp(mean surprise in nats).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.tokenizer import encode, start_id


@dataclass(frozen=True)
class TokenScores:
    """Scores of ids[1:] given what precedes each (the first token has nothing to be predicted from). All [n]."""
    nll: torch.Tensor  # nats, float32
    top_ids: torch.Tensor  # the model's most likely token at that point, long
    rank: torch.Tensor  # rank of the actual token among all the model's predictions (1 = its top guess), long
    n_context: torch.Tensor  # how many tokens the prediction saw, long

    def __len__(self) -> int:
        return self.nll.numel()

    @property
    def probs(self) -> torch.Tensor:
        return torch.exp(-self.nll)  # [n]

    @property
    def bits(self) -> torch.Tensor:
        return self.nll / math.log(2)  # [n]

    @property
    def perplexity(self) -> float:
        return perplexity(self.nll)


def perplexity(nll: torch.Tensor) -> float:
    """exp(mean negative log-likelihood in nats): 'as unsure as choosing among this many tokens'."""
    if nll.numel() == 0:
        raise ValueError("perplexity needs at least one scored token")
    return float(torch.exp(nll.double().mean()))


@torch.no_grad()
def score_tokens(model, ids: list[int], stride: int | None = None) -> TokenScores:
    """Score ids[1:] with windows of block_size tokens that start `stride` apart (default: half a window,
    the schedule of engine.train.evaluate.token_nll). stride = block_size restarts the model at every window."""
    block = model.config.block_size
    stride = max(1, min(stride or block // 2, block))
    device = next(model.parameters()).device
    n = len(ids) - 1
    if n < 1:
        raise ValueError("scoring needs at least two tokens: one to predict from, one to predict")
    nll, top, rank, ctx = torch.empty(n), torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long), \
        torch.empty(n, dtype=torch.long)
    done = 0  # targets ids[1:done + 1] are scored
    start = 0
    while done < n:
        window = ids[start:start + block + 1]
        x = torch.tensor([window[:-1]], device=device)
        y = torch.tensor(window[1:])
        logits = model.decode_step(x)[0][0].float().cpu()  # [len(y), vocab]: a prefill, no cache kept
        new = slice(done - start, len(y))  # targets before these were scored by an earlier window
        picked = logits[torch.arange(len(y)), y]  # [len(y)]
        nll[done:start + len(y)] = F.cross_entropy(logits, y, reduction="none")[new]
        top[done:start + len(y)] = logits.argmax(-1)[new]
        rank[done:start + len(y)] = ((logits > picked[:, None]).sum(-1) + 1)[new]
        ctx[done:start + len(y)] = torch.arange(1, len(y) + 1)[new]  # target j of the window saw j tokens
        done = start + len(y)
        start += stride
    return TokenScores(nll, top, rank, ctx)


@dataclass(frozen=True)
class TextSurprise:
    """A text's tokens and how surprising the model found each one."""
    ids: list[int]  # the text's tokens (the start marker the model reads first is not included)
    tokens: list[str]  # display form of each
    scores: TokenScores  # one score per token of `ids`


def text_surprise(model, tokenizer, text: str, stride: int | None = None) -> TextSurprise:
    """Score every token of `text`, read after an <|endoftext|> start marker as in training."""
    enc = encode(tokenizer, text)
    if not enc.ids:
        raise ValueError("There is no text to score: type something first.")
    eot = start_id(tokenizer)
    return TextSurprise(enc.ids, enc.tokens, score_tokens(model, [eot, *enc.ids], stride))
