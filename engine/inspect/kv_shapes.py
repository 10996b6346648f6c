"""What the key/value cache costs per token in known models, computed from their config.json numbers.

The bytes per token are 2 (a key and a value) x layers x key/value heads x head size x bytes per number
(engine.inspect.kv.bytes_per_token). The figures below are read from each model's published config.json
through the same family table that reads every config Glassbox loads (engine/model/families), so the
number of key/value heads, the head size and the context are the model's own, not retyped:

- GPT-2 small: huggingface.co/openai-community/gpt2, config.json (12 layers, 12 heads, width 768, 1,024 tokens)
- Llama 2 7B: huggingface.co/meta-llama/Llama-2-7b-hf, config.json (32 layers, 32 heads, 32 key/value heads,
  width 4,096, 4,096 tokens): every query head has its own keys and values
- Llama 3.1 8B: huggingface.co/meta-llama/Llama-3.1-8B, config.json (32 layers, 32 heads, 8 key/value heads,
  width 4,096, 131,072 tokens): grouped-query attention, four query heads per key/value head
- SmolLM2-135M: huggingface.co/HuggingFaceTB/SmolLM2-135M, config.json (30 layers, 9 heads, 3 key/value heads,
  width 576, 8,192 tokens)

Only the numbers that shape the cache (and the names a config needs) are kept; the released models store
their weights and cache in 16-bit numbers (bf16 or fp16: 2 bytes), which is what the comparison uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..model.config import GPTConfig
from ..model.families import family_for
from .kv import bytes_per_token

DEPLOYED_BYTES = 2  # bf16 / fp16, as these models are released and served


@dataclass(frozen=True)
class KVShape:
    """The numbers that size a model's key/value cache."""
    name: str
    n_layer: int
    n_head: int  # query heads
    n_kv_head: int  # key/value heads: fewer than n_head with grouped-query attention
    d_head: int
    context: int  # tokens
    source: str  # where the numbers come from

    def per_token(self, bytes_per_value: int = DEPLOYED_BYTES) -> int:
        return bytes_per_token(self.n_layer, self.n_kv_head, self.d_head, bytes_per_value)

    def full(self, bytes_per_value: int = DEPLOYED_BYTES) -> int:
        """The cache of one sequence filling the whole context."""
        return self.per_token(bytes_per_value) * self.context

    @property
    def groups(self) -> int:
        """Query heads per key/value head (1: every head has its own)."""
        return self.n_head // self.n_kv_head


# name -> (the config.json numbers that shape the cache, its address)
PUBLISHED: dict[str, tuple[dict, str]] = {
    "GPT-2 small": ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 12, "n_head": 12,
                     "n_embd": 768, "n_positions": 1024, "n_ctx": 1024, "vocab_size": 50257},
                    "huggingface.co/openai-community/gpt2/blob/main/config.json"),
    "Llama 2 7B": ({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32,
                    "num_attention_heads": 32, "num_key_value_heads": 32, "hidden_size": 4096,
                    "intermediate_size": 11008, "max_position_embeddings": 4096, "vocab_size": 32000},
                   "huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json"),
    "Llama 3.1 8B": ({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32,
                      "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096,
                      "intermediate_size": 14336, "max_position_embeddings": 131072, "vocab_size": 128256},
                     "huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json"),
    "SmolLM2-135M": ({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 30,
                      "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576,
                      "intermediate_size": 1536, "max_position_embeddings": 8192, "vocab_size": 49152},
                     "huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json"),
}


def shape_from_config(name: str, config: dict, source: str) -> KVShape:
    """A config.json dict's cache shape, read by its family (GPT-2's through our own GPTConfig)."""
    family = family_for(config)
    cfg = GPTConfig.from_hf_dict(config) if family.native else family.arch(family.transformers_config(config))
    return KVShape(name, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.block_size, source)


@cache
def published() -> tuple[KVShape, ...]:
    """The models above, in their order."""
    return tuple(shape_from_config(name, config, source) for name, (config, source) in PUBLISHED.items())


def shape_of(name: str, cfg) -> KVShape:
    """The cache shape of a running model's config (any ModelConfig)."""
    return KVShape(name, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.block_size, "the model in use")
