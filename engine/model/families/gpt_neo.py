"""GPT-Neo (EleutherAI; the TinyStories models): GPT-2's block with learned positions, LayerNorm and a GELU MLP,
and two quirks.

- No attention scale: q.k is not divided by sqrt(d_head) (attn_scale 1.0).
- Local layers: config.json's attention_types ([[["global", "local"], 12]]) alternate layers that see the
  whole context with layers that see only the last `window_size` tokens.

transformers' GPT-Neo has no AttentionInterface path, so it runs its own eager attention, which returns the
pattern; hooks on its q, k, v and output projections give the rest, and the scores (not returned) are
computed after the pass from the recorded q and k (`complete`). Its repos may ship GPT-2's vocab.json and
merges.txt as the tokenizer: it splits text as GPT-2 does.
"""
from __future__ import annotations

import torch

from .base import GELU_MLP, LAYERNORM, LEARNED, MAX_LAYERS, ArchConfig, Family, Parts, Record


def arch(c) -> ArchConfig:
    """The facts of a transformers GPTNeoConfig."""
    kinds = list(c.attention_layers)  # one "global" or "local" per layer
    return ArchConfig(
        family="gpt_neo", block_size=c.max_position_embeddings, vocab_size=c.vocab_size, n_layer=c.num_layers,
        n_head=c.num_heads, n_kv_head=c.num_heads, n_embd=c.hidden_size, d_head=c.hidden_size // c.num_heads,
        d_mlp=c.intermediate_size or 4 * c.hidden_size, positions=LEARNED, norm=LAYERNORM, mlp=GELU_MLP,
        activation=c.activation_function, tied_embeddings=bool(getattr(c, "tie_word_embeddings", True)),
        attn_scale=1.0, local_window=c.window_size if "local" in kinds else None,
        local_layers=tuple(i for i, k in enumerate(kinds) if k == "local"),
        bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id)


def check(config: dict) -> str | None:
    """attention_types expands into one entry per layer: bounded before transformers expands it."""
    types = config.get("attention_types")
    if types is None:
        return None
    ok = isinstance(types, list) and all(
        isinstance(t, list) and len(t) == 2 and isinstance(t[0], list) and type(t[1]) is int
        and 0 <= t[1] <= MAX_LAYERS for t in types)
    if not ok or sum(len(t[0]) * t[1] for t in types) > MAX_LAYERS:
        return ("config.json's attention_types must look like [[[\"global\", \"local\"], 12]] and describe at most "
                f"{MAX_LAYERS} layers")
    return None


def hook_attention(attn, prefix: str, n_head: int, record: Record) -> None:
    """Hooks on GPT-Neo's own attention module (`attn.attention`): q, k, v and z split into heads, and the
    pattern, its second output. Only z may be edited (the value `record` hands back replaces it)."""
    inner = attn.attention

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], n_head, t.shape[-1] // n_head)  # [batch, pos, head, d_head]

    def z(_m, args, name=prefix + "hook_z"):  # the heads' outputs before out_proj merges them; may be edited
        value = heads(args[0])
        new = record(name, value)
        return None if new is value else (new.reshape(*new.shape[:-2], -1), *args[1:])

    def kept(name: str, pick):  # recorded only: a forward hook that returns None changes nothing
        def hook(_m, _args, out) -> None:
            record(name, pick(out))
        return hook

    for proj, hook in (("q_proj", "hook_q"), ("k_proj", "hook_k"), ("v_proj", "hook_v")):
        getattr(inner, proj).register_forward_hook(kept(prefix + hook, heads))
    inner.out_proj.register_forward_pre_hook(z)
    inner.register_forward_hook(kept(prefix + "hook_pattern", lambda out: out[1]))


def complete(cache: dict[str, torch.Tensor], cfg: ArchConfig, n_pos: int) -> None:
    """The scores its attention does not return: q.k unscaled, under the causal (and local) mask."""
    for i in range(cfg.n_layer):
        p = f"blocks.{i}.attn."
        q, k = cache[p + "hook_q"], cache[p + "hook_k"]  # [batch, pos, head, d_head]
        scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) * cfg.scale  # [batch, head, q, k]
        allowed = torch.ones(n_pos, n_pos, dtype=torch.bool, device=q.device).tril()
        if i in cfg.local_layers:  # a local layer sees itself and the window_size - 1 tokens before
            allowed &= ~torch.ones(n_pos, n_pos, dtype=torch.bool, device=q.device).tril(-cfg.local_window)
        cache[p + "hook_attn_scores"] = scores.masked_fill(~allowed, float("-inf"))


FAMILY = Family(
    key="gpt_neo", name="GPT-Neo", architecture="GPTNeoForCausalLM", config_class="GPTNeoConfig", arch=arch,
    parts=Parts(base="transformer", embed="wte", pos="wpe", layers="h", attn="attn", mlp="mlp", norm="ln_f",
                mlp_in="c_fc", mlp_out="c_proj"),
    gpt2_pair=True, attention="eager", hook_attention=hook_attention, complete=complete, check=check)
