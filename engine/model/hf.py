"""Hugging Face causal language models that are not GPT-2, run inside transformers and recorded into the same
Trace names as our GPT (TransformerLens names, engine/model/trace.py).

GPT-2 checkpoints load into our own `GPT` (engine/model/checkpoint.py). Other architectures run in
transformers itself: `HFModel` wraps the transformers model and gives it the surface the rest of the engine
uses (`config`, `forward`, `run_with_cache`, `final_hidden`, `decode_step`, `final_norm`, `lm_head`,
`token_embedding`, `position_embedding`).

How a forward pass is recorded (and changed) without leaving state on a model that every session shares:
- Hooks are registered once, when the model loads, and never change. Each hook asks the `Hooks` of the call
  being run *in its own context* (a `ContextVar`; engine/model/hooks.py) what to do: record into that call's
  dict, replace the value with that call's edit, or, in a session's thread that asked for neither, nothing.
  Two sessions tracing or patching at once each reach their own.
- Attention runs through our own attention function, registered with transformers' AttentionInterface as
  "glassbox" (the eager computation, written out): it sees q and k after the rotary rotation and the keys and
  values before grouped-query heads are repeated, and records q, k, v (repeated to one per query head),
  the scaled and masked scores, the pattern and z. A family whose attention has no AttentionInterface path
  (GPT-Neo) hooks its own attention module and completes the trace after the pass (its `Family` says how).

Where each family keeps its parts, what its config says and its quirks live in engine/model/families/, one
file per family; this module reads them from there and knows no family by name.

Extra names a gated MLP records: `blocks.{L}.mlp.hook_pre` is the gate's input to the nonlinearity,
`blocks.{L}.mlp.hook_pre_linear` the up projection, `blocks.{L}.mlp.hook_post` their product (TransformerLens's
names). A rotary model's `hook_pos_embed` is zeros: it has no position table (its config says so).
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import load_pretrained
from .families import FAMILIES, Family, family_for
from .families.base import GLASSBOX_ATTENTION
from .files import MAX_TOKENIZER_BYTES, TOKENIZER, CheckpointError, read_capped, read_config_json
from .hooks import Edits, Hooks, check_edits
from .tokenizer import check_tokenizer_patterns, load_tokenizer, missing_tokenizer

Cache = dict[str, torch.Tensor]
ATTN_IMPL = GLASSBOX_ATTENTION

_CAPTURE: ContextVar[Hooks | None] = ContextVar("glassbox_capture", default=None)


def _record(name: str, value: torch.Tensor) -> torch.Tensor:
    """The value the pass goes on with at `name`: edited and recorded as this context's call asks."""
    hooks = _CAPTURE.get()
    return value if hooks is None else hooks(name, value)


def _recording() -> bool:
    hooks = _CAPTURE.get()
    return hooks is not None and hooks.record is not None


@contextmanager
def _calling(hooks: Hooks | None) -> Iterator[None]:
    """Run the body with `hooks` as this context's call (nothing, for None)."""
    token = _CAPTURE.set(hooks)
    try:
        yield
    finally:
        _CAPTURE.reset(token)


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
    prefix = f"blocks.{module.layer_idx}.attn."
    if not _recording():  # not tracing: the fused kernel, same numbers to float rounding (z may be edited)
        out = F.scaled_dot_product_attention(query, k, v, attn_mask=attention_mask, scale=scaling,
                                             dropout_p=dropout if module.training else 0.0)
        return _record(prefix + "hook_z", out.transpose(1, 2)).contiguous(), None
    scores = torch.matmul(query, k.transpose(2, 3)) * scaling  # [batch, head, q, k]
    if attention_mask is not None:
        scores = scores + attention_mask
    pattern = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(pattern, v)  # [batch, head, q, d_head]
    _record(prefix + "hook_q", query.transpose(1, 2))  # [batch, pos, head, d_head], after rotation
    _record(prefix + "hook_k", k.transpose(1, 2))  # one key per query head: grouped heads repeat theirs
    _record(prefix + "hook_v", v.transpose(1, 2))
    if attention_mask is not None:  # masked means -inf in a Trace, as in ours, not transformers' finfo.min
        scores = scores.masked_fill(attention_mask <= torch.finfo(scores.dtype).min / 2, float("-inf"))
    _record(prefix + "hook_attn_scores", scores)
    _record(prefix + "hook_pattern", pattern)
    return _record(prefix + "hook_z", out.transpose(1, 2)).contiguous(), pattern


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    AttentionInterface.register(ATTN_IMPL, _glassbox_attention)
    AttentionMaskInterface.register(ATTN_IMPL, eager_mask)


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


class HFModel(nn.Module):
    """A transformers causal LM with our GPT's surface. Read-only once loaded: nothing here mutates it."""

    def __init__(self, hf: nn.Module, family: Family | str):
        super().__init__()
        spec = FAMILIES[family] if isinstance(family, str) else family
        if spec.native:
            raise CheckpointError(f"{spec.name} models load into Glassbox's own GPT, not into transformers")
        self.hf = hf
        self.family = spec.key  # the config's family, as every model's
        self._spec, self._parts = spec, spec.parts
        self.config = spec.arch(hf.config)
        self._base = getattr(hf, self._parts.base)
        self._install_hooks()

    # -- the parts pages read ------------------------------------------------------------------------------------

    @property
    def lm_head(self) -> nn.Module:
        return self.hf.get_output_embeddings()

    @property
    def final_norm(self) -> nn.Module:
        return getattr(self._base, self._parts.norm)

    def token_embedding(self) -> torch.Tensor:
        return self.hf.get_input_embeddings().weight  # [vocab, d_model]

    def position_embedding(self) -> torch.Tensor | None:
        pos = self._parts.pos
        return getattr(self._base, pos).weight if pos else None  # [block_size, d_model], or None (rotary)

    def layers(self) -> nn.ModuleList:
        return getattr(self._base, self._parts.layers)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- recording --------------------------------------------------------------------------------------------

    def _install_hooks(self) -> None:
        parts, H = self._parts, self.config.n_head

        def out_hook(name: str):
            def hook(_m, _args, out):  # a returned value replaces the module's output (only when edited)
                value = _first(out)
                new = _record(name, value)
                if new is value:
                    return None
                return (new, *out[1:]) if isinstance(out, (tuple, list)) else new
            return hook

        def in_hook(name: str):
            def hook(_m, args):
                new = _record(name, args[0])
                return None if new is args[0] else (new, *args[1:])
            return hook

        getattr(self._base, parts.embed).register_forward_hook(out_hook("hook_embed"))
        if parts.pos is not None:
            getattr(self._base, parts.pos).register_forward_hook(out_hook("hook_pos_embed"))
        self.final_norm.register_forward_hook(out_hook("ln_final.hook_normalized"))
        for i, layer in enumerate(self.layers()):
            p = f"blocks.{i}."

            def resid_pre(_m, args, kwargs, name=p + "hook_resid_pre"):
                value = args[0] if args else kwargs["hidden_states"]
                new = _record(name, value)
                if new is value:
                    return None
                return ((new, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": new})

            layer.register_forward_pre_hook(resid_pre, with_kwargs=True)
            layer.register_forward_hook(out_hook(p + "hook_resid_post"))
            attn, mlp = getattr(layer, parts.attn), getattr(layer, parts.mlp)
            attn.register_forward_hook(out_hook(p + "hook_attn_out"))
            mlp.register_forward_hook(out_hook(p + "hook_mlp_out"))
            getattr(mlp, parts.mlp_in).register_forward_hook(out_hook(p + "mlp.hook_pre"))
            if parts.mlp_up is not None:
                getattr(mlp, parts.mlp_up).register_forward_hook(out_hook(p + "mlp.hook_pre_linear"))
            getattr(mlp, parts.mlp_out).register_forward_pre_hook(in_hook(p + "mlp.hook_post"))
            if self._spec.hook_attention is not None:  # attention of its own, not through AttentionInterface
                self._spec.hook_attention(attn, p + "attn.", H, _record)

    def _finish(self, cache: Cache, T: int) -> Cache:
        """Names computed from recorded ones: resid_mid, a rotary model's zero positions, and what the family's
        own attention did not record (GPT-Neo's scores)."""
        cfg = self.config
        if "hook_pos_embed" not in cache:
            emb = cache["hook_embed"]
            cache["hook_pos_embed"] = torch.zeros_like(emb)
        else:
            cache["hook_pos_embed"] = cache["hook_pos_embed"].expand_as(cache["hook_embed"])
        for i in range(cfg.n_layer):
            p = f"blocks.{i}."
            cache[p + "hook_resid_mid"] = cache[p + "hook_resid_pre"] + cache[p + "hook_attn_out"]
        if self._spec.complete is not None:
            self._spec.complete(cache, cfg, T)
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

    def _hooks(self, edits: Edits | None, record: Cache | None = None) -> Hooks | None:
        check_edits(edits, self.config.n_layer)
        return Hooks(edits, record) if edits or record is not None else None

    def final_hidden(self, idx: torch.Tensor, edits: Edits | None = None) -> torch.Tensor:
        """After the final norm: [batch, pos, d_model]; `edits` change activations in this call only."""
        self._check_length(idx.shape[1])
        with _calling(self._hooks(edits)):
            return self._base(input_ids=idx, use_cache=False).last_hidden_state

    @torch.no_grad()
    def run_with_cache(self, idx: torch.Tensor, edits: Edits | None = None) -> tuple[torch.Tensor, Cache]:
        """Logits plus every named internal of this one call, recorded into a dict made for it (after `edits`)."""
        self._check_length(idx.shape[1])
        cache: Cache = {}
        with _calling(self._hooks(edits, cache)):
            logits = self.hf(input_ids=idx, use_cache=False).logits
        return logits, self._finish(cache, idx.shape[1])

    @torch.no_grad()
    def decode_step(self, ids: torch.Tensor, past=None, positions: torch.Tensor | None = None,
                    key_mask: torch.Tensor | None = None, edits: Edits | None = None, last_only: bool = False
                    ) -> tuple[torch.Tensor, object]:
        """Logits [batch, new, vocab] for new tokens, with transformers' own key/value cache as `past` (which
        transformers extends in place); `edits` and `last_only` as our GPT's."""
        done = 0 if past is None else past.get_seq_length()
        if positions is None:
            positions = torch.arange(done, done + ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
        if int(positions.max()) >= self.config.block_size:
            raise ValueError(f"position {int(positions.max())} is past the context of {self.config.block_size}")
        with _calling(self._hooks(edits)):
            out = self.hf(input_ids=ids, cache=past, position_ids=positions, use_cache=True,
                          attention_mask=None if key_mask is None else key_mask.long(),
                          logits_to_keep=1 if last_only else 0)
        return out.logits, out.cache


    @staticmethod
    def repeat_past(past, n: int):
        """`n` rows of a one-row past, as a new cache: transformers extends a cache in place, so the one given
        must stay as it is for the next caller."""
        if past is None:
            return None
        rows = {layer.keys.shape[0] for layer in past.layers if getattr(layer, "keys", None) is not None}
        if rows - {1}:
            raise ValueError("repeat_past takes the past of one row")
        out = copy.deepcopy(past)
        out.batch_repeat_interleave(n)
        return out


def load_hf(folder: str | Path, device: torch.device | str = "cpu", family: Family | None = None,
            config: dict | None = None) -> tuple[HFModel, object]:
    """Load a model folder of a family that runs in transformers (safetensors only, no remote code), wrapped.
    `config`, `family`: its config.json and family, when the caller has already read and decided them."""
    folder = Path(folder)
    config = read_config_json(folder) if config is None else config
    family = family or family_for(config, CheckpointError, untyped_gpt2=True)
    if family.native:
        raise CheckpointError(f"{family.name} folders load into Glassbox's own GPT: use load_model")
    if not any(folder.glob("*.safetensors")):
        have = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".h5"))
        raise CheckpointError("the folder has no safetensors weights" + (f" (it has {', '.join(have)}: pickles, which "
                              "Glassbox never loads)" if have else ""))
    if (why := missing_tokenizer((p.name for p in folder.iterdir()), family.key)) is not None:
        raise CheckpointError(why)
    _register_attention()
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # "Loading weights" bars belong in a terminal, not a server's log
    try:
        hf_config = family.transformers_config(config)  # from the dict read once: config.json is not read again
        hf = AutoModelForCausalLM.from_pretrained(
            str(folder), config=hf_config, local_files_only=True, trust_remote_code=False, use_safetensors=True,
            attn_implementation=family.attention, dtype=torch.float32)
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


def _check_tokenizer(folder: Path) -> None:
    """A tokenizer.json that is there must be of a sane size and split text without backtracking for minutes."""
    if not (folder / TOKENIZER).is_file():
        return  # the loaders say it is missing
    try:
        check_tokenizer_patterns(read_capped(folder / TOKENIZER, MAX_TOKENIZER_BYTES))
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def load_model(folder: str | Path, device: torch.device | str = "cpu", max_bytes: int | None = None):
    """(model, tokenizer) from any supported folder: GPT-2 family on our GPT, the rest in transformers. Reads
    config.json once and lets the family table decide; checks the tokenizer's splitting expressions first (a
    folder may come from the Hub)."""
    folder = Path(folder)
    _check_tokenizer(folder)
    config = read_config_json(folder)
    family = family_for(config, CheckpointError, untyped_gpt2=True)
    if family.native:
        return load_pretrained(folder, device, max_bytes=max_bytes, config=config)
    return load_hf(folder, device, family, config)
