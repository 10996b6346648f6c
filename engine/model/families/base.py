"""What a model family says, in three shapes every family file fills in the same way:

- `ArchConfig`: the architecture facts of one model, read from its Hugging Face config (how positions enter,
  the norm, the MLP, grouped-query heads, local attention, the attention scale, tied embeddings). Pages read
  these facts, never a class name, to decide what to draw.
- `Parts`: where a family's pieces live inside the transformers model (its base model, embeddings, layers,
  and inside a layer), so one recorder hooks every family the same way (engine/model/hf.py).
- `Family`: one row of the table (engine/model/families/__init__.py): its config.json names, its transformers
  classes, its parts, its quirks, and the function that reads its facts.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

LEARNED, ROTARY = "learned", "rotary"  # how positions enter: a table added to the embeddings, or q/k rotation
LAYERNORM, RMSNORM = "layernorm", "rmsnorm"
GELU_MLP, GATED_MLP = "gelu", "gated"  # act(x W_in) W_out, or (act(x W_gate) * x W_up) W_down
GLASSBOX_ATTENTION = "glassbox"  # our attention function, registered with transformers' AttentionInterface
MAX_LAYERS = 256  # far past any real model: a config asking for more is refused before anything is built


@dataclass(frozen=True)
class ArchConfig:
    family: str  # the family's key: "gpt_neo", "gpt_neox", "llama", "qwen2"
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


@dataclass(frozen=True)
class Parts:
    """Attribute names inside the transformers model: `base` on the model, `embed`, `pos`, `layers` and `norm`
    on the base, `attn` and `mlp` on a layer, `mlp_in`, `mlp_up` (a gated MLP's second input) and `mlp_out` on
    the MLP. `pos` None: no position table (rotary)."""
    base: str
    embed: str
    layers: str
    attn: str
    mlp: str
    norm: str
    mlp_in: str
    mlp_out: str
    pos: str | None = None
    mlp_up: str | None = None


Record = Callable[[str, Any], Any]  # (trace name, tensor) -> the value to go on with, kept in the trace being run


@dataclass(frozen=True)
class Family:
    key: str  # transformers' model_type, e.g. "llama"; also ArchConfig.family
    name: str  # in words, e.g. "Llama"
    architecture: str  # config.json's architectures[0], e.g. "LlamaForCausalLM" (also transformers' class)
    config_class: str  # transformers' config class, e.g. "LlamaConfig"
    arch: Callable[[Any], ArchConfig] | None  # the facts of a transformers config object; None: our own GPT's
    parts: Parts | None  # where its pieces live in transformers; None: it loads into Glassbox's own GPT
    gated_mlp: bool = False  # its MLP records gate, up and their product (three widths in a trace)
    inner: str = "intermediate_size"  # the config's field for the MLP's width (None there: 4 x d_model)
    gpt2_pair: bool = False  # GPT-2's vocab.json and merges.txt are its tokenizer (it splits text as GPT-2)
    attention: str = GLASSBOX_ATTENTION  # transformers' attn_implementation the family runs with
    # Its attention does not go through AttentionInterface: hook the layer's attention module instead,
    # (module, "blocks.{L}.attn.", n_head, record) -> None, and complete the trace after the pass.
    hook_attention: Callable[[Any, str, int, Record], None] | None = None
    complete: Callable[[dict, ArchConfig, int], None] | None = None  # (cache, its facts, tokens) -> fills in
    check: Callable[[dict], str | None] | None = None  # a config.json check of its own: why it is refused

    @property
    def native(self) -> bool:
        """Loads key by key into Glassbox's own GPT (engine/model/checkpoint.py), not into transformers."""
        return self.parts is None

    def transformers_config(self, config: dict) -> Any:
        """Its transformers config object, built from config.json's dict (eager attention: the one that always
        exists; counting and loading set their own). Raises what transformers raises for a bad config."""
        import transformers  # heavy; the folder listing and the Hub client do not need it
        return getattr(transformers, self.config_class)(**(config | {"attn_implementation": "eager"}))
