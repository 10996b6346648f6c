"""Small shared things for the engine tests: a tiny config, a seeded model, a BPE tokenizer trained in
well under a second. Imported by tests/test_engine_*.py (not a conftest: fixtures stay in each module)."""
from __future__ import annotations

from functools import lru_cache

import torch

from engine import GPT, GPTConfig, train_bpe

VOCAB = 320  # 256 byte tokens + <|endoftext|> + a few merges
TEXTS = [
    "Once upon a time, there was a little cat named Tom. Tom liked to play with a red ball.",
    "One day, the ball rolled under the bed. Tom was sad.\nHis friend the dog helped him get it back.",
    "Tom was happy again and they played all day. The end.\n\n",
    "The sun was warm and the sky was blue. The birds sang in the tall green trees.",
] * 8


def tiny_config(**overrides) -> GPTConfig:
    fields = dict(block_size=16, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=32)
    return GPTConfig(**(fields | overrides))


def tiny_model(seed: int = 0, **overrides) -> GPT:
    """A randomly initialised 2-layer model in eval mode; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return GPT(tiny_config(**overrides)).eval()


@lru_cache(maxsize=1)
def tokenizer():
    """A byte-level BPE (all 256 bytes in the vocabulary, so any text encodes). Treat as read-only."""
    return train_bpe(TEXTS, VOCAB)
