"""Checkpoints as Hugging Face-compatible folders: `config.json` (a GPT2Config), `model.safetensors`,
tokenizer files. `transformers.AutoModelForCausalLM.from_pretrained(folder)` loads what we save, and we load
GPT-2 folders saved by transformers. Loading never unpickles: safetensors and JSON only, with checks on
sizes, names and shapes before any tensor is read, so a broken or hostile folder gets a clear refusal.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import GPTConfig
from .files import CONFIG, WEIGHTS, CheckpointError, read_config_json
from .gpt import GPT
from .tokenizer import load_tokenizer, missing_tokenizer

__all__ = ["CONFIG", "WEIGHTS", "CheckpointError", "load_pretrained", "read_config", "save_pretrained", "swap_in"]
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers in old GPT-2 files


def save_pretrained(model: GPT, tokenizer, folder: str | Path,
                    extra_files: dict[str, str | bytes] | None = None) -> Path:
    """Write the checkpoint to a temporary folder beside `folder`, then swap it in (never half-written)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        cfg = model.config.to_hf_dict() | {"torch_dtype": "float32", "n_ctx": model.config.block_size}
        (tmp / CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
        # lm_head.weight is tied to wte: saved once, as transformers does.
        state = {k: v.detach().to("cpu", torch.float32).contiguous()
                 for k, v in model.state_dict().items() if k != "lm_head.weight"}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def swap_in(tmp: Path, dest: Path) -> None:
    """Rename a complete folder into place (replacing an older one), never leaving a half-written one there."""
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model folder is meant to be shared
    for f in tmp.iterdir():
        os.chmod(f, 0o644)
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def read_config(folder: str | Path, data: dict | None = None) -> GPTConfig:
    """The GPTConfig of a GPT-2-family folder, from its config.json (`data`: already read, by the loader)."""
    data = read_config_json(folder) if data is None else data
    try:
        return GPTConfig.from_hf_dict(data)
    except (KeyError, TypeError, ValueError, ArithmeticError) as e:
        raise CheckpointError(f"config.json does not describe a GPT-2-style model: {e}") from None


def _our_name(key: str) -> str | None:
    """Map a transformers GPT-2 key (with or without the `transformer.` prefix) to ours; None = skip."""
    if key.endswith(IGNORED_SUFFIXES) or key == "lm_head.weight":
        return None
    return key if key.startswith("transformer.") else "transformer." + key


def load_pretrained(folder: str | Path, device: torch.device | str = "cpu", max_bytes: int | None = None,
                    with_tokenizer: bool = True, config: dict | None = None) -> tuple[GPT, object]:
    """Load (model, tokenizer) from a checkpoint folder; the model is in eval mode on `device`. `config`:
    its config.json, already read (engine.model.hf.load_model reads it once for every family)."""
    folder = Path(folder)
    cfg = read_config(folder, config)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{WEIGHTS} is missing (only safetensors weights are accepted, never pickles)")
    if max_bytes is not None and weights.stat().st_size > max_bytes:
        raise CheckpointError(f"{WEIGHTS} is {weights.stat().st_size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    if weights.stat().st_size < cfg.n_params():  # at least a byte per parameter: refuse before allocating
        raise CheckpointError(f"{WEIGHTS} is too small for the {cfg.n_params():,} parameters config.json describes")
    with torch.device("meta"):  # shapes only: no memory, no random init that would be overwritten anyway
        model = GPT(cfg)
    expected = {k: v.shape for k, v in model.state_dict().items() if k != "lm_head.weight"}
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():
                ours = _our_name(key)
                if ours is None:
                    continue
                if ours not in expected:
                    raise CheckpointError(f"unexpected tensor {key!r} in {WEIGHTS}")
                shape = tuple(f.get_slice(key).get_shape())
                if shape != tuple(expected[ours]):
                    raise CheckpointError(f"{key} has shape {shape}, config.json implies {tuple(expected[ours])}")
                state[ours] = f.get_tensor(key).float()
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own types for corrupt headers and truncated files
        raise CheckpointError(f"{WEIGHTS} could not be read: {e}") from None
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{WEIGHTS} lacks {len(missing)} tensors, e.g. {missing[0]}")
    for name, t in state.items():
        # numpy, single-threaded: torch's thread pool costs more than the check on a busy 2-core host.
        if not np.isfinite(t.numpy()).all():
            raise CheckpointError(f"{name} holds NaN or infinite values")
    model.load_state_dict(state, strict=False, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # re-tie: assign replaced wte's Parameter
    model.to(device).eval()
    tokenizer = None
    if with_tokenizer:
        if (why := missing_tokenizer((p.name for p in folder.iterdir()), GPTConfig.family)) is not None:
            raise CheckpointError(why)
        try:
            tokenizer = load_tokenizer(folder)
        except Exception as e:
            raise CheckpointError(f"the tokenizer files could not be loaded: {e}") from None
        if len(tokenizer) > cfg.vocab_size:
            raise CheckpointError(f"the tokenizer has {len(tokenizer)} tokens, the model only {cfg.vocab_size}")
    return model, tokenizer
