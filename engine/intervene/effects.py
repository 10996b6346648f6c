"""What an edit does to what the model says: the next-token distribution, a completion with the same seed, and
the loss on a held-out text, each with and without the edit. Ablation and steering both report these.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..generation.sampling import SamplingSettings, generate
from ..model.hooks import Edits
from ..model.tokenizer import start_id
from ..model.trace import encode_for_model
from .edited import Edited


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def next_token_probs(model, ids: list[int], edits: Edits | None = None) -> torch.Tensor:
    """[vocab] float32 on the CPU: the distribution of the token after `ids`, with `edits` applied."""
    hidden = model.final_hidden(torch.tensor([ids], device=_device(model)), edits=edits)  # [1, pos, d_model]
    return model.lm_head(hidden[:, -1]).float().softmax(-1)[0].cpu()


def completion(model, ids: list[int], n_new: int, settings: SamplingSettings, seed: int,
               edits: Edits | None = None, stop_id: int | None = None) -> list[int]:
    """`n_new` tokens after `ids` (fewer at `stop_id` or the context's end), drawn with a generator seeded
    with `seed`: the same seed with and without edits draws the same random numbers at every step."""
    room = model.config.block_size - len(ids)
    generator = torch.Generator().manual_seed(seed)
    target = Edited(model, edits) if edits else model
    return generate(target, ids, max(0, min(n_new, room)), settings, generator, stop_id=stop_id)


@torch.no_grad()
def text_loss(model, ids: list[int], edits: Edits | None = None) -> float:
    """Mean cross-entropy (nats per token) of predicting each token of `ids` from the ones before it."""
    if len(ids) < 2:
        raise ValueError("a loss needs at least two tokens")
    x = torch.tensor([ids], device=_device(model))
    hidden = model.final_hidden(x[:, :-1], edits=edits)
    logits = model.lm_head(hidden).float()  # [1, pos - 1, vocab]
    return float(F.cross_entropy(logits[0], x[0, 1:]))


def heldout_ids(tokenizer, text: str, block_size: int) -> tuple[list[int], int]:
    """A held-out text as ids for `text_loss` (start marker first), and how many of its tokens the context cut."""
    enc, dropped = encode_for_model(tokenizer, text, block_size)
    return list(enc.ids), dropped


@dataclass(frozen=True)
class Effect:
    """The same questions asked of the model without and with an edit."""
    before: torch.Tensor  # [vocab] next-token distribution after the prompt, unedited
    after: torch.Tensor  # [vocab] with the edit
    completion_before: list[int]  # new token ids, the same seed
    completion_after: list[int]
    loss_before: float | None  # nats per token on the held-out text (None: not asked)
    loss_after: float | None
    room: int  # new tokens the context had room for after the prompt (0: the completions are empty)

    @property
    def kl(self) -> float:
        """KL(before || after) in nats: how far the edit moved the next-token distribution."""
        p, q = self.before.clamp_min(1e-30), self.after.clamp_min(1e-30)
        return float((self.before * (p.log() - q.log())).sum())

    def moved(self, k: int = 5) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """The k tokens whose log-probability rose most and the k that fell most, among those likely before
        or after (a token at 1e-9 rising to 1e-7 is no news): (token id, change in log-probability)."""
        likely = (self.before > 1e-3) | (self.after > 1e-3)
        change = self.after.clamp_min(1e-30).log() - self.before.clamp_min(1e-30).log()
        ids = likely.nonzero().flatten()
        order = change[ids].argsort(descending=True)
        ranked = [(int(ids[i]), float(change[ids[i]])) for i in order]
        rose = [r for r in ranked[:k] if r[1] > 0]
        fell = [r for r in ranked[::-1][:k] if r[1] < 0]
        return rose, fell


def effect(model, tokenizer, ids: list[int], edits: Edits, n_new: int, settings: SamplingSettings, seed: int,
           heldout: list[int] | None = None) -> Effect:
    """Next-token distribution, a seeded completion and (given `heldout` ids) the held-out loss, without and
    with `edits`."""
    stop = start_id(tokenizer)
    before = next_token_probs(model, ids)
    after = next_token_probs(model, ids, edits)
    comp_before = completion(model, ids, n_new, settings, seed, stop_id=stop)
    comp_after = completion(model, ids, n_new, settings, seed, edits, stop_id=stop)
    loss_before = loss_after = None
    if heldout is not None and len(heldout) >= 2:
        loss_before, loss_after = text_loss(model, heldout), text_loss(model, heldout, edits)
    room = max(0, model.config.block_size - len(ids))
    return Effect(before, after, comp_before, comp_after, loss_before, loss_after, room)
