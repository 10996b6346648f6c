"""What one forward pass is asked to record and to change: `Hooks`, made for that call and passed down it.

A model shared by every session must never carry a hook that changes what it computes. So a change to a forward
pass travels with the call, as the recording dict does: `model.run_with_cache(idx, edits=...)`,
`model.final_hidden(idx, edits=...)` and `model.decode_step(..., edits=...)` take `edits`, a mapping from a
TransformerLens activation name to a function of that activation's value returning its replacement. Our GPT
passes a `Hooks` down its blocks (engine/model/gpt.py); the models that run inside transformers hand it to
their hooks through a per-call ContextVar (engine/model/hf.py). A name without an edit costs nothing.

An edit receives the value the model computed, [batch, pos, ...] (only the new positions in `decode_step`),
and returns a tensor of the same shape; it must not write into the value it got (return a new tensor). The
recorded value, where the call records, is the edited one, so a patched run's trace shows what was patched in.

An edit that is a `Replace` does not read the value it replaces. A `Replace` of the residual stream entering a
layer (`blocks.{L}.hook_resid_pre`) therefore lets a model skip everything before that layer: our GPT starts
its `final_hidden` and `decode_step` there (a patching grid runs each patched layer from its own start, about
twice as fast); a model that cannot skip computes those layers and replaces their result, the same numbers.
A `decode_step` that skipped layers returns None for its past (the skipped layers have no keys and values).
A `decode_step(..., last_only=True)` of our GPT runs its last layer's MLP at the last position only, so an edit
there sees that one position.

The names an edit may change (`editable`): the layer inputs and outputs every family has. Attention's inner
steps (q, k, scores, pattern) are not editable: no intervention here needs them, and transformers' fused
kernels never materialise them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Edit = Callable[[torch.Tensor], torch.Tensor]
Edits = Mapping[str, Edit]
Cache = dict[str, torch.Tensor]

BLOCK_EDITABLE = ("hook_resid_pre", "attn.hook_z", "hook_attn_out", "mlp.hook_post", "hook_mlp_out",
                  "hook_resid_post")


def editable(n_layer: int) -> list[str]:
    """Every activation name an edit may change, in the order the forward pass computes them."""
    return ["hook_embed"] + [f"blocks.{i}.{h}" for i in range(n_layer) for h in BLOCK_EDITABLE]


def check_edits(edits: Edits | None, n_layer: int) -> None:
    """A ValueError naming an edit no forward pass would apply (a typo would otherwise change nothing)."""
    if edits:
        unknown = sorted(set(edits) - set(editable(n_layer)))
        if unknown:
            raise ValueError(f"these activations cannot be edited: {', '.join(unknown[:5])} (editable: the "
                             "embedding and each layer's resid_pre, attn.hook_z, attn_out, mlp.hook_post, "
                             "mlp_out and resid_post)")


class Replace:
    """An edit that replaces an activation with `value` [batch, pos, ...] whatever it was (see the docstring)."""

    def __init__(self, value: torch.Tensor):
        self.value = value

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.to(x.dtype)


def start_layer(edits: Edits | None, n_layer: int) -> tuple[int, torch.Tensor | None]:
    """The last layer whose incoming residual stream `edits` replace whole, and that value: where a forward
    pass may start ((0, None) when none is replaced)."""
    for layer in range(n_layer - 1, -1, -1):
        edit = (edits or {}).get(f"blocks.{layer}.hook_resid_pre")
        if isinstance(edit, Replace):
            return layer, edit.value
    return 0, None


class Hooks:
    """One forward pass's edits and, optionally, the dict it records every named activation into."""

    def __init__(self, edits: Edits | None = None, record: Cache | None = None):
        self.edits = dict(edits or {})
        self.record = record

    def __call__(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """The value the pass goes on with at `name`: edited if asked, recorded if recording."""
        edit = self.edits.get(name)
        if edit is not None:
            edited = edit(value)
            if edited.shape != value.shape:
                raise ValueError(f"the edit of {name} returned shape {tuple(edited.shape)}, not {tuple(value.shape)}")
            value = edited
        if self.record is not None:
            self.record[name] = value.detach()
        return value
