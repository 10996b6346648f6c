"""Qwen2 (Alibaba; Qwen2.5): Llama's architecture (llama.py: rotary, RMSNorm, gated MLP, grouped-query
attention) with biases on q, k and v, and sliding-window layers only where use_sliding_window is set (its
configs list layer types either way). Its repos ship a vocab.json and merges.txt too, but it splits text with
its own expression, which only tokenizer.json says: the pair alone is not its tokenizer.
"""
from __future__ import annotations

from .base import ArchConfig, Family
from .llama import PARTS, rotary_gated_arch


def arch(c) -> ArchConfig:
    """The facts of a transformers Qwen2Config."""
    return rotary_gated_arch("qwen2", c, sliding_on=bool(getattr(c, "use_sliding_window", False)))


FAMILY = Family(key="qwen2", name="Qwen2", architecture="Qwen2ForCausalLM", config_class="Qwen2Config", arch=arch,
                parts=PARTS, gated_mlp=True)
