"""One growing sequence's context window and the model's next-token logits after it, on a key/value cache.

Generation asks the model for the logits after the last `block_size` tokens, appends the token it drew, and
asks again. While the sequence fits the context, each new token costs one position: `model.decode_step` gets
only that token and the keys and values of the ones before it. Once the context is full, every new token
slides the window by one, which gives every token in it a new position id (and so new keys and values in
every layer): nothing cached is valid any more, and the window is run again from its first token, one
prefill per step.

Uses only the generation contract (`decode_step`, `config.block_size`, `parameters()`), so any model class
that offers it generates the same way.
"""
from __future__ import annotations

import torch


class ContextWindow:
    """The last block_size tokens of `ids` (copied; `append` grows it) and the logits after them."""

    def __init__(self, model, ids: list[int]):
        self.model = model
        self.block = model.config.block_size
        self.device = next(model.parameters()).device
        self.ids = list(ids)
        self._past = None  # keys and values of ids[:_cached], all at their own positions (window at 0)
        self._cached = 0
        self._logits: torch.Tensor | None = None  # after every token of ids, once computed

    @property
    def context(self) -> list[int]:
        """The token ids the model sees for the next token (at most block_size of them)."""
        return self.ids[-self.block:]

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.block

    def next_logits(self) -> torch.Tensor:
        """Logits [vocab] for the token after the context, on the model's device; computed once per token."""
        if self._logits is None:
            if not self.ids:
                raise ValueError("generation needs at least one token of context")
            if self._past is not None and len(self.ids) <= self.block:
                new, past = self.ids[self._cached:], self._past  # the window still starts at token 0
            else:
                new, past = self.context, None  # first call, or the window slid: every position moved
            logits, past = self.model.decode_step(torch.tensor([new], device=self.device), past)
            # Worth keeping only while the next token still fits without sliding the window.
            self._past, self._cached = (past, len(self.ids)) if len(self.ids) < self.block else (None, 0)
            self._logits = logits[0, -1]
        return self._logits

    def append(self, token_id: int) -> None:
        self.ids.append(int(token_id))
        self._logits = None
