"""Where models come from: a local folder the server is told about (every sub-folder of GLASSBOX_MODELS_DIR with
a config.json) or the Hugging Face Hub (`fetch_hub_model`, over the transport in engine.model.hub). A model is
a Hugging Face folder: config.json, safetensors weights, tokenizer files.

Everything is checked before any weight is read: config.json by engine.model.facts (the architecture, custom
code, the price against the budget), then the weights (safetensors only, never a pickle) and the tokenizer
(`check_folder`). A Hub repo is refused from its file list and its config.json before its weights are
downloaded, and only the files a model needs are ever fetched. This module never loads weights; the loader
does, on what passes here. The names of engine.model.facts are importable from here too.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from . import hub
from .checkpoint import swap_in
from .cost import size_text
from .facts import (DEFAULT_MODEL_BUDGET_MB, FAMILY_NAMES, MODEL_BUDGET_ENV, SUPPORTED, TRACE_TOKENS, ModelFacts,
                    SourceError, model_budget_bytes, model_facts, read_model_config)
from .files import (CONFIG, MAX_CONFIG_BYTES, MAX_JSON_BYTES, MAX_TOKENIZER_BYTES, WEIGHTS, WEIGHTS_INDEX,
                    read_json)
from .tokenizer import missing_tokenizer

__all__ = ["CURATED", "DEFAULT_MODEL_BUDGET_MB", "FAMILY_NAMES", "MODELS_DIR_ENV", "MODEL_BUDGET_ENV", "SUPPORTED",
           "TRACE_TOKENS", "HubUnreachable", "LocalModel", "ModelFacts", "SourceError", "check_folder",
           "check_repo_id", "fetch_hub_model", "folder_name", "local_models", "model_budget_bytes", "model_facts",
           "read_model_config"]

CURATED = ["openai-community/gpt2", "distilbert/distilgpt2", "roneneldan/TinyStories-1M", "roneneldan/TinyStories-8M",
           "roneneldan/TinyStories-33M", "EleutherAI/pythia-70m", "EleutherAI/pythia-160m",
           "HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct", "Qwen/Qwen2.5-0.5B",
           "Qwen/Qwen2.5-0.5B-Instruct"]
MODELS_DIR_ENV = settings.env_name("models_dir")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "generation_config.json", "chat_template.jinja")
SOURCE_RECORD = ".glassbox-source.json"  # what a fetched folder was fetched from (hidden: not model files)
_SHARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors")
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
# What a folder or repo may hold instead of safetensors weights, for the refusal.
_OTHER_WEIGHTS = [((".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"), "a pickle, never loaded"),
                  ((".h5",), "TensorFlow weights"), ((".msgpack",), "Flax weights"), ((".gguf",), "llama.cpp weights"),
                  ((".onnx",), "an ONNX export"), ((".safetensors",), "not model.safetensors or its shards")]


class HubUnreachable(SourceError):
    """The Hub did not answer (offline, a name that does not resolve, a refused connection, silence)."""


# --- local folders -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalModel:
    name: str  # the folder's name, as the model picker shows it
    path: Path


def local_models(root: str | Path | None = None) -> list[LocalModel]:
    """Every sub-folder of `root` (default: GLASSBOX_MODELS_DIR; unset: none) with a config.json, by name.
    Hidden folders (a download in progress) and entries that cannot be read are left out."""
    root = root if root is not None else settings.current().models_dir
    if root is None:
        return []
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            if not entry.name.startswith(".") and entry.is_dir() and (entry / CONFIG).is_file():
                found.append(LocalModel(entry.name, entry))
        except OSError:  # permission denied, a symlink loop
            continue
    return sorted(found, key=lambda m: (m.name.lower(), m.name))


def check_folder(folder: str | Path) -> ModelFacts:
    """The facts of a model folder, or SourceError when Glassbox would not load it: its config (as
    model_facts), custom tokenizer code, weights that are not safetensors, no tokenizer."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder.name or folder} is not a folder")
    facts = model_facts(read_model_config(folder))
    if (folder / "tokenizer_config.json").is_file():
        _no_custom_tokenizer(read_json(folder / "tokenizer_config.json", MAX_JSON_BYTES, SourceError))
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if not (folder / WEIGHTS).is_file():
        if not (folder / WEIGHTS_INDEX).is_file():
            raise SourceError(_no_safetensors(folder.name, names))
        index = read_json(folder / WEIGHTS_INDEX, MAX_JSON_BYTES, SourceError)
        missing = [s for s in _shards(index) if not (folder / s).is_file()]
        if missing:
            raise SourceError(f"{folder.name} lacks {len(missing)} of the weight files {WEIGHTS_INDEX} lists, "
                              f"e.g. {missing[0]}")
    if (why := missing_tokenizer(names, facts.family)) is not None:
        raise SourceError(f"{folder.name} has no tokenizer: {why}")
    return facts


def _no_custom_tokenizer(tokenizer_config: dict) -> None:
    if "auto_map" in tokenizer_config:
        raise SourceError("tokenizer_config.json asks to run the tokenizer's own Python code (auto_map); Glassbox "
                          "never runs code from a model (trust_remote_code).")


def _shards(index: dict) -> list[str]:
    """The weight files a sharded model's index names: plain file names, in this folder, safetensors."""
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise SourceError(f"{WEIGHTS_INDEX} has no weight_map")
    names = list(weight_map.values())
    if not all(isinstance(n, str) and _SHARD.fullmatch(n) and ".." not in n for n in names):
        raise SourceError(f"{WEIGHTS_INDEX} names weight files that are not plain .safetensors file names")
    return sorted(set(names))


def _no_safetensors(where: str, names: list[str]) -> str:
    """'X has no safetensors weights: it has pytorch_model.bin (a pickle, never loaded). ...'"""
    other = []
    for name in names:
        for suffixes, what in _OTHER_WEIGHTS:
            if name.lower().endswith(suffixes):
                other.append(f"{name} ({what})")
                break
    has = ", ".join(other[:4]) + (f" and {len(other) - 4} more" if len(other) > 4 else "") if other else "no weights"
    return (f"{where} has no safetensors weights: it has {has}. Glassbox loads only {WEIGHTS} (or the shards "
            f"{WEIGHTS_INDEX} lists), never a pickle.")


# --- the Hugging Face Hub ----------------------------------------------------------------------------------

def check_repo_id(repo_id: str) -> str:
    """`owner/name` with the Hub's characters (letters, digits, . _ -), no '..' or '--'; else SourceError."""
    repo_id = repo_id.strip() if isinstance(repo_id, str) else ""
    parts = repo_id.split("/")
    if (len(parts) != 2 or not all(_REPO_PART.fullmatch(p) for p in parts) or ".." in repo_id or "--" in repo_id
            or any(p.endswith(".") for p in parts)):
        raise SourceError(f"{repo_id[:100]!r} is not a Hub model id: write it as owner/name, e.g. "
                          "openai-community/gpt2 (letters, digits, '.', '_' and '-').")
    return repo_id


def folder_name(repo_id: str) -> str:
    """The folder a Hub model lands in: 'openai-community/gpt2' -> 'openai-community--gpt2'."""
    return check_repo_id(repo_id).replace("/", "--")


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(path, threading.Lock())


def _fetched(dest: Path, repo_id: str, revision: str) -> bool:
    """Whether `dest` is a complete folder of this repo at this revision. Only complete folders are ever
    renamed into place, so a folder there is complete; its record tells which revision it holds."""
    if not dest.is_dir():
        return False
    try:
        record = json.loads((dest / SOURCE_RECORD).read_text())
    except (OSError, ValueError):
        return True  # put there by hand: never overwritten
    return isinstance(record, dict) and record.get("repo_id") == repo_id and record.get("revision") == revision


PARTIAL = ".partial-"  # in the name of a download's folder until it is complete and swapped in
STALE_PARTIAL_S = 15 * 60  # a download writes to its folder every few seconds (its reads time out in 5 s); one
#                            untouched this long belongs to a process that was killed mid-download


def sweep_partials(dest_root: Path, stale_s: float = STALE_PARTIAL_S) -> list[str]:
    """Remove what killed downloads left under dest_root: partial folders nothing has written to for
    `stale_s` seconds (they count against the Hub folder's disk cap). The names removed."""
    removed = []
    try:
        entries = [e for e in Path(dest_root).iterdir() if e.name.startswith(".") and PARTIAL in e.name and e.is_dir()]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            newest = max([entry.stat().st_mtime, *(f.stat().st_mtime for f in entry.rglob("*"))])
        except OSError:
            continue  # removed meanwhile, or unreadable: not ours to judge
        if now - newest > stale_s:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def fetch_hub_model(repo_id: str, dest_root: Path, progress: Callable[[int, int], None] | None = None,
                    timeout: float = 5.0, revision: str = "main") -> Path:
    """Download a Hub model into dest_root/<owner>--<name>/ and return that folder; an existing complete one is
    returned without asking the Hub. The repo's file list comes first: a repo without safetensors weights or a
    tokenizer is refused there, and config.json (and tokenizer_config.json) are priced and checked before
    any weight is fetched. Only config.json, safetensors weights (with their index) and tokenizer files are
    downloaded. `progress(bytes_done, bytes_total)` is called as bytes arrive. HF_ENDPOINT and HF_TOKEN come
    from the settings (engine/settings.py). Raises SourceError (HubUnreachable when nothing answers within
    `timeout`)."""
    repo_id = check_repo_id(repo_id)
    if not isinstance(revision, str) or not _REVISION.fullmatch(revision) or ".." in revision:
        raise SourceError(f"{str(revision)[:60]!r} is not a revision: a branch, tag or commit, e.g. main")
    dest_root = Path(dest_root)
    dest = dest_root / folder_name(repo_id)
    with _lock_for(dest.resolve()):  # one download per folder at a time in this process
        if _fetched(dest, repo_id, revision):
            return dest
        try:
            s = settings.current()
            client = hub.Hub(s.hf_endpoint or hub.DEFAULT_ENDPOINT, s.hf_token or None, timeout)
            info = client.model_info(repo_id, revision)
            dest_root.mkdir(parents=True, exist_ok=True)
            sweep_partials(dest_root)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}{PARTIAL}", dir=dest_root))
            try:
                names = _download(client, info, tmp, progress)
                (tmp / SOURCE_RECORD).write_text(json.dumps(
                    {"repo_id": repo_id, "revision": revision, "commit": info.commit, "files": names}, indent=2) + "\n")
                swap_in(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        except hub.Unreachable as e:
            raise HubUnreachable(f"The Hugging Face Hub could not be reached ({e.reason}): check the network, or "
                                 f"put the model in {MODELS_DIR_ENV}.") from None
        except hub.HubError as e:
            raise SourceError(str(e)) from None
        except OSError as e:  # dest_root cannot be written, or the disk is full
            raise SourceError(f"The model could not be written under {dest_root} "
                              f"({(e.strerror or type(e).__name__).lower()}).") from None
    return dest


def _download(client: hub.Hub, info: hub.RepoInfo, tmp: Path, progress: Callable[[int, int], None] | None) -> list[str]:
    """Fetch what the model needs into `tmp`, in the order that refuses early; the file names fetched."""
    repo, files = info.repo_id, info.files
    top = sorted(n for n in files if "/" not in n)  # sub-folders (onnx/, original/) are never fetched
    if CONFIG not in files:
        raise SourceError(f"{repo} has no config.json, so it is not a transformers model Glassbox can price or load.")
    if WEIGHTS not in files and WEIGHTS_INDEX not in files:
        raise SourceError(_no_safetensors(repo, top))
    if (why := missing_tokenizer(top, None)) is not None:  # the family is not known before the config
        raise SourceError(f"{repo} has no tokenizer: {why}.")
    done = 0

    def fetch(name: str, cap: int) -> Path:
        nonlocal done
        client.download(repo, info.commit, files[name], tmp / name, cap)
        done += (tmp / name).stat().st_size
        return tmp / name

    # 1. The config, priced before anything big: the architecture, custom code, the budget.
    fetch(CONFIG, MAX_CONFIG_BYTES)
    facts = model_facts(read_model_config(tmp))
    budget = model_budget_bytes()
    if (why := facts.refusal(budget)) is not None:
        raise SourceError(why)
    if (why := missing_tokenizer(top, facts.family)) is not None:
        raise SourceError(f"{repo} has no tokenizer Glassbox can load: {why}.")
    fetched = [CONFIG]
    if "tokenizer_config.json" in files:
        _no_custom_tokenizer(read_json(fetch("tokenizer_config.json", MAX_JSON_BYTES), MAX_JSON_BYTES, SourceError))
        fetched.append("tokenizer_config.json")
    # 2. Which weight files, and their size from the list against the budget.
    if WEIGHTS in files:
        weights = [WEIGHTS]
    else:
        weights = _shards(read_json(fetch(WEIGHTS_INDEX, MAX_JSON_BYTES), MAX_JSON_BYTES, SourceError))
        fetched.append(WEIGHTS_INDEX)
        if unlisted := [s for s in weights if s not in files]:
            raise SourceError(f"{repo}'s {WEIGHTS_INDEX} names {unlisted[0]}, which the repo does not have.")
    listed = sum(files[w].size or 0 for w in weights)
    if listed > budget:
        raise SourceError(f"{repo}'s weights are {size_text(listed)}, over this server's {size_text(budget)} for "
                          f"models ({MODEL_BUDGET_ENV}).")
    # 3. Everything else, with progress: tokenizer files first (small), then the weights, each capped (a file
    # the list gives no size may still not push the weights past the budget).
    rest = [n for n in TOKENIZER_FILES if n in files and n not in fetched] + weights
    total = done + sum(files[n].size or 0 for n in rest)
    weights_left = budget

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, max(total, done))

    if progress is not None:
        progress(done, total)
    for name in rest:
        client.download(repo, info.commit, files[name], tmp / name,
                        weights_left if name in weights else MAX_TOKENIZER_BYTES, on_bytes)
        if name in weights:
            weights_left -= (tmp / name).stat().st_size
        fetched.append(name)
    return fetched
