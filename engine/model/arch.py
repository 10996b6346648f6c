"""What kind of transformer a model is: the facts a page needs to show its internals truthfully.

Every model Glassbox runs (its own GPT, or a Hugging Face model run by engine/model/hf.py) has a config with
the same core fields (`n_layer`, `n_head`, `n_embd`, `d_head`, `d_mlp`, `block_size`, `vocab_size`) and the
architecture facts below. Our `GPTConfig` answers them with GPT-2's values; `ArchConfig` holds them for a model
read from a Hugging Face config.json. Pages read these facts, never a class name, to decide what to draw:
a rotary model has no position table, a gated MLP has two inputs per neuron, grouped-query heads share keys.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LEARNED, ROTARY = "learned", "rotary"  # how positions enter: a table added to the embeddings, or q/k rotation
LAYERNORM, RMSNORM = "layernorm", "rmsnorm"
GELU_MLP, GATED_MLP = "gelu", "gated"  # act(x W_in) W_out, or (act(x W_gate) * x W_up) W_down

FAMILY_NAMES = {"gpt2": "GPT-2", "gpt_neo": "GPT-Neo", "gpt_neox": "GPT-NeoX", "llama": "Llama", "qwen2": "Qwen2"}


@dataclass(frozen=True)
class ArchConfig:
    family: str  # "gpt_neo", "gpt_neox", "llama", "qwen2"
    block_size: int  # the longest context the model was trained on (max_position_embeddings)
    vocab_size: int
    n_layer: int
    n_head: int  # query heads
    n_kv_head: int  # key/value heads; fewer than n_head = grouped-query attention
    n_embd: int  # width of the residual stream (d_model)
    d_head: int
    d_mlp: int  # neurons per MLP layer
    positions: str = ROTARY
    norm: str = LAYERNORM
    mlp: str = GELU_MLP
    activation: str = "gelu"  # the MLP's nonlinearity, as config.json names it
    parallel_residual: bool = False  # attention and MLP both read resid_pre, their outputs are added together
    tied_embeddings: bool = False  # the output layer is the token embedding table
    attn_scale: float | None = None  # what q.k is multiplied by; None: 1 / sqrt(d_head)
    local_window: int | None = None  # local attention layers see only this many tokens back
    local_layers: tuple[int, ...] = field(default_factory=tuple)
    rotary_dims: int = 0  # dimensions of each head that rotate (partial rotary: fewer than d_head)
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    @property
    def kv_groups(self) -> int:
        """Query heads per key/value head (1 without grouped-query attention)."""
        return self.n_head // self.n_kv_head

    @property
    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else self.d_head ** -0.5

    def shares_keys_with(self, head: int) -> list[int]:
        """The query heads that read the same keys and values as `head` (itself included)."""
        g = self.kv_groups
        return list(range(head // g * g, head // g * g + g))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def family_name(cfg) -> str:
    return FAMILY_NAMES.get(getattr(cfg, "family", "gpt2"), str(getattr(cfg, "family", "?")))


def differences(cfg) -> list[str]:
    """How this model differs from GPT-2's architecture, one plain sentence each (empty for GPT-2 itself)."""
    out = []
    if getattr(cfg, "positions", LEARNED) == ROTARY:
        part = "" if cfg.rotary_dims in (0, cfg.d_head) else \
            f" ({cfg.rotary_dims} of each head's {cfg.d_head} dimensions)"
        out.append("Rotary positions: there is no position-embedding table; each query and key is rotated by an "
                   f"angle that grows with its position{part}, so the traced q and k are after rotation.")
    if getattr(cfg, "n_kv_head", cfg.n_head) < cfg.n_head:
        out.append(f"Grouped-query attention: {cfg.n_head} query heads share {cfg.n_kv_head} sets of keys and values "
                   f"({cfg.kv_groups} heads per set); every query head still has its own pattern.")
    if getattr(cfg, "mlp", GELU_MLP) == GATED_MLP:
        out.append(f"Gated MLP: each neuron is {cfg.activation}(gate) x up, two projections of the input multiplied; "
                   "the 'neuron' shown is that product, the input to the down projection.")
    if getattr(cfg, "norm", LAYERNORM) == RMSNORM:
        out.append("RMSNorm: the norms rescale each vector by its root mean square, without subtracting the mean "
                   "and without a bias.")
    if getattr(cfg, "parallel_residual", False):
        out.append("Parallel attention and MLP: both read the residual stream before the layer and their outputs "
                   "are added together, so 'after attention' is a sum the MLP never reads.")
    if getattr(cfg, "local_layers", ()):
        layers = ", ".join(str(i) for i in cfg.local_layers)
        out.append(f"Local attention in layers {layers}: a token sees only the last {cfg.local_window} tokens "
                   "there (itself included); the other layers see the whole context.")
    if getattr(cfg, "attn_scale", None) == 1.0:
        out.append("No 1/sqrt(d_head) scale: the attention scores are the raw dot products q.k.")
    if not getattr(cfg, "tied_embeddings", True):
        out.append("Untied unembedding: the output layer is its own matrix, not the token embedding table.")
    return out
