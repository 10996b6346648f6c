"""A trained model as one .zip file, and back: a Hugging Face-compatible folder (config.json,
model.safetensors, tokenizer files, a model card) zipped for download, and a safe import of such a zip.

The import trusts nothing in the zip: it reads only allow-listed file names (never the zip's own paths, so
nothing is written outside a fresh temporary folder), refuses pickles and anything else unexpected,
symbolic links, encrypted entries, oversized files and suspicious compression ratios (zip bombs), reads
each file with a hard size cap whatever its header claims, and loads the weights with
`engine.model.checkpoint.load_pretrained`, which checks names, shapes and values before using any tensor.
"""
from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tokenizers import Tokenizer

from ..model.checkpoint import CONFIG, WEIGHTS, CheckpointError, load_pretrained, read_config, save_pretrained
from ..model.gpt import GPT
from ..model.tokenizer import EOT, wrap

MAX_ZIP_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 200 * 2**20
MAX_PARAMS = 50_000_000  # pages trace whole models: bigger ones would make every page crawl
MAX_CONTEXT = 2048
MAX_RATIO = 100  # uncompressed / compressed; safetensors barely compresses, JSON ~5-10x
MAX_ENTRIES = 32
LIMITS = {  # the files we read, with the most bytes each may hold
    CONFIG: 1 * 2**20,
    WEIGHTS: MAX_WEIGHTS_BYTES,
    "tokenizer.json": 32 * 2**20,
}
IGNORED = {  # harmless files a Hugging Face folder often holds; never read
    "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "README.md", "training.json",
    "vocab.json", "merges.txt", ".gitattributes", "LICENSE", "LICENSE.txt",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack")


class BundleError(ValueError):
    """A zip that cannot be imported; the message says why in one plain sentence."""


def export_zip(model: GPT, tokenizer, name: str = "my-model", card: str = "",
               extra_files: dict[str, str] | None = None) -> bytes:
    """The model as a zip of a Hugging Face-compatible folder named `name` (bytes, ready to download)."""
    with tempfile.TemporaryDirectory(prefix="glassbox-export-") as tmp:
        folder = save_pretrained(model, tokenizer, Path(tmp) / name,
                                 extra_files={"README.md": card, **(extra_files or {})} if card else extra_files)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f"{name}/{f.name}")
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


def _tokenizer(raw: bytes, vocab_size: int):
    try:
        tok = Tokenizer.from_str(raw.decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exceptions for bad JSON
        raise BundleError(f"tokenizer.json could not be read: {str(e)[:200]}") from None
    if tok.token_to_id(EOT) is None:
        raise BundleError(f"The tokenizer has no {EOT} token, which Glassbox uses to start every text.")
    if tok.get_vocab_size() > vocab_size:
        raise BundleError(f"The tokenizer has {tok.get_vocab_size():,} tokens, the model only {vocab_size:,}.")
    return wrap(tok)


def import_zip(data: bytes, max_bytes: int = MAX_WEIGHTS_BYTES) -> tuple[GPT, object]:
    """(model, tokenizer) from a zip made by `export_zip` (or any GPT-2 folder in safetensors, zipped).

    The model is on the CPU in eval mode. Raises BundleError with a plain message for anything unsafe,
    broken or too big.
    """
    files = check_zip(data)
    with tempfile.TemporaryDirectory(prefix="glassbox-import-") as tmp:
        folder = Path(tmp)
        for name, raw in files.items():
            (folder / name).write_bytes(raw)  # our own names only: the zip's paths are never used
        try:
            cfg = read_config(folder)
        except CheckpointError as e:
            raise BundleError(str(e)) from None
        if cfg.n_params() > MAX_PARAMS:
            raise BundleError(f"The model has {cfg.n_params():,} parameters; Glassbox takes models up to "
                              f"{MAX_PARAMS:,}.")
        if cfg.block_size > MAX_CONTEXT:
            raise BundleError(f"The model's context is {cfg.block_size:,} tokens; the limit is {MAX_CONTEXT:,}.")
        tokenizer = _tokenizer(files["tokenizer.json"], cfg.vocab_size)
        try:
            model, _ = load_pretrained(folder, "cpu", max_bytes=max_bytes, with_tokenizer=False)
        except CheckpointError as e:
            raise BundleError(f"The weights were refused: {e}") from None
    return model, tokenizer

