"""The same text under several tokenizers: one token per character, one per UTF-8 byte, the model's BPE, and
GPT-2's BPE when a copy can be had (a local folder, the Hugging Face cache, or the Hub when online). Plus the
counts a page shows: characters, tokens, characters per token, and how much of the context a text fills.

Offline, GPT-2 is simply absent with a one-line reason; nothing here raises for a missing network.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from tokenizers import Tokenizer

from ..model.tokenizer import (Encoding, _unicode_to_byte, display_bytes, encode, load_tokenizer,
                               missing_tokenizer, wrap)

GPT2_REPO = "openai-community/gpt2"
GPT2_FILE = "tokenizer.json"
HUB_TIMEOUT_S = 5.0  # a workshop page must not hang on a slow network


class _ByteLevelPieces:
    """What `engine.token_bytes` reads from a tokenizer (`convert_ids_to_tokens`, `all_special_tokens`), for
    the character and byte tokenizers: their ids are code points and byte values, not vocabulary rows."""
    all_special_tokens: list[str] = []

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return "".join(_byte_to_unicode()[b] for b in self.bytes_of(int(token_id)))

    def bytes_of(self, token_id: int) -> bytes:
        raise NotImplementedError


class CharTokenizer(_ByteLevelPieces):
    """One token per Unicode code point; the id is the code point."""
    name = "Characters"
    vocab_size = 0x110000  # every code point

    def bytes_of(self, token_id: int) -> bytes:
        return chr(token_id).encode("utf-8", errors="surrogatepass")

    def encode(self, text: str, show_whitespace: bool = True) -> Encoding:
        ids = [ord(c) for c in text]
        return Encoding(ids, [display_bytes(self.bytes_of(i), show_whitespace) for i in ids],
                        [(i, i + 1) for i in range(len(text))])


class ByteTokenizer(_ByteLevelPieces):
    """One token per UTF-8 byte; the id is the byte's value (0-255)."""
    name = "Bytes (UTF-8)"
    vocab_size = 256

    def bytes_of(self, token_id: int) -> bytes:
        return bytes([token_id])

    def encode(self, text: str, show_whitespace: bool = True) -> Encoding:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for i, ch in enumerate(text):
            raw = ch.encode("utf-8", errors="surrogatepass")
            ids += raw
            offsets += [(i, i + 1)] * len(raw)  # every byte of a character points at that character
        return Encoding(ids, [display_bytes(bytes([b]), show_whitespace) for b in ids], offsets)


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    return {b: ch for ch, b in _unicode_to_byte().items()}


@dataclass(frozen=True)
class Gpt2Tokenizer:
    tokenizer: object | None  # a PreTrainedTokenizerFast, or None when no copy could be had
    source: str  # where it came from, in words ("a local folder: ...", "the Hugging Face Hub")
    note: str | None = None  # one line saying why it is missing (None when it loaded)


def _from_folder(folder: Path):
    """A tokenizer folder: tokenizer.json, or GPT-2's classic vocab.json + merges.txt (as load_tokenizer
    reads them); None when it holds neither."""
    if missing_tokenizer(os.listdir(folder), "gpt2") is not None:
        return None
    return load_tokenizer(folder)


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def _reachable(endpoint: str, timeout: float) -> bool:
    """A quick TCP connect to the Hub: an offline machine answers in milliseconds instead of retrying."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def load_gpt2_tokenizer(folders: Sequence[str | Path] = (), hub: bool = True, endpoint: str | None = None,
                        timeout: float = HUB_TIMEOUT_S) -> Gpt2Tokenizer:
    """GPT-2's tokenizer from the first of `folders` that holds one, else the Hugging Face cache, else the Hub
    (when `hub` and not HF_HUB_OFFLINE). Never raises: a missing copy comes back with a one-line note."""
    for folder in folders:
        path = Path(folder)
        if path.is_dir():
            try:
                tok = _from_folder(path)
            except Exception as e:  # a broken folder is reported, not raised: the page still works
                return Gpt2Tokenizer(None, "", f"GPT-2's tokenizer in {path} could not be read ({type(e).__name__}).")
            if tok is not None:
                return Gpt2Tokenizer(tok, f"a local folder ({path})")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.constants import ENDPOINT
    except ImportError:
        return Gpt2Tokenizer(None, "", "GPT-2's tokenizer is not available: huggingface_hub is not installed.")
    try:  # a copy downloaded earlier
        return Gpt2Tokenizer(wrap(Tokenizer.from_file(hf_hub_download(GPT2_REPO, GPT2_FILE, local_files_only=True))),
                             "the Hugging Face cache")
    except Exception:
        pass
    missing = "GPT-2's tokenizer is not available offline: no local copy, and "
    if not hub or _hub_offline():
        return Gpt2Tokenizer(None, "", missing + "Hub downloads are switched off (HF_HUB_OFFLINE).")
    endpoint = endpoint or ENDPOINT
    if not _reachable(endpoint, timeout):
        return Gpt2Tokenizer(None, "", missing + "the Hugging Face Hub cannot be reached.")
    try:
        path = hf_hub_download(GPT2_REPO, GPT2_FILE, endpoint=endpoint, etag_timeout=timeout)
        return Gpt2Tokenizer(wrap(Tokenizer.from_file(path)), "the Hugging Face Hub")
    except Exception as e:
        return Gpt2Tokenizer(None, "", missing + f"the download from the Hub failed ({type(e).__name__}).")


@dataclass(frozen=True)
class TokenizerView:
    name: str  # shown as the panel's heading
    encoding: Encoding
    tokenizer: object  # what `engine.token_bytes` / `ui.chips_html` need for the hover text
    vocab_size: int


def compare(text: str, model_tokenizer, gpt2=None, show_whitespace: bool = True,
            others: Sequence[tuple[str, object]] = ()) -> list[TokenizerView]:
    """The text under characters, bytes, the model's BPE, (when given) GPT-2's BPE, then each of `others`
    (name, tokenizer): the tokenizers of the other models the server has loaded."""
    chars, raw = CharTokenizer(), ByteTokenizer()
    views = [
        TokenizerView(chars.name, chars.encode(text, show_whitespace), chars, chars.vocab_size),
        TokenizerView(raw.name, raw.encode(text, show_whitespace), raw, raw.vocab_size),
        TokenizerView("This model's BPE", encode(model_tokenizer, text, show_whitespace), model_tokenizer,
                      len(model_tokenizer)),
    ]
    if gpt2 is not None:
        views.append(TokenizerView("GPT-2's BPE", encode(gpt2, text, show_whitespace), gpt2, len(gpt2)))
    for name, tok in others:
        views.append(TokenizerView(name, encode(tok, text, show_whitespace), tok, len(tok)))
    return views


@dataclass(frozen=True)
class ContextFit:
    """How much of the model's context a text fills. The first position holds the <|endoftext|> start marker."""
    n_tokens: int  # tokens of the text
    block_size: int  # the model's context, in tokens

    @property
    def room(self) -> int:
        return max(0, self.block_size - 1)

    @property
    def fraction(self) -> float:
        """Share of the room the text fills; above 1 when it does not fit."""
        return self.n_tokens / self.room if self.room else float("inf")

    @property
    def dropped(self) -> int:
        """Tokens from the start of the text the model will not see."""
        return max(0, self.n_tokens - self.room)


def dropped_text(text: str, encoding: Encoding, n_dropped: int) -> str:
    """The part of `text` carried by its first `n_dropped` tokens: what the model will not see."""
    if n_dropped <= 0:
        return ""
    return text[: encoding.offsets[min(n_dropped, len(encoding)) - 1][1]]


def chars_per_token(text: str, n_tokens: int) -> float | None:
    """Characters (Unicode code points) per token; None for no tokens."""
    return len(text) / n_tokens if n_tokens else None
