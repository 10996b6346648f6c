"""A GPT with the GPT-2 architecture and GPT-2 / Hugging Face parameter names.

Three entry points share one set of weights:
- `GPT.forward(idx, targets=None) -> (logits, loss)` for training, on the fused attention kernel;
- `GPT.run_with_cache(idx) -> (logits, cache)` for looking inside, on the explicit attention path,
  recording every internal into a dict made for that call (see engine/model/trace.py for the names);
- `GPT.decode_step(ids, past, positions, key_mask) -> (logits, past)` for generating, on the fused kernel
  with a key/value cache that belongs to the caller (the contract every model class offers generation).
`run_with_cache`, `final_hidden` and `decode_step` also take `edits` (engine/model/hooks.py): activations to
change in that one call (a patch, an ablation, a steering vector), passed down the blocks with it.

Linear layers store their weight as [in, out] like GPT-2's `Conv1D`, so a GPT-2 state dict loads key by
key with no transposes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .hooks import Edits, Hooks, check_edits, start_layer

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


def _hook(hooks: Hooks | None, name: str, value: torch.Tensor) -> torch.Tensor:
    """The value a pass goes on with at `name`: as computed when nothing is asked of it."""
    return value if hooks is None else hooks(name, value)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.attn_dropout

    def forward(self, x: torch.Tensor, hooks: Hooks | None = None, prefix: str = "") -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        k = k.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        v = v.view(B, T, self.n_head, self.d_head)  # [batch, pos, head, d_head]
        if hooks is None or hooks.record is None:
            # Fast path for training, plain inference and edits alone: fused kernel, nothing recorded.
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                dropout_p=self.dropout if self.training else 0.0,
            )
            z = _hook(hooks, prefix + "hook_z", y.transpose(1, 2))  # [batch, pos, head, d_head]
        else:
            z = self._explicit(q, k, v, hooks, prefix)
        return self.c_proj(z.reshape(B, T, C))

    def step(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None, mask: torch.Tensor | None,
             causal: bool, hooks: Hooks | None = None, prefix: str = ""
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention of new positions x [batch, new, d_model] over the cached keys/values before them and
        themselves. mask [batch or 1, 1, new, all] bool (True = may attend), or None with `causal` saying
        whether the new positions need the plain causal mask (a prefill) or see every key (one new token).
        `hooks` may edit z (nothing else of attention is recorded while decoding)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # [batch, head, new, d_head] each
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            # New tensors, not written into the caller's: an earlier past stays valid.
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # [batch, head, all, d_head]
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # [batch, head, new, d_head]
        z = _hook(hooks, prefix + "hook_z", z.transpose(1, 2))  # [batch, new, head, d_head]
        return self.c_proj(z.reshape(B, T, C)), (k, v)

    def _explicit(self, q, k, v, hooks: Hooks, prefix: str) -> torch.Tensor:
        """Attention written out step by step, so every stage can be recorded and shown."""
        B, T, H, D = q.shape
        q = _hook(hooks, prefix + "hook_q", q)
        k = _hook(hooks, prefix + "hook_k", k)
        v = _hook(hooks, prefix + "hook_v", v)
        qh = q.transpose(1, 2).reshape(B * H, T, D)  # [batch * head, q, d_head]
        kh = k.transpose(1, 2).reshape(B * H, T, D)  # [batch * head, k, d_head]
        # A token never sees the ones after it: -inf above the diagonal, added in the same pass that
        # computes q.k / sqrt(d_head) (one kernel instead of three).
        future = torch.full((T, T), float("-inf"), device=q.device, dtype=q.dtype).triu(1)
        scores = torch.baddbmm(future.expand(B * H, T, T), qh, kh.transpose(1, 2), alpha=1 / math.sqrt(D))
        scores = scores.view(B, H, T, T)  # [batch, head, q, k]
        _hook(hooks, prefix + "hook_attn_scores", scores)
        pattern = scores.softmax(dim=-1)  # [batch, head, q, k], rows sum to 1
        _hook(hooks, prefix + "hook_pattern", pattern)
        z = (pattern @ v.transpose(1, 2)).transpose(1, 2)  # [batch, pos, head, d_head]
        return _hook(hooks, prefix + "hook_z", z)


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

    def forward(self, x: torch.Tensor, hooks: Hooks | None = None, prefix: str = "") -> torch.Tensor:
        pre = _hook(hooks, prefix + "hook_pre", self.c_fc(x))  # [batch, pos, d_mlp]
        post = _hook(hooks, prefix + "hook_post", self.act(pre))  # [batch, pos, d_mlp]
        return self.c_proj(post)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, hooks: Hooks | None = None, prefix: str = "") -> torch.Tensor:
        x = _hook(hooks, prefix + "hook_resid_pre", x)  # [batch, pos, d_model]
        attn_out = _hook(hooks, prefix + "hook_attn_out", self.drop(self.attn(self.ln_1(x), hooks, prefix + "attn.")))
        x = _hook(hooks, prefix + "hook_resid_mid", x + attn_out)  # [batch, pos, d_model]
        mlp_out = _hook(hooks, prefix + "hook_mlp_out", self.drop(self.mlp(self.ln_2(x), hooks, prefix + "mlp.")))
        return _hook(hooks, prefix + "hook_resid_post", x + mlp_out)  # [batch, pos, d_model]

    def step(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None, mask: torch.Tensor | None,
             causal: bool, hooks: Hooks | None = None, prefix: str = "", last_only: bool = False
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`forward` for new positions after cached ones (no dropout: decoding is inference), with `hooks`'
        edits (nothing is recorded while decoding). `last_only` (the last layer, when only the last position's
        logits are wanted): after attention, which every position's keys and values feed, the MLP runs for
        the last position only, so its edits see that one position."""
        x = _hook(hooks, prefix + "hook_resid_pre", x)
        attn_out, kv = self.attn.step(self.ln_1(x), past, mask, causal, hooks, prefix + "attn.")
        x = x + _hook(hooks, prefix + "hook_attn_out", attn_out)
        if last_only:
            x = x[:, -1:]
        x = x + _hook(hooks, prefix + "hook_mlp_out", self.mlp(self.ln_2(x), hooks, prefix + "mlp."))
        return _hook(hooks, prefix + "hook_resid_post", x), kv


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

    def _run(self, idx: torch.Tensor, hooks: Hooks | None) -> torch.Tensor:
        return self.lm_head(self._final(idx, hooks))  # [batch, pos, vocab]

    def _final(self, idx: torch.Tensor, hooks: Hooks | None, skip: bool = False) -> torch.Tensor:
        """After the final norm. `skip`: start at the last layer whose incoming residual stream a Replace edit
        gives whole (engine/model/hooks.py), without computing what only feeds it."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"{T} tokens exceed the context of {self.config.block_size}")
        tr = self.transformer
        start, x = start_layer(hooks.edits if skip and hooks else None, self.config.n_layer)
        if start == 0:
            tok = _hook(hooks, "hook_embed", tr.wte(idx))  # [batch, pos, d_model]
            pos = tr.wpe(torch.arange(T, device=idx.device))[None]  # [1, pos, d_model]
            _hook(hooks, "hook_pos_embed", pos.expand(B, T, -1))
            x = tr.drop(tok + pos)
        for i in range(start, len(tr.h)):
            x = tr.h[i](x, hooks, f"blocks.{i}.")
        return _hook(hooks, "ln_final.hook_normalized", tr.ln_f(x))  # [batch, pos, d_model]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits at every position and, given targets, the mean cross-entropy (ignore_index -1)."""
        logits = self._run(idx, None)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def final_hidden(self, idx: torch.Tensor, edits: Edits | None = None) -> torch.Tensor:
        """The residual stream after the final layer norm, before the output layer: [batch, pos, d_model].
        `lm_head` of it is `forward`'s logits; a caller that needs logits at a few positions only (the
        completion tokens of preference tuning) applies it there and skips the rest of the vocabulary matmul.
        `edits`: activations changed in this call (engine/model/hooks.py); gradients flow as the caller's
        grad mode says."""
        check_edits(edits, self.config.n_layer)
        return self._final(idx, Hooks(edits) if edits else None, skip=True)

    @torch.no_grad()
    def decode_step(self, ids: torch.Tensor, past: Past | None = None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None, edits: Edits | None = None, last_only: bool = False
                    ) -> tuple[torch.Tensor, Past]:
        """Logits [batch, new, vocab] for new token ids [batch, new], given `past` (opaque: whatever the previous
        call returned, None at the start). positions [batch, new]: position ids of the new tokens (default:
        continuing from past's length). key_mask [batch, past_len + new] bool: which keys are real tokens
        (False = left padding); default all real. Causal within the new tokens. Returns (logits, new_past).
        Never mutates the model; the past belongs to the caller (so two sessions decoding at once on one
        shared model don't interfere). Raises ValueError for positions outside [0, block_size).
        `edits` change activations of the new positions (engine/model/hooks.py); `last_only` returns the
        logits of the last new position only ([batch, 1, vocab]), skipping the vocabulary matmul and the last
        layer's MLP for the rest (so an edit of that MLP or its output sees the last position only). A Replace of
        a layer's input starts the pass there (hooks.py); such a call returns None for its past.

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
        check_edits(edits, self.config.n_layer)
        hooks = Hooks(edits) if edits else None
        tr = self.transformer
        start, x = start_layer(edits, self.config.n_layer)  # a Replace of a layer's input: start there
        if start == 0:
            x = _hook(hooks, "hook_embed", tr.wte(ids)) + tr.wpe(positions)  # [batch, new, d_model]
        new_past = []
        for i in range(start, len(tr.h)):
            x, kv = tr.h[i].step(x, None if past is None else past[i], mask, causal, hooks, f"blocks.{i}.",
                                 last_only=last_only and i == len(tr.h) - 1)
            new_past.append(kv)
        x = tr.ln_f(x[:, -1:] if last_only else x)
        return self.lm_head(x), (tuple(new_past) if start == 0 else None)

    @staticmethod
    def repeat_past(past: Past | None, n: int) -> Past | None:
        """`n` rows of a one-row past, for decoding n continuations of one prefix at once: views of the same
        keys and values (decode_step never writes into a past, so they stay valid)."""
        if past is None:
            return None
        if past[0][0].size(0) != 1:
            raise ValueError("repeat_past takes the past of one row")
        return tuple((k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in past)

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
    def run_with_cache(self, idx: torch.Tensor, edits: Edits | None = None) -> tuple[torch.Tensor, Cache]:
        """Logits plus every named internal of this one call; the model itself stores nothing. `edits`:
        activations changed in this call (engine/model/hooks.py), recorded as changed."""
        check_edits(edits, self.config.n_layer)
        cache: Cache = {}
        logits = self._run(idx, Hooks(edits, cache))
        return logits, cache
