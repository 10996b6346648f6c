"""Llama (Meta; SmolLM2 and many small models): rotary positions on every dimension of each head, RMSNorm, a
gated MLP (SiLU(x W_gate) * x W_up, then W_down: the "neuron" is the product), grouped-query attention
(num_key_value_heads < num_attention_heads: query heads share keys and values), an untied output layer unless
tie_word_embeddings. Layers may be sliding-window attention (layer_types).

`rotary_gated_arch` reads the facts of this kind of config; Qwen2 (qwen2.py) shares it.
"""
from __future__ import annotations

from .base import GATED_MLP, RMSNORM, ROTARY, ArchConfig, Family, Parts

PARTS = Parts(base="model", embed="embed_tokens", layers="layers", attn="self_attn", mlp="mlp", norm="norm",
              mlp_in="gate_proj", mlp_up="up_proj", mlp_out="down_proj")


def rotary_gated_arch(family: str, c, sliding_on: bool = True) -> ArchConfig:
    """The facts of a Llama-shaped transformers config; `sliding_on` False: its sliding layers are off."""
    d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kinds = list(getattr(c, "layer_types", None) or [])  # "full_attention" or "sliding_attention" per layer
    sliding = [i for i, k in enumerate(kinds) if k == "sliding_attention"] if sliding_on else []
    eos = c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id
    return ArchConfig(
        family=family, block_size=c.max_position_embeddings, vocab_size=c.vocab_size,
        n_layer=c.num_hidden_layers, n_head=c.num_attention_heads,
        n_kv_head=getattr(c, "num_key_value_heads", None) or c.num_attention_heads, n_embd=c.hidden_size,
        d_head=d_head, d_mlp=c.intermediate_size, positions=ROTARY, norm=RMSNORM, mlp=GATED_MLP,
        activation=c.hidden_act, tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)),
        local_window=getattr(c, "sliding_window", None) if sliding else None, local_layers=tuple(sliding),
        rotary_dims=d_head, bos_token_id=c.bos_token_id, eos_token_id=eos)


def arch(c) -> ArchConfig:
    """The facts of a transformers LlamaConfig."""
    return rotary_gated_arch("llama", c)


FAMILY = Family(key="llama", name="Llama", architecture="LlamaForCausalLM", config_class="LlamaConfig", arch=arch,
                parts=PARTS, gated_mlp=True)
