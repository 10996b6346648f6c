"""GPT-NeoX (EleutherAI; the Pythia models): rotary positions on part of each head (rotary_pct), LayerNorm, a
GELU MLP, and parallel attention and MLP (use_parallel_residual): both read the residual stream before the
layer, and their outputs are added to it together. The output layer is its own matrix (embed_out).
"""
from __future__ import annotations

from .base import GELU_MLP, LAYERNORM, ROTARY, ArchConfig, Family, Parts


def arch(c) -> ArchConfig:
    """The facts of a transformers GPTNeoXConfig."""
    d_head = c.hidden_size // c.num_attention_heads
    rope = getattr(c, "rope_parameters", None) or {}  # newer transformers keep rotary_pct here
    partial = rope.get("partial_rotary_factor", getattr(c, "rotary_pct", 1.0))
    return ArchConfig(
        family="gpt_neox", block_size=c.max_position_embeddings, vocab_size=c.vocab_size,
        n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_kv_head=c.num_attention_heads,
        n_embd=c.hidden_size, d_head=d_head, d_mlp=c.intermediate_size, positions=ROTARY, norm=LAYERNORM,
        mlp=GELU_MLP, activation=c.hidden_act, parallel_residual=bool(c.use_parallel_residual),
        tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)), rotary_dims=int(d_head * partial),
        bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id)


FAMILY = Family(
    key="gpt_neox", name="GPT-NeoX", architecture="GPTNeoXForCausalLM", config_class="GPTNeoXConfig", arch=arch,
    parts=Parts(base="gpt_neox", embed="embed_in", layers="layers", attn="attention", mlp="mlp",
                norm="final_layer_norm", mlp_in="dense_h_to_4h", mlp_out="dense_4h_to_h"))
