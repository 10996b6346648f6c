"""A model NDIF runs, as this server holds it: its config and tokenizer, and its architecture built by nnsight on
the meta device (shapes only: no weights, no memory). That is all a request needs: nnsight names the model by
its key, and the weights never leave NDIF.

Where the config and tokenizer come from: a folder per model under GLASSBOX_NDIF_DIR (`<owner>--<name>/`, as
the Hub folder names them), with config.json and the tokenizer files, never weights. A model not there yet is
fetched from the Hugging Face Hub once (only those files; HF_TOKEN for a gated repo such as Meta's Llama), then
read from the folder. Both are checked as every model Glassbox opens is: a config with custom code (auto_map)
is refused, numbers must be sane, and a tokenizer.json may hold only splitting expressions known to be safe.

`RemoteModel` offers the pages what they read of any model: `config` (the architecture facts, ArchConfig),
the tokenizer, the parameter count (counted on the meta model); and the nnsight model a request is traced on.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from .. import settings
from ..model import hub
from ..model.checkpoint import swap_in
from ..model.families.base import MAX_LAYERS, ArchConfig
from ..model.files import (CONFIG, MAX_JSON_BYTES, MAX_TOKENIZER_BYTES, TOKENIZER, read_capped,
                           read_config_json)
from ..model.sources import check_repo_id, folder_name
from ..model.tokenizer import GPT2_PAIR, check_tokenizer_patterns, load_tokenizer
from .lib import import_nnsight
from .recipes import RECIPES, Recipe, UnsupportedModel, arch_of, recipe_for

TOKENIZER_FILES = (TOKENIZER, "tokenizer_config.json", "special_tokens_map.json", *GPT2_PAIR)
TASK = "text-generation"  # part of the model's key on NDIF: the causal language models it serves
_NUMBERS = ("n_layer", "num_hidden_layers", "n_head", "num_attention_heads", "num_key_value_heads", "n_embd",
            "hidden_size", "vocab_size", "n_positions", "max_position_embeddings", "intermediate_size", "n_inner")


class ModelUnavailable(ValueError):
    """A remote model this server cannot describe (no config, a refused one, the Hub unreachable): one sentence."""


def configs_dir() -> Path:
    return settings.current().ndif_dir or Path(__file__).resolve().parents[2] / ".cache" / "ndif-models"


def model_folder(repo_id: str) -> Path:
    return configs_dir() / folder_name(repo_id)


def _has_files(folder: Path) -> bool:
    return (folder / CONFIG).is_file() and ((folder / TOKENIZER).is_file() or
                                            all((folder / n).is_file() for n in GPT2_PAIR))


_fetch_lock = threading.Lock()


def fetch_files(repo_id: str, revision: str | None, token: str | None, timeout: float = 5.0) -> Path:
    """The model's folder of config and tokenizer files, fetched from the Hub first if it is not there. Only
    config.json and tokenizer files are ever fetched. Raises ModelUnavailable (one sentence, no token)."""
    folder = model_folder(check_repo_id(repo_id))
    with _fetch_lock:
        if _has_files(folder):
            return folder
        s = settings.current()
        try:
            client = hub.Hub(s.hf_endpoint or hub.DEFAULT_ENDPOINT, token, timeout)
            info = client.model_info(repo_id, revision or "main")
            if CONFIG not in info.files:
                raise ModelUnavailable(f"{repo_id} has no config.json on the Hub.")
            names = [n for n in (CONFIG, *TOKENIZER_FILES) if n in info.files]
            if TOKENIZER not in names and not all(n in names for n in GPT2_PAIR):
                raise ModelUnavailable(f"{repo_id} has no tokenizer.json on the Hub.")
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
            try:
                for name in names:
                    cap = MAX_TOKENIZER_BYTES if name == TOKENIZER else MAX_JSON_BYTES
                    client.download(repo_id, info.commit, info.files[name], tmp / name, cap)
                (tmp / ".glassbox-source.json").write_text(json.dumps(
                    {"repo_id": repo_id, "revision": revision, "commit": info.commit, "files": names}) + "\n")
                swap_in(tmp, folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        except hub.Unreachable as e:
            raise ModelUnavailable(f"{repo_id}'s config could not be fetched: the Hugging Face Hub could not be "
                                   f"reached ({e.reason}). Put its config.json and tokenizer in "
                                   f"{settings.env_name('ndif_dir')}.") from None
        except hub.HubError as e:  # its words say what to do (a gated repo: accept its licence, set a token)
            raise ModelUnavailable(f"{repo_id}'s config could not be fetched: {e}") from None
        except OSError as e:
            raise ModelUnavailable(f"{repo_id}'s config could not be kept in {folder.parent} "
                                   f"({(e.strerror or type(e).__name__).lower()}).") from None
    return folder


def read_hf_config(folder: Path):
    """The transformers config of a folder, checked: a family Glassbox reads on NDIF, no custom code, numbers in
    range. Raises ModelUnavailable (UnsupportedModel for an architecture without a recipe)."""
    import transformers
    config = read_config_json(folder, ModelUnavailable)
    if "auto_map" in config:
        raise ModelUnavailable("config.json asks to run the model's own Python code (auto_map); Glassbox never "
                               "runs code from a model.")
    kind = config.get("model_type")
    if kind not in RECIPES:
        raise UnsupportedModel(f"Glassbox reads {', '.join(r.name for r in RECIPES.values())} models on NDIF; "
                               f"this one is {str(kind)[:40]}.")
    for key in _NUMBERS:
        value = config.get(key)
        top = MAX_LAYERS if "layer" in key else 1 << 21
        if value is not None and (type(value) is not int or not 1 <= value <= top):
            raise ModelUnavailable(f"config.json's {key} must be a whole number from 1 to {top:,}, not "
                                   f"{str(value)[:40]}.")
    try:
        return transformers.AutoConfig.for_model(**config)
    except Exception as e:  # noqa: BLE001 - transformers validates with many exception types
        raise ModelUnavailable(f"config.json is not a valid {kind} config: {str(e).splitlines()[0][:200]}") from None


def read_tokenizer(folder: Path):
    """The folder's tokenizer, its splitting expressions checked first (a tokenizer.json from the Hub)."""
    if (folder / TOKENIZER).is_file():
        try:
            check_tokenizer_patterns(read_capped(folder / TOKENIZER, MAX_TOKENIZER_BYTES, ModelUnavailable))
        except ValueError as e:
            raise ModelUnavailable(str(e)) from None
    try:
        return load_tokenizer(folder)
    except Exception as e:  # noqa: BLE001 - tokenizers raise many types for a broken file
        raise ModelUnavailable(f"the tokenizer files could not be loaded: {str(e)[:200]}") from None


class RemoteModel:
    """A model NDIF runs: config, tokenizer and meta architecture here, weights there. Read-only once built."""

    def __init__(self, repo_id: str, revision: str | None, hf_config, tokenizer):
        import_nnsight()  # only where NDIF is used
        from nnsight.modeling.transformers import TransformersModel
        self.repo_id, self.revision = check_repo_id(repo_id), revision
        self.hf_config, self.tokenizer = hf_config, tokenizer
        self.recipe: Recipe = recipe_for(hf_config)
        self.config: ArchConfig = arch_of(hf_config)
        # The architecture on the meta device: nnsight's wrapper of the same transformers class NDIF loads, so
        # the module paths a request names are the ones the hosted model has. Its key names it on NDIF.
        # (nnsight.LanguageModel is the deprecated alias of this class, with the same key.)
        self.nnsight = TransformersModel(self.repo_id, revision=revision, task=TASK, config=hf_config,
                                         tokenizer=tokenizer)
        self._n_params = sum(p.numel() for p in self.nnsight._module.parameters())  # a tied weight once

    @property
    def family_name(self) -> str:
        return self.recipe.name

    def num_params(self) -> int:
        return self._n_params

    def model_key(self) -> str:
        """The key NDIF knows the model by: nnsight's own, from the repo id as NDIF lists it."""
        from nnsight.modeling import huggingface
        # nnsight asks the Hub for a repo id's canonical spelling before it makes a key; the ids here come from
        # NDIF's own list (or the curated one, spelled as NDIF spells them), so that lookup is skipped.
        huggingface._ID_CACHE.setdefault(self.repo_id, self.repo_id)
        return self.nnsight.to_model_key()

    def env(self) -> dict:
        """What nnsight sends with a request besides the key (the attention implementation, so NDIF runs what
        the meta model was built with)."""
        return self.nnsight._remoteable_get_env()


def counted_params(repo_id: str) -> int | None:
    """The parameter count of a model whose config is already in GLASSBOX_NDIF_DIR (None otherwise, or when the
    config cannot be built): for the picker's label, without fetching anything or building nnsight's wrapper."""
    try:
        config = model_folder(repo_id) / CONFIG
        stamp = config.stat().st_mtime_ns
    except (OSError, ValueError):
        return None
    return _count(str(config.parent), stamp)


@lru_cache(maxsize=32)
def _count(folder: str, stamp: int) -> int | None:
    # `stamp`: a config replaced on disk is counted again
    import torch
    import transformers
    try:
        conf = read_hf_config(Path(folder))
        with torch.device("meta"):  # shapes only; the class itself (from_config would set torch's default dtype)
            model = getattr(transformers, conf.architectures[0])(conf)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - a label goes without a size rather than failing the sidebar
        return None


def open_remote(repo_id: str, revision: str | None = None, token: str | None = None) -> RemoteModel:
    """The RemoteModel of a repo: its files fetched if needed, read, checked and built. ModelUnavailable or
    UnsupportedModel (one sentence) when it cannot be."""
    folder = fetch_files(repo_id, revision, token)
    return RemoteModel(repo_id, revision, read_hf_config(folder), read_tokenizer(folder))
