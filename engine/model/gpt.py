"""A GPT with the GPT-2 architecture and GPT-2 / Hugging Face parameter names.

Three entry points share one set of weights:
- `GPT.forward(idx, targets=None) -> (logits, loss)` for training, on the fused attention kernel;
- `GPT.run_with_cache(idx) -> (logits, cache)` for looking inside, on the explicit attention path,
  recording every internal into a dict made for that call (see engine/model/trace.py for the names);
- `GPT.decode_step(ids, past, positions, key_mask) -> (logits, past)` for generating, on the fused kernel
  with a key/value cache that belongs to the caller (the contract every model class offers generation).

Linear layers store their weight as [in, out] like GPT-2's `Conv1D`, so a GPT-2 state dict loads key by
key with no transposes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig

Cache = dict[str, torch.Tensor]
# What decode_step hands back to its caller: per layer, the keys and values [batch, head, past_len, d_head] of
# every position so far. Callers treat it as opaque.
Past = tuple[tuple[torch.Tensor, torch.Tensor], ...]


class Conv1D(nn.Module):
    """GPT-2's linear layer: y = x @ W + b with W stored as [in, out]."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.t(), self.bias)


def _record(cache: Cache | None, name: str, value: torch.Tensor) -> None:
    if cache is not None:
        cache[name] = value


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.attn_dropout

    def forward(self, x: torch.Tensor, cache: Cache | None = None, prefix: str = "") -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        k = k.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        v = v.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        if cache is None:
            # Fast path for training and plain inference: fused kernel, nothing recorded.
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                dropout_p=self.dropout if self.training else 0.0,
            )
            z = y.transpose(1, 2)  # [batch, pos, head, d_head]
        else:
            z = self._explicit(q, k, v, cache, prefix)
        return self.c_proj(z.reshape(B, T, C))

    def step(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None, mask: torch.Tensor | None,
             causal: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention of new positions x [batch, new, d_model] over the cached keys/values before them and
        themselves. mask [batch or 1, 1, new, all] bool (True = may attend), or None with `causal` saying
        whether the new positions need the plain causal mask (a prefill) or see every key (one new token)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # [batch, head, new, d_head] each
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            # New tensors, not written into the caller's: an earlier past stays valid.
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # [batch, head, all, d_head]
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # [batch, head, new, d_head]
        return self.c_proj(z.transpose(1, 2).reshape(B, T, C)), (k, v)

    def _explicit(self, q, k, v, cache: Cache, prefix: str) -> torch.Tensor:
        """Attention written out step by step, so every stage can be recorded and shown."""
        B, T, H, D = q.shape
        _record(cache, prefix + "hook_q", q)
        _record(cache, prefix + "hook_k", k)
        _record(cache, prefix + "hook_v", v)
        qh = q.transpose(1, 2).reshape(B * H, T, D)  # [batch * head, q, d_head]
        kh = k.transpose(1, 2).reshape(B * H, T, D)  # [batch * head, k, d_head]
        # A token never sees the ones after it: -inf above the diagonal, added in the same pass that
        # computes q.k / sqrt(d_head) (one kernel instead of three).
        future = torch.full((T, T), float("-inf"), device=q.device, dtype=q.dtype).triu(1)
        scores = torch.baddbmm(future.expand(B * H, T, T), qh, kh.transpose(1, 2), alpha=1 / math.sqrt(D))
        scores = scores.view(B, H, T, T)  # [batch, head, q, k]
        _record(cache, prefix + "hook_attn_scores", scores)
        pattern = scores.softmax(dim=-1)  # [batch, head, q, k], rows sum to 1
        _record(cache, prefix + "hook_pattern", pattern)
        z = (pattern @ v.transpose(1, 2)).transpose(1, 2)  # [batch, pos, head, d_head]
        _record(cache, prefix + "hook_z", z)
        return z


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, written as transformers writes it (NewGELUActivation), so GPT-2 folders' logits equal
    transformers' bit for bit. torch's fused tanh GELU ("gelu_pytorch_tanh") is the same curve to about 1e-7."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_pytorch_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")  # one fused kernel: ours, and what trains fastest


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, cfg.d_mlp)
        self.c_proj = Conv1D(cfg.d_mlp, cfg.n_embd)
        self.act = gelu_new if cfg.activation == "gelu_new" else gelu_pytorch_tanh  # as config.json names it

    def forward(self, x: torch.Tensor, cache: Cache | None = None, prefix: str = "") -> torch.Tensor:
        pre = self.c_fc(x)  # [batch, pos, d_mlp]
        _record(cache, prefix + "hook_pre", pre)
        post = self.act(pre)  # [batch, pos, d_mlp]
        _record(cache, prefix + "hook_post", post)
        return self.c_proj(post)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: Cache | None = None, prefix: str = "") -> torch.Tensor:
        _record(cache, prefix + "hook_resid_pre", x)  # [batch, pos, d_model]
        attn_out = self.drop(self.attn(self.ln_1(x), cache, prefix + "attn."))
        _record(cache, prefix + "hook_attn_out", attn_out)  # [batch, pos, d_model]
        x = x + attn_out
        _record(cache, prefix + "hook_resid_mid", x)  # [batch, pos, d_model]
        mlp_out = self.drop(self.mlp(self.ln_2(x), cache, prefix + "mlp."))
        _record(cache, prefix + "hook_mlp_out", mlp_out)  # [batch, pos, d_model]
        x = x + mlp_out
        _record(cache, prefix + "hook_resid_post", x)  # [batch, pos, d_model]
        return x

    def step(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None, mask: torch.Tensor | None,
             causal: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`forward` for new positions after cached ones (no dropout: decoding is inference)."""
        attn_out, kv = self.attn.step(self.ln_1(x), past, mask, causal)
        x = x + attn_out
        return x + self.mlp(self.ln_2(x)), kv


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as GPT-2
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # The parts pages read, under the names every model class offers (engine/model/hf.py has the same).
    @property
    def final_norm(self) -> nn.Module:
        return self.transformer.ln_f

    def token_embedding(self) -> torch.Tensor:
        return self.transformer.wte.weight  # [vocab, d_model]

    def position_embedding(self) -> torch.Tensor | None:
        return self.transformer.wpe.weight  # [block_size, d_model]

    def _run(self, idx: torch.Tensor, cache: Cache | None) -> torch.Tensor:
        return self.lm_head(self._final(idx, cache))  # [batch, pos, vocab]

    def _final(self, idx: torch.Tensor, cache: Cache | None) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"{T} tokens exceed the context of {self.config.block_size}")
        tr = self.transformer
        tok = tr.wte(idx)  # [batch, pos, d_model]
        _record(cache, "hook_embed", tok)
        pos = tr.wpe(torch.arange(T, device=idx.device))[None]  # [1, pos, d_model]
        _record(cache, "hook_pos_embed", pos.expand(B, T, -1))
        x = tr.drop(tok + pos)
        for i, block in enumerate(tr.h):
            x = block(x, cache, f"blocks.{i}.")
        x = tr.ln_f(x)
        _record(cache, "ln_final.hook_normalized", x)  # [batch, pos, d_model]
        return x

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits at every position and, given targets, the mean cross-entropy (ignore_index -1)."""
        logits = self._run(idx, None)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def final_hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The residual stream after the final layer norm, before the output layer: [batch, pos, d_model].
        `lm_head` of it is `forward`'s logits; a caller that needs logits at a few positions only (the
        completion tokens of preference tuning) applies it there and skips the rest of the vocabulary matmul."""
        return self._final(idx, None)

    @torch.no_grad()
    def decode_step(self, ids: torch.Tensor, past: Past | None = None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, Past]:
        """Logits [batch, new, vocab] for new token ids [batch, new], given `past` (opaque: whatever the previous
        call returned, None at the start). positions [batch, new]: position ids of the new tokens (default:
        continuing from past's length). key_mask [batch, past_len + new] bool: which keys are real tokens
        (False = left padding); default all real. Causal within the new tokens. Returns (logits, new_past).
        Never mutates the model; the past belongs to the caller (so two sessions decoding at once on one
        shared model don't interfere). Raises ValueError for positions outside [0, block_size).

        A padding query (key_mask False at its own position) still sees its own key, so no row of the mask is
        empty; its logits are meaningless and the caller ignores them, but they stay finite.
        """
        if ids.dim() != 2 or ids.size(1) == 0:
            raise ValueError(f"ids must be [batch, new] with at least one new token, got shape {tuple(ids.shape)}")
        B, T = ids.shape
        past_len = 0 if past is None else past[0][0].size(2)
        total = past_len + T
        block = self.config.block_size
        if positions is None:
            if total > block:
                raise ValueError(f"positions up to {total - 1} are past the context of {block} tokens")
            positions = torch.arange(past_len, total, device=ids.device).expand(B, T)
        elif positions.shape != ids.shape:
            raise ValueError(f"positions must have the shape of ids {tuple(ids.shape)}, got {tuple(positions.shape)}")
        elif int(positions.min()) < 0 or int(positions.max()) >= block:
            raise ValueError(f"positions must be in [0, {block}), got {int(positions.min())}..{int(positions.max())}: "
                             f"the model has no position embedding past its context of {block} tokens")
        mask, causal = self._decode_mask(B, T, past_len, key_mask, ids.device)
        tr = self.transformer
        x = tr.wte(ids) + tr.wpe(positions)  # [batch, new, d_model]
        new_past = []
        for i, layer in enumerate(tr.h):
            x, kv = layer.step(x, None if past is None else past[i], mask, causal)
            new_past.append(kv)
        return self.lm_head(tr.ln_f(x)), tuple(new_past)

    @staticmethod
    def _decode_mask(B: int, T: int, past_len: int, key_mask: torch.Tensor | None, device: torch.device
                     ) -> tuple[torch.Tensor | None, bool]:
        """decode_step's attention mask [batch or 1, 1, new, all] (True = may attend), or None and whether the
        fused kernel's own causal mask does the job (no padding: a prefill is plain causal, one new token sees
        every key)."""
        total = past_len + T
        if key_mask is None and (past_len == 0 or T == 1):
            return None, past_len == 0 and T > 1
        keys = torch.arange(total, device=device)  # [all]
        queries = torch.arange(past_len, total, device=device)  # [new]: each new token's place among the keys
        allowed = (keys[None] <= queries[:, None])[None]  # [1, new, all], causal
        if key_mask is not None:
            if key_mask.shape != (B, total):
                raise ValueError(f"key_mask must be [batch, past_len + new] = {(B, total)}, "
                                 f"got {tuple(key_mask.shape)}")
            allowed = (allowed & key_mask.bool()[:, None, :]) | (keys[None] == queries[:, None])[None]
        return allowed[:, None], False

    @torch.no_grad()
    def run_with_cache(self, idx: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Logits plus every named internal of this one call; the model itself stores nothing."""
        cache: Cache = {}
        logits = self._run(idx, cache)
        return logits, cache
