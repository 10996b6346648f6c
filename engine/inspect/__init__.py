"""Looking inside: what the pages compute from a Trace or from the weights, one question per module.

- attention_steps: how one attention weight is made from a query and a key, stage by stage
- heads: what kind of head is this (previous-token, first-token, induction, ...)
- word_context: one word in two texts (context changes meaning), two texts token by token
- lens: what each block writes into the residual stream, and the logit lens
- neurons: which MLP neurons fire, how often, and where they fire most (the neuron atlas)
- embeddings: the rows of the embedding tables a text picks out, neighbours, a PCA map
- params: where the parameters live, and the model's size next to known models
- surprise: how surprised the model is by each token of a text, at any length
- bpe_steps: byte-level BPE one merge at a time
- compare_tokenizers: the same text under several tokenizers, and what fits in the context
- kv: the key/value cache of generation, its bytes, its exactness, its time; kv_shapes: known models' cache sizes
- quantize: a copy of a model in 8 bits (PyTorch's int8) or 4, 3, 2 (simulated), and what it costs
- circuits: head types and the induction test's loss at a training checkpoint
- model_pair: two models of one vocabulary on the same tokens (base and instruct, before and after tuning)
- guessing: a person's guess at the next token, read as the tokenizer splits it and scored by the model
"""
from . import (attention_steps, bpe_steps, circuits, compare_tokenizers, embeddings, guessing, heads, kv, kv_shapes,
               lens, model_pair, neurons, params, quantize, surprise, word_context)

__all__ = ["attention_steps", "bpe_steps", "circuits", "compare_tokenizers", "embeddings", "guessing", "heads", "kv",
           "kv_shapes", "lens", "model_pair", "neurons", "params", "quantize", "surprise", "word_context"]
