"""The surface every model Glassbox runs offers the pages, as two Protocols, and how a model differs from GPT-2.

Two model classes meet it: Glassbox's own `GPT` (engine/model/gpt.py; GPT-2 family) and `HFModel`
(engine/model/hf.py; every other family, run inside transformers). Their configs, `GPTConfig` and the
families' `ArchConfig` (engine/model/families/), answer the same architecture facts; pages read those facts,
never a class name, to decide what to draw: a rotary model has no position table, a gated MLP has two inputs
per neuron, grouped-query heads share keys.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from .families import FAMILY_NAMES, family_name
from .families.base import GATED_MLP, GELU_MLP, LAYERNORM, LEARNED, RMSNORM, ROTARY, ArchConfig
from .hooks import Edits

__all__ = ["FAMILY_NAMES", "GATED_MLP", "GELU_MLP", "LAYERNORM", "LEARNED", "RMSNORM", "ROTARY", "ArchConfig",
           "Model", "ModelConfig", "differences", "family_name"]


@runtime_checkable
class ModelConfig(Protocol):
    """What every model's config says: its numbers and its architecture facts (GPT-2's, for our GPTConfig)."""
    family: str  # a key of engine.model.families.FAMILIES: "gpt2", "llama", ...
    block_size: int  # tokens of context
    vocab_size: int
    n_layer: int
    n_head: int  # query heads
    n_embd: int  # d_model
    positions: str  # LEARNED (a position table) or ROTARY
    norm: str  # LAYERNORM or RMSNORM
    mlp: str  # GELU_MLP or GATED_MLP
    activation: str  # the MLP's nonlinearity, as config.json names it
    parallel_residual: bool
    tied_embeddings: bool
    attn_scale: float | None  # None: 1 / sqrt(d_head)
    local_window: int | None
    local_layers: tuple[int, ...]
    rotary_dims: int

    @property
    def d_head(self) -> int: ...

    @property
    def d_mlp(self) -> int: ...

    @property
    def n_kv_head(self) -> int: ...

    @property
    def kv_groups(self) -> int: ...

    @property
    def scale(self) -> float: ...

    def shares_keys_with(self, head: int) -> list[int]: ...


@runtime_checkable
class Model(Protocol):
    """What the engine and the pages use of a model (besides nn.Module's parameters): one forward pass with or
    without its internals (and with edits: engine/intervene/), the generation contract, and the parts the logit
    lens and embeddings read."""
    config: Any  # a ModelConfig

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]: ...  # (logits [batch, pos, vocab], loss)

    # `edits` (engine/model/hooks.py): activations changed in this one call, by TransformerLens name.
    def run_with_cache(self, idx: torch.Tensor, edits: Edits | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def final_hidden(self, idx: torch.Tensor, edits: Edits | None = None
                     ) -> torch.Tensor: ...  # [batch, pos, d_model], after the final norm

    def decode_step(self, ids: torch.Tensor, past: Any = None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None, edits: Edits | None = None, last_only: bool = False
                    ) -> tuple[torch.Tensor, Any]: ...

    def repeat_past(self, past: Any, n: int) -> Any: ...  # n rows of a one-row past, new: `past` stays as it is

    @property
    def final_norm(self) -> nn.Module: ...

    @property
    def lm_head(self) -> nn.Module: ...

    def token_embedding(self) -> torch.Tensor: ...  # [vocab, d_model]

    def position_embedding(self) -> torch.Tensor | None: ...  # [block_size, d_model], None with rotary positions

    def num_params(self) -> int: ...


def differences(cfg: ModelConfig) -> list[str]:
    """How this model differs from GPT-2's architecture, one plain sentence each (empty for GPT-2 itself)."""
    out = []
    if cfg.positions == ROTARY:
        part = "" if cfg.rotary_dims in (0, cfg.d_head) else \
            f" ({cfg.rotary_dims} of each head's {cfg.d_head} dimensions)"
        out.append("Rotary positions: there is no position-embedding table; each query and key is rotated by an "
                   f"angle that grows with its position{part}, so the traced q and k are after rotation.")
    if cfg.n_kv_head < cfg.n_head:
        out.append(f"Grouped-query attention: {cfg.n_head} query heads share {cfg.n_kv_head} sets of keys and values "
                   f"({cfg.kv_groups} heads per set); every query head still has its own pattern.")
    if cfg.mlp == GATED_MLP:
        out.append(f"Gated MLP: each neuron is {cfg.activation}(gate) x up, two projections of the input multiplied; "
                   "the 'neuron' shown is that product, the input to the down projection.")
    if cfg.norm == RMSNORM:
        out.append("RMSNorm: the norms rescale each vector by its root mean square, without subtracting the mean "
                   "and without a bias.")
    if cfg.parallel_residual:
        out.append("Parallel attention and MLP: both read the residual stream before the layer and their outputs "
                   "are added together, so 'after attention' is a sum the MLP never reads.")
    if cfg.local_layers:
        layers = ", ".join(str(i) for i in cfg.local_layers)
        out.append(f"Local attention in layers {layers}: a token sees only the last {cfg.local_window} tokens "
                   "there (itself included); the other layers see the whole context.")
    if cfg.attn_scale == 1.0:
        out.append("No 1/sqrt(d_head) scale: the attention scores are the raw dot products q.k.")
    if not cfg.tied_embeddings:
        out.append("Untied unembedding: the output layer is its own matrix, not the token embedding table.")
    return out
