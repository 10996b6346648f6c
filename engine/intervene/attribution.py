"""Which input tokens mattered for one output token, measured two ways, and where the two disagree.

The output is the token at position t+1 (or a candidate for the token after the text), predicted at position
t from the tokens 0..t; each input token 1..t (the start marker is left alone) gets an effect on the log-
probability of that output:
- leave-one-out: remove the token, run again, and take how much the log-probability fell. A real
  intervention, one forward pass per token (batched); it also moves every later token one position back.
- gradient x input: the gradient of the log-probability with respect to the token's embedding, dotted with
  that embedding: a first-order guess of what removing it would do, from one forward and one backward pass.

They often disagree: the gradient is local (it sees the slope, not what happens when the token is gone), and a
token can matter through several routes that cancel. The page shows both and says where they part, instead of
averaging them into one confident-looking heatmap.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .price import Price, Refusal, check, forward_price, nothing

MAX_ROWS = 64  # rows of one leave-one-out batch


@dataclass(frozen=True)
class Attribution:
    position: int  # the prediction explained is made at this position (of the token after it)
    target: int  # the output token id
    logprob: float  # its log-probability with every input token there
    positions: list[int]  # the input positions scored: 1..position
    leave_one_out: torch.Tensor  # [n]: log p(all) - log p(without that token); positive = it helped
    grad_x_input: torch.Tensor  # [n]: gradient . embedding

    def agreement(self) -> float | None:
        """Spearman's rank correlation of the two methods (None with fewer than three tokens or a flat one)."""
        a, b = self.leave_one_out, self.grad_x_input
        if len(a) < 3 or float(a.std()) == 0 or float(b.std()) == 0:
            return None
        ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
        return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])

    def normalised(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each method's scores divided by its largest |score|, so both run from -1 to 1 and compare."""
        return tuple(x / max(float(x.abs().max()), 1e-12) for x in (self.leave_one_out, self.grad_x_input))

    def disagreement(self) -> torch.Tensor:
        """[n]: how far apart the two normalised scores are, 0 (the same) to 2 (opposite extremes)."""
        a, b = self.normalised()
        return (a - b).abs()


def _device(model) -> torch.device:
    return next(model.parameters()).device


def price(cfg, position: int) -> Price:
    """Leave-one-out's batched calls plus the full run and the gradient's forward and backward (~3 passes)."""
    n = position  # inputs scored, each a row of `position` tokens
    total = forward_price(cfg, 1, position + 1, position + 1, logit_rows=1)
    total = Price(0, 0, total.flops * 3, total.seconds * 3)
    for start in range(0, n, MAX_ROWS):
        rows = min(MAX_ROWS, n - start)
        total += forward_price(cfg, rows, position, position, logit_rows=rows, forwards=rows)
    return total if n else nothing()


@torch.no_grad()
def _logprobs(model, batch: torch.Tensor, target: int) -> torch.Tensor:
    """[rows]: log p(target) after each row of `batch` [rows, pos]."""
    hidden = model.final_hidden(batch)[:, -1]  # [rows, d_model]
    return model.lm_head(hidden).float().log_softmax(-1)[:, target].cpu()


def leave_one_out(model, ids: list[int], position: int, target: int) -> tuple[float, torch.Tensor]:
    """(log p(target) after ids[:position + 1], [position] its fall when each of tokens 1..position is removed)."""
    device = _device(model)
    context = torch.tensor(ids[:position + 1], device=device)
    full = float(_logprobs(model, context[None], target)[0])
    keep = torch.ones(position, position + 1, dtype=torch.bool, device=device)  # row i drops token i + 1
    keep[torch.arange(position), torch.arange(1, position + 1)] = False
    rows = context[None].expand(position, -1)[keep].view(position, position)  # [n, position]
    out = torch.cat([_logprobs(model, rows[i:i + MAX_ROWS], target) for i in range(0, position, MAX_ROWS)])
    return full, full - out


def gradient_x_input(model, ids: list[int], position: int, target: int) -> torch.Tensor:
    """[position]: for tokens 1..position, d log p(target) / d embedding . embedding. The gradient is taken
    with respect to a copy of the token embeddings put in by an edit, so the model's weights are only read."""
    leaf: list[torch.Tensor] = []

    def take(x: torch.Tensor) -> torch.Tensor:  # hook_embed [1, pos, d_model] -> a leaf that records gradients
        leaf.append(x.detach().requires_grad_(True))
        return leaf[0]

    with torch.enable_grad():
        hidden = model.final_hidden(torch.tensor([ids[:position + 1]], device=_device(model)),
                                    edits={"hook_embed": take})
        logp = model.lm_head(hidden[0, -1]).float().log_softmax(-1)[target]
        (grad,) = torch.autograd.grad(logp, leaf[0])
    return (grad[0] * leaf[0][0].detach()).sum(-1)[1:].float().cpu()


def attribute(model, ids: list[int], position: int, target: int) -> Attribution:
    """Both methods for the prediction of `target` at `position` (priced first: Refusal over the budget)."""
    if not 1 <= position < len(ids):
        raise Refusal("Pick an output token with at least one token of your text before it.")
    if not 0 <= target < model.config.vocab_size:
        raise ValueError("the output token is not in the vocabulary")
    check(price(model.config, position), f"leave-one-out over {position:,} tokens", "an earlier output token")
    full, loo = leave_one_out(model, ids, position, target)
    return Attribution(position, target, full, list(range(1, position + 1)), loo,
                       gradient_x_input(model, ids, position, target))
