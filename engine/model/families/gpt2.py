"""GPT-2 (OpenAI's gpt2, distilgpt2, and every model Glassbox trains): learned positions added to the token
embeddings, LayerNorm before each half of a block, a GELU MLP four times as wide, q.k scaled by 1/sqrt(d_head),
the output layer tied to the token embeddings.

Its checkpoints load key by key into Glassbox's own GPT (engine/model/gpt.py, whose parameter names are
GPT-2's; engine/model/checkpoint.py reads them), so it has no parts in transformers and its facts are our
GPTConfig's. Quirks: config.json names the MLP's width `n_inner` (None: 4 x n_embd), and older repos ship
GPT-2's vocab.json and merges.txt instead of tokenizer.json.

GPT2Config has switches our GPT does not implement: another `activation_function` (gelu, relu, silu, ...),
`n_inner` other than 4 x n_embd, `scale_attn_by_inverse_layer_idx` (layer L divides q.k by L + 1 as well),
`scale_attn_weights` off, untied output embeddings. A config with any of them runs inside transformers as
`TWIN`, recorded into the same Trace names as every other family there (engine/model/hf.py).
"""
from __future__ import annotations

from ..config import GPTConfig
from .base import GELU_MLP, LAYERNORM, LEARNED, ArchConfig, Family, Parts


def arch(c) -> ArchConfig:
    """The facts of a transformers GPT2Config (one our GPT does not run)."""
    return ArchConfig(
        family="gpt2", block_size=c.n_positions, vocab_size=c.vocab_size, n_layer=c.n_layer, n_head=c.n_head,
        n_kv_head=c.n_head, n_embd=c.n_embd, d_head=c.n_embd // c.n_head, d_mlp=c.n_inner or 4 * c.n_embd,
        positions=LEARNED, norm=LAYERNORM, mlp=GELU_MLP, activation=c.activation_function,
        tied_embeddings=bool(getattr(c, "tie_word_embeddings", True)),
        attn_scale=None if c.scale_attn_weights else 1.0, scale_by_layer=bool(c.scale_attn_by_inverse_layer_idx),
        bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id)


TWIN = Family(key="gpt2", name="GPT-2", architecture="GPT2LMHeadModel", config_class="GPT2Config", arch=arch,
              parts=Parts(base="transformer", embed="wte", pos="wpe", layers="h", attn="attn", mlp="mlp",
                          norm="ln_f", mlp_in="c_fc", mlp_out="c_proj"),
              inner="n_inner", gpt2_pair=True)
FAMILY = Family(key="gpt2", name="GPT-2", architecture="GPT2LMHeadModel", config_class="GPT2Config",
                arch=None, parts=None, inner="n_inner", gpt2_pair=True, ours_cannot=GPTConfig.unsupported, twin=TWIN)
