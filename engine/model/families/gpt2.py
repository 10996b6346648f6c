"""GPT-2 (OpenAI's gpt2, distilgpt2, and every model Glassbox trains): learned positions added to the token
embeddings, LayerNorm before each half of a block, a GELU MLP four times as wide, q.k scaled by 1/sqrt(d_head),
the output layer tied to the token embeddings.

Its checkpoints load key by key into Glassbox's own GPT (engine/model/gpt.py, whose parameter names are
GPT-2's; engine/model/checkpoint.py reads them), so it has no parts in transformers and its facts are our
GPTConfig's. Quirks: config.json names the MLP's width `n_inner` (None: 4 x n_embd), and older repos ship
GPT-2's vocab.json and merges.txt instead of tokenizer.json.
"""
from __future__ import annotations

from .base import Family

FAMILY = Family(key="gpt2", name="GPT-2", architecture="GPT2LMHeadModel", config_class="GPT2Config",
                arch=None, parts=None, inner="n_inner", gpt2_pair=True)
