"""A model seen through edits, for generation: every step's forward pass applies them.

Generation (engine/generation/) uses only the generation contract: `config`, `parameters()` and
`decode_step`. `Edited` offers exactly that and hands its edits to each `decode_step` call, so an ablated or
steered model writes text with the same code, the same sampling and the same seed as the model itself. The
model underneath is never changed: the edits live in this wrapper, which belongs to one caller.

An edit here sees only the positions each call decodes (the whole prompt first, then one token at a time),
so it must not depend on where it is in the text: zeroing a head, adding a vector everywhere.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from ..model.hooks import Edits, check_edits


def compose(first: Edits, then: Edits | None) -> Edits:
    """Both sets of edits: where both change one activation, `first`'s edit and then `then`'s."""
    if not then:
        return first
    out = dict(first)
    for name, edit in then.items():
        out[name] = edit if name not in first else (lambda x, a=first[name], b=edit: b(a(x)))
    return out


class Edited:
    """`model` with `edits` applied to every forward pass generation makes."""

    def __init__(self, model, edits: Edits):
        check_edits(edits, model.config.n_layer)
        self.model = model
        self.edits = dict(edits)
        self.config = model.config

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.model.parameters()

    def decode_step(self, ids: torch.Tensor, past=None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None, edits: Edits | None = None, last_only: bool = False):
        return self.model.decode_step(ids, past, positions, key_mask, edits=compose(self.edits, edits),
                                      last_only=last_only)

    def repeat_past(self, past, n: int):
        return self.model.repeat_past(past, n)
