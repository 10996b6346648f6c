"""Hugging Face causal language models that are not GPT-2, run inside transformers and recorded into the same
Trace names as our GPT (TransformerLens names, engine/model/trace.py).

GPT-2 checkpoints load into our own `GPT` (engine/model/checkpoint.py). Other architectures run in
transformers itself: `HFModel` wraps the transformers model and gives it the surface the rest of the engine
uses (`config`, `forward`, `run_with_cache`, `final_hidden`, `decode_step`, `final_norm`, `lm_head`,
`token_embedding`, `position_embedding`).

How a forward pass is recorded without leaving state on a model that every session shares:
- Hooks are registered once, when the model loads, and never change. Each hook writes into the dict of the
  trace being run *in its own context* (a `ContextVar`): a session's thread that is not tracing finds None and
  the hook does nothing; two sessions tracing at once each write into their own dict.
- Attention runs through our own attention function, registered with transformers' AttentionInterface as
  "glassbox" (the eager computation, written out): it sees q and k after the rotary rotation and the keys and
  values before grouped-query heads are repeated, and records q, k, v (repeated to one per query head),
  the scaled and masked scores, the pattern and z. GPT-Neo has no AttentionInterface path; its eager
  attention module returns the pattern, and hooks on its projections give q, k, v and z.

Extra names a gated MLP records: `blocks.{L}.mlp.hook_pre` is the gate's input to the nonlinearity,
`blocks.{L}.mlp.hook_pre_linear` the up projection, `blocks.{L}.mlp.hook_post` their product (TransformerLens's
names). A rotary model's `hook_pos_embed` is zeros: it has no position table (its config says so).
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import GATED_MLP, GELU_MLP, LAYERNORM, LEARNED, RMSNORM, ROTARY, ArchConfig
from .checkpoint import CheckpointError, load_pretrained
from .facts import SUPPORTED, SourceError, read_model_config
from .tokenizer import check_tokenizer_patterns, load_tokenizer, missing_tokenizer

Cache = dict[str, torch.Tensor]
ATTN_IMPL = "glassbox"
# Where each family keeps its parts: the base model, embeddings, layers, and inside a layer.
_PARTS = {
    "gpt_neo": dict(base="transformer", embed="wte", pos="wpe", layers="h", attn="attn", mlp="mlp", norm="ln_f",
                    mlp_in="c_fc", mlp_out="c_proj"),
    "gpt_neox": dict(base="gpt_neox", embed="embed_in", layers="layers", attn="attention", mlp="mlp",
                     norm="final_layer_norm", mlp_in="dense_h_to_4h", mlp_out="dense_4h_to_h"),
    "llama": dict(base="model", embed="embed_tokens", layers="layers", attn="self_attn", mlp="mlp", norm="norm",
                  mlp_in="gate_proj", mlp_up="up_proj", mlp_out="down_proj"),
}
_PARTS["qwen2"] = _PARTS["llama"]

_CAPTURE: ContextVar[Cache | None] = ContextVar("glassbox_capture", default=None)


def _record(name: str, value: torch.Tensor) -> None:
    cache = _CAPTURE.get()
    if cache is not None:
        cache[name] = value.detach()


def _glassbox_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0, **kwargs
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """transformers' eager attention, step by step, recording each step when a trace is running.

    query [batch, head, q, d_head]; key, value [batch, kv_head, k, d_head], after rotation and the KV cache;
    attention_mask: transformers' additive eager mask [batch, 1, q, k] (causal, sliding window, padding).
    Returns (output [batch, q, head, d_head], pattern) as every attention function must.
    """
    groups = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(groups, dim=1) if groups > 1 else key  # [batch, head, k, d_head]
    v = value.repeat_interleave(groups, dim=1) if groups > 1 else value
    if attention_mask is None and query.shape[2] > 1:  # a causal mask is always due; build it if none came
        q_len, k_len = query.shape[2], k.shape[2]
        allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
        attention_mask = torch.zeros(q_len, k_len, dtype=query.dtype, device=query.device).masked_fill(
            ~allowed, torch.finfo(query.dtype).min)[None, None]
    if _CAPTURE.get() is None:  # not tracing: the fused kernel, same numbers to float rounding
        out = F.scaled_dot_product_attention(query, k, v, attn_mask=attention_mask, scale=scaling,
                                             dropout_p=dropout if module.training else 0.0)
        return out.transpose(1, 2).contiguous(), None
    scores = torch.matmul(query, k.transpose(2, 3)) * scaling  # [batch, head, q, k]
    if attention_mask is not None:
        scores = scores + attention_mask
    pattern = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(pattern, v)  # [batch, head, q, d_head]
    prefix = f"blocks.{module.layer_idx}.attn."
    _record(prefix + "hook_q", query.transpose(1, 2))  # [batch, pos, head, d_head], after rotation
    _record(prefix + "hook_k", k.transpose(1, 2))  # one key per query head: grouped heads repeat theirs
    _record(prefix + "hook_v", v.transpose(1, 2))
    if attention_mask is not None:  # masked means -inf in a Trace, as in ours, not transformers' finfo.min
        scores = scores.masked_fill(attention_mask <= torch.finfo(scores.dtype).min / 2, float("-inf"))
    _record(prefix + "hook_attn_scores", scores)
    _record(prefix + "hook_pattern", pattern)
    _record(prefix + "hook_z", out.transpose(1, 2))
    return out.transpose(1, 2).contiguous(), pattern


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    AttentionInterface.register(ATTN_IMPL, _glassbox_attention)
    AttentionMaskInterface.register(ATTN_IMPL, eager_mask)


def arch_config(family: str, c) -> ArchConfig:
    """The architecture facts of a transformers config object (a PretrainedConfig)."""
    if family == "gpt_neo":
        kinds = list(c.attention_layers)
        d_mlp = c.intermediate_size or 4 * c.hidden_size
        return ArchConfig(
            family=family, block_size=c.max_position_embeddings, vocab_size=c.vocab_size, n_layer=c.num_layers,
            n_head=c.num_heads, n_kv_head=c.num_heads, n_embd=c.hidden_size, d_head=c.hidden_size // c.num_heads,
            d_mlp=d_mlp, positions=LEARNED, norm=LAYERNORM, mlp=GELU_MLP, activation=c.activation_function,
            tied_embeddings=bool(getattr(c, "tie_word_embeddings", True)), attn_scale=1.0,
            local_window=c.window_size if "local" in kinds else None,
            local_layers=tuple(i for i, k in enumerate(kinds) if k == "local"),
            bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id)
    if family == "gpt_neox":
        d_head = c.hidden_size // c.num_attention_heads
        rope = getattr(c, "rope_parameters", None) or {}
        partial = rope.get("partial_rotary_factor", getattr(c, "rotary_pct", 1.0))
        return ArchConfig(
            family=family, block_size=c.max_position_embeddings, vocab_size=c.vocab_size,
            n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_kv_head=c.num_attention_heads,
            n_embd=c.hidden_size, d_head=d_head, d_mlp=c.intermediate_size, positions=ROTARY, norm=LAYERNORM,
            mlp=GELU_MLP, activation=c.hidden_act, parallel_residual=bool(c.use_parallel_residual),
            tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)), rotary_dims=int(d_head * partial),
            bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id)
    if family in ("llama", "qwen2"):
        d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        kinds = list(getattr(c, "layer_types", None) or [])
        sliding = [i for i, k in enumerate(kinds) if k == "sliding_attention"]
        if family == "qwen2" and not getattr(c, "use_sliding_window", False):
            sliding = []
        eos = c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id
        return ArchConfig(
            family=family, block_size=c.max_position_embeddings, vocab_size=c.vocab_size,
            n_layer=c.num_hidden_layers, n_head=c.num_attention_heads,
            n_kv_head=getattr(c, "num_key_value_heads", None) or c.num_attention_heads, n_embd=c.hidden_size,
            d_head=d_head, d_mlp=c.intermediate_size, positions=ROTARY, norm=RMSNORM, mlp=GATED_MLP,
            activation=c.hidden_act, tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)),
            local_window=getattr(c, "sliding_window", None) if sliding else None, local_layers=tuple(sliding),
            rotary_dims=d_head, bos_token_id=c.bos_token_id, eos_token_id=eos)
    raise CheckpointError(f"no recorder for the {family} family")


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    return x.view(*x.shape[:-1], n_head, x.shape[-1] // n_head)  # [batch, pos, head, d_head]


class HFModel(nn.Module):
    """A transformers causal LM with our GPT's surface. Read-only once loaded: nothing here mutates it."""

    def __init__(self, hf: nn.Module, family: str):
        super().__init__()
        self.hf = hf
        self.family = family
        self.config = arch_config(family, hf.config)
        self._parts = _PARTS[family]
        self._base = getattr(hf, self._parts["base"])
        self._install_hooks()

    # -- the parts pages read ------------------------------------------------------------------------------------

    @property
    def lm_head(self) -> nn.Module:
        return self.hf.get_output_embeddings()

    @property
    def final_norm(self) -> nn.Module:
        return getattr(self._base, self._parts["norm"])

    def token_embedding(self) -> torch.Tensor:
        return self.hf.get_input_embeddings().weight  # [vocab, d_model]

    def position_embedding(self) -> torch.Tensor | None:
        pos = self._parts.get("pos")
        return getattr(self._base, pos).weight if pos else None  # [block_size, d_model], or None (rotary)

    def layers(self) -> nn.ModuleList:
        return getattr(self._base, self._parts["layers"])

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- recording --------------------------------------------------------------------------------------------

    def _install_hooks(self) -> None:
        parts, H = self._parts, self.config.n_head

        def out_hook(name: str, pick: Callable = _first):
            return lambda _m, _args, out: _record(name, pick(out))

        def in_hook(name: str):
            return lambda _m, args: _record(name, args[0])

        getattr(self._base, parts["embed"]).register_forward_hook(out_hook("hook_embed"))
        if "pos" in parts:
            getattr(self._base, parts["pos"]).register_forward_hook(out_hook("hook_pos_embed"))
        self.final_norm.register_forward_hook(out_hook("ln_final.hook_normalized"))
        for i, layer in enumerate(self.layers()):
            p = f"blocks.{i}."

            def resid_pre(_m, args, kwargs, name=p + "hook_resid_pre"):
                _record(name, args[0] if args else kwargs["hidden_states"])

            layer.register_forward_pre_hook(resid_pre, with_kwargs=True)
            layer.register_forward_hook(out_hook(p + "hook_resid_post"))
            attn, mlp = getattr(layer, parts["attn"]), getattr(layer, parts["mlp"])
            attn.register_forward_hook(out_hook(p + "hook_attn_out"))
            mlp.register_forward_hook(out_hook(p + "hook_mlp_out"))
            getattr(mlp, parts["mlp_in"]).register_forward_hook(out_hook(p + "mlp.hook_pre"))
            if "mlp_up" in parts:
                getattr(mlp, parts["mlp_up"]).register_forward_hook(out_hook(p + "mlp.hook_pre_linear"))
            getattr(mlp, parts["mlp_out"]).register_forward_pre_hook(in_hook(p + "mlp.hook_post"))
            if self.family == "gpt_neo":  # eager attention of its own: hook its projections and its pattern
                inner = attn.attention
                for proj, hook in (("q_proj", "hook_q"), ("k_proj", "hook_k"), ("v_proj", "hook_v")):
                    getattr(inner, proj).register_forward_hook(
                        out_hook(p + "attn." + hook, lambda t, H=H: _split_heads(t, H)))
                inner.out_proj.register_forward_pre_hook(
                    lambda _m, args, name=p + "attn.hook_z", H=H: _record(name, _split_heads(args[0], H)))
                inner.register_forward_hook(out_hook(p + "attn.hook_pattern", lambda out: out[1]))

    def _finish(self, cache: Cache, T: int) -> Cache:
        """Names computed from recorded ones: resid_mid, GPT-Neo's scores, a rotary model's zero positions."""
        cfg = self.config
        if "hook_pos_embed" not in cache:
            emb = cache["hook_embed"]
            cache["hook_pos_embed"] = torch.zeros_like(emb)
        else:
            cache["hook_pos_embed"] = cache["hook_pos_embed"].expand_as(cache["hook_embed"])
        for i in range(cfg.n_layer):
            p = f"blocks.{i}."
            cache[p + "hook_resid_mid"] = cache[p + "hook_resid_pre"] + cache[p + "hook_attn_out"]
            if p + "attn.hook_attn_scores" not in cache:  # GPT-Neo: q.k unscaled, causal (and local) mask
                q, k = cache[p + "attn.hook_q"], cache[p + "attn.hook_k"]  # [batch, pos, head, d_head]
                scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) * cfg.scale
                allowed = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
                if i in cfg.local_layers:
                    allowed &= ~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(-cfg.local_window)
                cache[p + "attn.hook_attn_scores"] = scores.masked_fill(~allowed, float("-inf"))
        return cache

    # -- the surface the engine uses --------------------------------------------------------------------------

    def _check_length(self, T: int) -> None:
        if T > self.config.block_size:
            raise ValueError(f"{T} tokens exceed the context of {self.config.block_size}")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check_length(idx.shape[1])
        logits = self.hf(input_ids=idx, use_cache=False).logits
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def final_hidden(self, idx: torch.Tensor) -> torch.Tensor:
        self._check_length(idx.shape[1])
        return self._base(input_ids=idx, use_cache=False).last_hidden_state

    @torch.no_grad()
    def run_with_cache(self, idx: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Logits plus every named internal of this one call, recorded into a dict made for it."""
        self._check_length(idx.shape[1])
        cache: Cache = {}
        token = _CAPTURE.set(cache)
        try:
            logits = self.hf(input_ids=idx, use_cache=False).logits
        finally:
            _CAPTURE.reset(token)
        return logits, self._finish(cache, idx.shape[1])

    @torch.no_grad()
    def decode_step(self, ids: torch.Tensor, past=None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, object]:
        """Logits [batch, new, vocab] for new tokens, with transformers' own key/value cache as `past`."""
        done = 0 if past is None else past.get_seq_length()
        if positions is None:
            positions = torch.arange(done, done + ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
        if int(positions.max()) >= self.config.block_size:
            raise ValueError(f"position {int(positions.max())} is past the context of {self.config.block_size}")
        out = self.hf(input_ids=ids, cache=past, position_ids=positions, use_cache=True,
                      attention_mask=None if key_mask is None else key_mask.long())
        return out.logits, out.cache


def family_of(folder: str | Path) -> str:
    """The family of a folder's model (config.json read with facts.py's guards), or CheckpointError naming what it
    is and what is supported. Refuses custom code before anything else."""
    try:
        data = read_model_config(folder)
    except SourceError as e:
        raise CheckpointError(str(e)) from None
    if data.get("auto_map"):
        raise CheckpointError("this model needs its own Python code (config.json has auto_map); Glassbox never runs "
                              "code that comes with a model")
    archs = data.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if arch is None and data.get("model_type") == "gpt2":
        arch = "GPT2LMHeadModel"  # our own folders and old GPT-2 ones may omit architectures
    if arch not in SUPPORTED:
        raise CheckpointError(f"the architecture {str(arch)[:60]} is not supported (Glassbox runs "
                              f"{', '.join(SUPPORTED)})")
    return SUPPORTED[arch]


def load_hf(folder: str | Path, device: torch.device | str = "cpu") -> tuple[HFModel, object]:
    """Load a non-GPT-2 model folder into transformers (safetensors only, no remote code), wrapped."""
    from transformers import AutoConfig, AutoModelForCausalLM
    folder = Path(folder)
    family = family_of(folder)
    if family == "gpt2":
        raise CheckpointError("GPT-2 folders load into Glassbox's own GPT: use load_model")
    if not any(folder.glob("*.safetensors")):
        have = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".h5"))
        raise CheckpointError("the folder has no safetensors weights" + (f" (it has {', '.join(have)}: pickles, which "
                              "Glassbox never loads)" if have else ""))
    if (why := missing_tokenizer((p.name for p in folder.iterdir()), family)) is not None:
        raise CheckpointError(why)
    _register_attention()
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # "Loading weights" bars belong in a terminal, not a server's log
    impl = "eager" if family == "gpt_neo" else ATTN_IMPL
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        hf = AutoModelForCausalLM.from_pretrained(
            str(folder), config=config, local_files_only=True, trust_remote_code=False, use_safetensors=True,
            attn_implementation=impl, dtype=torch.float32)
    except CheckpointError:
        raise
    except Exception as e:  # transformers raises many types for a broken folder; the user gets one line
        raise CheckpointError(f"transformers could not load the model: {str(e).splitlines()[0][:300]}") from None
    hf.to(device).eval()
    for p in hf.parameters():
        p.requires_grad_(False)  # shared and read-only: no autograd bookkeeping on any session's forward
    try:
        tokenizer = load_tokenizer(folder)
    except Exception as e:
        raise CheckpointError(f"the tokenizer files could not be loaded: {e}") from None
    return HFModel(hf, family), tokenizer


MAX_TOKENIZER_BYTES = 64 << 20  # Qwen2.5's tokenizer.json is 7 MB, Llama 3's 9 MB


def _check_tokenizer(folder: Path) -> None:
    path = folder / "tokenizer.json"
    if not path.is_file():
        return  # the loaders say it is missing
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise CheckpointError(f"tokenizer.json is larger than {MAX_TOKENIZER_BYTES >> 20} MB")
    try:
        check_tokenizer_patterns(path.read_bytes())
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def load_model(folder: str | Path, device: torch.device | str = "cpu", max_bytes: int | None = None):
    """(model, tokenizer) from any supported folder: GPT-2 family on our GPT, the rest in transformers.
    The tokenizer's splitting expressions are checked first (a folder may come from the Hub)."""
    folder = Path(folder)
    _check_tokenizer(folder)
    if family_of(folder) == "gpt2":
        return load_pretrained(folder, device, max_bytes=max_bytes)
    return load_hf(folder, device)
