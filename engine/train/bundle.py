"""A trained model as one .zip file, and back: a Hugging Face-compatible folder (config.json,
model.safetensors, tokenizer files, a model card) zipped for download, and a safe import of such a zip.

The import trusts nothing in the zip: it reads only allow-listed file names (never the zip's own paths, so
nothing is written outside a fresh temporary folder), refuses pickles and anything else unexpected,
symbolic links, encrypted entries, oversized files and suspicious compression ratios (zip bombs), reads
each file with a hard size cap whatever its header claims, and loads the weights with
`engine.model.checkpoint.load_pretrained`, which checks names, shapes and values before using any tensor.

A small zip can still describe a model that is ruinous to run (a trace of 2 layers of 16 heads over 2,048
tokens holds 1 GB; 2,000 layers take a minute per run), so before anything is built the config is held to
caps on its shape and to the server's trace budget (engine/model/cost.py), the tokenizer.json to what our own
trainer writes (no regular expressions, a bounded vocabulary), and after loading the model must give finite,
sane logits on a test sentence.
"""
from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import torch
from tokenizers import Tokenizer

from ..model.checkpoint import CheckpointError, load_pretrained, read_config, save_pretrained
from ..model.config import GPTConfig
from ..model.cost import TraceBudget, config_cost, over_budget
from ..model.files import CONFIG, MAX_CONFIG_BYTES, TOKENIZER, WEIGHTS
from ..model.gpt import GPT
from ..model.tokenizer import EOT, check_tokenizer_json, wrap
from ..model.trace import NonFiniteTrace, run_trace

MAX_ZIP_BYTES = 25 * 2**20  # the same as server.maxUploadSize in .streamlit/config.toml (a test holds them equal)
MAX_WEIGHTS_BYTES = 200 * 2**20
# An uploaded zip's tokenizer (a model folder's may be bigger: engine.model.files.MAX_TOKENIZER_BYTES): ours is
# 0.26 MB at 4,096 tokens; a 30 MB one takes a minute to load
MAX_UPLOAD_TOKENIZER_BYTES = 2 * 2**20
MAX_PARAMS = 50_000_000  # pages trace whole models: bigger ones would make every page crawl
# Caps on the shape, each well above what the Train page offers (8 layers, 16 heads, 512 tokens, a
# 4,096-token vocabulary): pages draw every layer x head, and each layer costs time to build and run.
MAX_LAYERS = 24
MAX_HEADS = 32
MAX_CONTEXT = 1024
MAX_VOCAB = 8192
MAX_RATIO = 100  # uncompressed / compressed; safetensors barely compresses, JSON ~5-10x
MAX_ENTRIES = 32
LIMITS = {  # the files we read, with the most bytes each may hold
    CONFIG: MAX_CONFIG_BYTES,
    WEIGHTS: MAX_WEIGHTS_BYTES,
    TOKENIZER: MAX_UPLOAD_TOKENIZER_BYTES,
}
PROBE = 'Once upon a time, a little dog said: "Hello!" 🐕\n'  # a test sentence every loaded model must survive
MAX_LOGIT = 1e4  # trained GPT-2 logits stay within a few hundred; beyond this the weights are broken
NOT_NATIVE = (KeyboardInterrupt, SystemExit, GeneratorExit)  # BaseExceptions that are not a library failing
IGNORED = {  # harmless files a Hugging Face folder often holds; never read
    "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "README.md", "training.json",
    "vocab.json", "merges.txt", ".gitattributes", "LICENSE", "LICENSE.txt",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack")


class BundleError(ValueError):
    """A zip that cannot be imported; the message says why in one plain sentence."""


def export_zip(model: GPT, tokenizer, name: str = "my-model", card: str = "",
               extra_files: dict[str, str] | None = None, comment: bytes = b"") -> bytes:
    """The model as a zip of a Hugging Face-compatible folder named `name` (bytes, ready to download);
    `comment`: the zip's archive comment (at most 65,535 bytes; readers ignore it)."""
    with tempfile.TemporaryDirectory(prefix="glassbox-export-") as tmp:
        folder = save_pretrained(model, tokenizer, Path(tmp) / name,
                                 extra_files={"README.md": card, **(extra_files or {})} if card else extra_files)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f"{name}/{f.name}")
            zf.comment = comment
    return buf.getvalue()


def _member_name(info: zipfile.ZipInfo) -> str:
    """The file name of a zip entry, refusing paths that could escape or mislead (never used as a path)."""
    raw = info.filename
    if "\\" in raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or "\x00" in raw:
        raise BundleError(f"The zip holds a file with an unsafe path ({raw[:80]!r}); refused.")
    parts = PurePosixPath(raw).parts
    if any(p in ("..", ".") for p in parts) or len(parts) > 2:
        raise BundleError(f"The zip holds a file with an unsafe or nested path ({raw[:80]!r}); refused. "
                          "A model zip holds the files of one folder.")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise BundleError(f"The zip holds a symbolic link ({raw[:80]!r}); refused.")
    if info.flag_bits & 0x1:
        raise BundleError("The zip is encrypted; export it without a password.")
    return parts[-1]


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The entry's bytes, stopping at `limit` whatever the header says (headers can lie)."""
    out = bytearray()
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):
            out += chunk
            if len(out) > limit:
                name = PurePosixPath(info.filename).name
                raise BundleError(f"{name} is larger than {limit / 2**20:.0f} MB; refused.")
    return bytes(out)


def check_zip(data: bytes) -> dict[str, bytes]:
    """The files a model needs, read from the zip after every check; BundleError otherwise."""
    if len(data) > MAX_ZIP_BYTES:
        raise BundleError(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_ZIP_BYTES / 2**20:.0f} MB.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise BundleError("The file is not a zip archive.") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ENTRIES:
            raise BundleError(f"The zip holds {len(infos)} files; a model zip holds a handful.")
        chosen: dict[str, zipfile.ZipInfo] = {}
        folders = set()
        for info in infos:
            name = _member_name(info)
            folders.add(PurePosixPath(info.filename).parts[:-1])
            if name.lower().endswith(PICKLE_SUFFIXES):
                raise BundleError(f"The zip holds {name}, a pickle-style file that could run code when loaded. "
                                  "Glassbox loads safetensors weights only: remove it and zip again.")
            if name in IGNORED:
                continue
            if name not in LIMITS:
                raise BundleError(f"The zip holds an unexpected file, {name[:80]!r}. A model zip holds "
                                  f"{', '.join(LIMITS)} (and optionally {', '.join(sorted(IGNORED)[:4])}, ...).")
            if name in chosen:
                raise BundleError(f"The zip holds {name} twice.")
            chosen[name] = info
        if len(folders) > 1:
            raise BundleError("The zip mixes files from several folders; zip one model folder.")
        for name in LIMITS:
            if name not in chosen:
                extra = " (only safetensors weights are accepted, never pickles)" if name == WEIGHTS else ""
                raise BundleError(f"The zip has no {name}{extra}.")
        for name, info in chosen.items():
            if info.file_size > LIMITS[name]:
                raise BundleError(f"{name} is {info.file_size / 2**20:.0f} MB; the limit is "
                                  f"{LIMITS[name] / 2**20:.0f} MB.")
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(1, info.compress_size):
                raise BundleError(f"{name} expands {info.file_size // max(1, info.compress_size):,} times when "
                                  "unpacked: this looks like a zip bomb, refused.")
        try:
            return {name: _read_capped(zf, info, LIMITS[name]) for name, info in chosen.items()}
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # zlib errors, CRC mismatches
            raise BundleError(f"The zip is damaged: {e}") from None


def _check_shape(cfg: GPTConfig, budget: TraceBudget) -> None:
    """Refuse a config whose shape, or whose trace over its full context, is beyond what this server runs."""
    for figure, limit, what in ((cfg.n_layer, MAX_LAYERS, "layers"), (cfg.n_head, MAX_HEADS, "heads per layer"),
                                (cfg.block_size, MAX_CONTEXT, "tokens of context"),
                                (cfg.vocab_size, MAX_VOCAB, "tokens in its vocabulary")):
        if figure > limit:
            raise BundleError(f"The model has {figure:,} {what}; Glassbox takes uploads with up to {limit:,}.")
    if cfg.n_params() > MAX_PARAMS:
        raise BundleError(f"The model has {cfg.n_params():,} parameters; Glassbox takes models up to "
                          f"{MAX_PARAMS:,}.")
    problem = over_budget(config_cost(cfg), budget)
    if problem:
        raise BundleError(problem)


def _tokenizer(raw: bytes, vocab_size: int):
    try:
        check_tokenizer_json(raw, MAX_VOCAB)
    except ValueError as e:
        raise BundleError(str(e)) from None
    try:
        tok = Tokenizer.from_str(raw.decode("utf-8"))
    except NOT_NATIVE:
        raise
    except BaseException as e:  # noqa: BLE001 - plain Exceptions for bad JSON, pyo3's PanicException for worse
        raise BundleError(f"tokenizer.json could not be read: {str(e)[:200]}") from None
    if tok.token_to_id(EOT) is None:
        raise BundleError(f"The tokenizer has no {EOT} token, which Glassbox uses to start every text.")
    if tok.get_vocab_size() != vocab_size:  # fewer: the model predicts ids with no text; more: ids it lacks
        raise BundleError(f"The tokenizer has {tok.get_vocab_size():,} tokens and the model {vocab_size:,}; "
                          "they must be the same.")
    return wrap(tok)


def _probe(model: GPT, tokenizer) -> None:
    """Run the loaded model on a test sentence: finite weights can still give NaN (a broken layer norm) or
    logits so large that every probability is 0 or 1 and every page's entropy is NaN."""
    try:
        trace = run_trace(model, tokenizer, PROBE)
    except NonFiniteTrace as e:
        raise BundleError(f"The model's {e.name} on a test sentence hold NaN or infinite values: its weights or "
                          "config are broken.") from None
    except NOT_NATIVE:
        raise
    except BaseException as e:  # noqa: BLE001 - whatever the tokenizer or the model raise, it is a refusal
        raise BundleError(f"The model failed on a test sentence ({type(e).__name__}: {str(e)[:200]}).") from None
    for name, t in {**trace.act, "logits": trace.logits}.items():  # in the order the forward pass makes them
        if name.endswith("hook_attn_scores"):
            t = t[~torch.isneginf(t)]  # the scores of future positions are -inf by design
        if not torch.isfinite(t).all():
            raise BundleError(f"The model's {name} on a test sentence hold NaN or infinite values: its weights or "
                              "config are broken.")
    peak = float(trace.logits.abs().max())
    if peak > MAX_LOGIT:
        raise BundleError(f"The model's logits on a test sentence reach {peak:.3g}; a working model's stay within "
                          f"±{MAX_LOGIT:,.0f}, so its weights look broken.")


def import_zip(data: bytes, max_bytes: int = MAX_WEIGHTS_BYTES,
               budget: TraceBudget | None = None) -> tuple[GPT, object]:
    """(model, tokenizer) from a zip made by `export_zip` (or any GPT-2 folder in safetensors, zipped).

    The model is on the CPU in eval mode. Raises BundleError with a plain message for anything unsafe,
    broken, too big, or too costly to trace under `budget` (default: TraceBudget.from_env()).
    """
    budget = budget or TraceBudget.from_env()
    files = check_zip(data)
    with tempfile.TemporaryDirectory(prefix="glassbox-import-") as tmp:
        folder = Path(tmp)
        for name, raw in files.items():
            (folder / name).write_bytes(raw)  # our own names only: the zip's paths are never used
        try:
            cfg = read_config(folder)
        except CheckpointError as e:
            raise BundleError(str(e)) from None
        _check_shape(cfg, budget)
        tokenizer = _tokenizer(files[TOKENIZER], cfg.vocab_size)
        try:
            model, _ = load_pretrained(folder, "cpu", max_bytes=max_bytes, with_tokenizer=False)
        except CheckpointError as e:
            raise BundleError(f"The weights were refused: {e}") from None
    _probe(model, tokenizer)
    return model, tokenizer
