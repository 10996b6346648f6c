"""One forward pass, every internal recorded: the `Trace` every page draws from.

Parameter names follow GPT-2 / Hugging Face (`transformer.h.0.attn.c_attn.weight`); activation names follow
TransformerLens (`blocks.0.attn.hook_pattern`). In a Trace the batch dimension is dropped, so shapes are:

    hook_embed, hook_pos_embed                     [pos, d_model]
    blocks.{L}.hook_resid_pre|mid|post             [pos, d_model]
    blocks.{L}.attn.hook_q|k|v|z                   [pos, head, d_head]
    blocks.{L}.attn.hook_attn_scores|pattern       [head, query_pos, key_pos] (scores: scaled, masked -inf)
    blocks.{L}.hook_attn_out, blocks.{L}.hook_mlp_out  [pos, d_model]
    blocks.{L}.mlp.hook_pre|post                   [pos, d_mlp]
    ln_final.hook_normalized                       [pos, d_model]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import GPTConfig
from .gpt import GPT
from .tokenizer import Encoding, display_token, encode, start_id

BLOCK_HOOKS = (
    "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores",
    "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "mlp.hook_pre",
    "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
)


def hook_names(n_layer: int) -> list[str]:
    """Every activation a trace records, in the order the forward pass computes them."""
    names = ["hook_embed", "hook_pos_embed"]
    for i in range(n_layer):
        names += [f"blocks.{i}.{h}" for h in BLOCK_HOOKS]
    return names + ["ln_final.hook_normalized"]


@dataclass(frozen=True)
class Trace:
    text: str  # the text as given
    ids: list[int]  # token ids the model saw (after truncation, BOS included if added)
    tokens: list[str]  # display form of each token
    offsets: list[tuple[int, int]]  # character span of each token in `text` ((0, 0) for BOS)
    logits: torch.Tensor  # [pos, vocab], float32, on the CPU
    act: dict[str, torch.Tensor]  # named activations, batch dimension dropped, on the CPU
    config: GPTConfig
    n_dropped: int = 0  # tokens cut from the start because the text is longer than the context
    has_bos: bool = False  # whether ids[0] is a prepended <|endoftext|>

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Bytes its tensors hold: what keeping it in a cache costs (engine/model/cost.py estimates it)."""
        return sum(t.numel() * t.element_size() for t in (self.logits, *self.act.values()))

    def pattern(self, layer: int, head: int) -> torch.Tensor:
        return self.act[f"blocks.{layer}.attn.hook_pattern"][head]  # [query_pos, key_pos]

    def probs(self, pos: int = -1) -> torch.Tensor:
        return self.logits[pos].softmax(-1)  # [vocab]


class NonFiniteTrace(ValueError):
    """A forward pass whose activations or logits hold NaN or infinity (broken weights, or numbers that
    overflow): nothing computed from it means anything, so it is refused rather than drawn as "nan%"."""

    def __init__(self, name: str):
        self.name = name  # the first activation, in the order of the forward pass, that is not finite
        super().__init__(f"The model's {name} on this text hold NaN or infinite values, so there is nothing "
                         "true to show: its weights or its config are broken, or its numbers overflow on this text.")


def first_non_finite(act: dict[str, torch.Tensor], logits: torch.Tensor) -> str | None:
    """The name of the first activation (in the forward pass's order, the logits last) holding NaN or infinity,
    or None. Masked attention scores are -inf by design; only NaN or +inf there counts."""
    for name, t in (*act.items(), ("logits", logits)):
        if name.endswith("hook_attn_scores"):
            bad = torch.isnan(t).any() or torch.isposinf(t).any()
        else:
            bad = not torch.isfinite(t).all()
        if bad:
            return name
    return None


def encode_for_model(tokenizer, text: str, block_size: int, bos: bool = True) -> tuple[Encoding, int]:
    """Encode `text` for a forward pass: optional <|endoftext|> first, then keep the last tokens that fit.

    Returns the encoding and how many tokens of the text were dropped from the start.
    """
    enc = encode(tokenizer, text)
    ids, tokens, offsets = enc.ids, enc.tokens, enc.offsets
    room = block_size - (1 if bos else 0)
    dropped = max(0, len(ids) - room)
    ids, tokens, offsets = ids[dropped:], tokens[dropped:], offsets[dropped:]
    if bos:
        eot = start_id(tokenizer)
        ids, tokens, offsets = [eot] + ids, [display_token(tokenizer, eot)] + tokens, [(0, 0)] + offsets
    return Encoding(ids, tokens, offsets), dropped


@torch.no_grad()
def run_trace(model: GPT, tokenizer, text: str, bos: bool = True) -> Trace:
    """Tokenize `text` and run one recorded forward pass. Raises ValueError for text with no tokens, and its
    NonFiniteTrace for a pass that holds NaN or infinity."""
    enc, dropped = encode_for_model(tokenizer, text, model.config.block_size, bos)
    if len(enc.ids) - int(bos) + dropped == 0:  # the text itself has no tokens (a lone start marker is not text)
        raise ValueError("There is no text to run: type something first.")
    return trace_ids(model, tokenizer, enc.ids, text=text, tokens=enc.tokens, offsets=enc.offsets,
                     n_dropped=dropped, has_bos=bos)


@torch.no_grad()
def trace_ids(model: GPT, tokenizer, ids: list[int], text: str | None = None, tokens: list[str] | None = None,
              offsets: list[tuple[int, int]] | None = None, n_dropped: int = 0, has_bos: bool = False) -> Trace:
    """A recorded forward pass over token ids (at most block_size of them). Raises NonFiniteTrace when an
    activation or the logits hold NaN or infinity."""
    if not ids:
        raise ValueError("There is no text to run: type something first.")
    if len(ids) > model.config.block_size:
        raise ValueError(f"{len(ids)} tokens exceed the context of {model.config.block_size}")
    device = next(model.parameters()).device
    logits, cache = model.run_with_cache(torch.tensor([ids], device=device))
    act = {k: v[0].float().cpu() for k, v in cache.items()}
    logits = logits[0].float().cpu()
    if (bad := first_non_finite(act, logits)) is not None:
        raise NonFiniteTrace(bad)
    if tokens is None:
        tokens = [display_token(tokenizer, i) for i in ids]
    if text is None:
        text = tokenizer.decode(ids)
    return Trace(text=text, ids=list(ids), tokens=tokens, offsets=offsets or [(0, 0)] * len(ids),
                 logits=logits, act=act, config=model.config,
                 n_dropped=n_dropped, has_bos=has_bos)
