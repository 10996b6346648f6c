"""The files of a Hugging Face model folder, named once, and the one guarded way to read the small ones.

A folder may come from anywhere (a server folder, the Hub, an upload), so a file is read with a cap that is
enforced on the bytes read, never trusted from `stat` (a FIFO or a /proc file reports 0 bytes), and JSON must
parse, not nest too deeply and be an object. Every refusal is one plain sentence, raised as the caller's own
error class (CheckpointError while loading, SourceError while checking a source).
"""
from __future__ import annotations

import json
from pathlib import Path

from .cost import size_text

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # a sharded model's list of weight files
TOKENIZER = "tokenizer.json"
MAX_CONFIG_BYTES = 1 << 20  # a real config.json is a few KB
MAX_JSON_BYTES = 16 << 20  # a sharded model's index, a tokenizer_config.json
MAX_TOKENIZER_BYTES = 64 << 20  # Qwen2.5's tokenizer.json is 7 MB, Llama 3's 9 MB


class CheckpointError(ValueError):
    """A folder that is not a loadable checkpoint; the message says why, in plain words."""


def _what(path: Path) -> str:
    return "a model config" if path.name == CONFIG else f"a model's {path.name}"


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 and n % (1 << 20) == 0 else size_text(n)


def read_capped(path: Path, max_bytes: int, error: type[ValueError] = CheckpointError) -> bytes:
    """The bytes of a file of at most `max_bytes` (counted while reading); `error` if it is missing, cannot be
    read or is bigger."""
    if not path.is_file():
        raise error(f"{path.name} is missing from {path.parent.name or path.parent}")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise error(f"{path.name} could not be read ({(e.strerror or type(e).__name__).lower()})") from None
    if len(raw) > max_bytes:
        raise error(f"{path.name} is larger than {_size(max_bytes)}: not {_what(path)}")
    return raw


def read_json(path: Path, max_bytes: int, error: type[ValueError] = CheckpointError) -> dict:
    """A JSON object from a file of at most `max_bytes`; `error` (one sentence) for anything else."""
    raw = read_capped(path, max_bytes, error)
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:  # Python's parser recurses once per level: [[[[...]]]] exhausts the stack
        raise error(f"{path.name} is nested too deeply to be {_what(path)}") from None
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, and integers of more than 4,300 digits
        raise error(f"{path.name} is not valid JSON ({str(e)[:200]})") from None
    if not isinstance(data, dict):
        raise error(f"{path.name} must hold a JSON object")
    return data


def read_config_json(folder: str | Path, error: type[ValueError] = CheckpointError) -> dict:
    """A model folder's config.json, as a dict: the one reader every loader and check uses."""
    return read_json(Path(folder) / CONFIG, MAX_CONFIG_BYTES, error)
