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


# Tiny random models of every architecture engine/model/hf.py runs, as transformers builds them offline: small
# enough to save and load in milliseconds, shaped to exercise what differs (GPT-Neo's local layer, Pythia's
# partial rotary and parallel residual, Llama's and Qwen2's grouped-query heads and gated MLP).
TINY_HF = {
    "gpt_neo": ("GPTNeoConfig", "GPTNeoForCausalLM", dict(
        max_position_embeddings=32, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
        attention_types=[[["global", "local"], 1]], window_size=4)),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        max_position_embeddings=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, rotary_pct=0.25, use_parallel_residual=True)),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(
        max_position_embeddings=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        max_position_embeddings=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48, tie_word_embeddings=True)),
}


def tiny_hf_model(family: str, seed: int = 0):
    """A transformers model of `family` with random weights, eager attention (so it returns patterns)."""
    import transformers
    config_cls, model_cls, fields = TINY_HF[family]
    eot = 0  # the tokenizer below has <|endoftext|> at id 0
    config = getattr(transformers, config_cls)(vocab_size=VOCAB, bos_token_id=eot, eos_token_id=eot, **fields)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(config).eval()


def save_tiny_hf(family: str, folder, seed: int = 0):
    """Save a tiny model of `family` (safetensors) with the tiny tokenizer; returns the transformers model."""
    model = tiny_hf_model(family, seed)
    model.save_pretrained(str(folder))
    tokenizer().save_pretrained(str(folder))
    return model


def save_server_models(root, families=("llama", "gpt_neo")) -> None:
    """A GLASSBOX_MODELS_DIR for the app tests: tiny-llama, tiny-neo (64 tokens of context) and tiny-gpt2 (our
    GPT, a GPT-2-family folder), as a server would hold real models."""
    from engine.model.checkpoint import save_pretrained
    for family in families:
        fields = TINY_HF[family][2]
        key = "max_position_embeddings"
        old, fields[key] = fields[key], 64
        try:
            save_tiny_hf(family, root / f"tiny-{family.replace('gpt_', '')}")
        finally:
            fields[key] = old
    save_pretrained(tiny_model(block_size=64), tokenizer(), root / "tiny-gpt2")
