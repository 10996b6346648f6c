"""Training text for the Train page: the built-in stories, pasted text, an uploaded .txt file, or a
public-domain book fetched from Project Gutenberg by its number; and turning any of them into token ids
split into training and held-out parts.

Every source is capped in size and checked, and every failure is a `CorpusError` whose message is one plain
sentence that can go straight into the page.
"""
from __future__ import annotations

import hashlib
import re
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model.tokenizer import EOT, train_bpe
from .data import load_ids, split_documents, tokenize_documents
from .stories import SOURCE as STORIES_SOURCE
from .stories import stories_text

MAX_CHARS = 8_000_000  # the most text a run trains on (a long novel is about 1 MB)
MAX_UPLOAD_BYTES = 10_000_000  # an uploaded .txt file
MAX_BOOK_BYTES = 8_000_000  # a Gutenberg download (the longest novels are about 5 MB)
GUTENBERG_URL = "https://www.gutenberg.org"  # base URL; tests pass a local server instead
GUTENBERG_TIMEOUT_S = 10.0
MIN_VOCAB = 260  # 256 bytes, <|endoftext|> and a few merges
HELDOUT_FRACTION = 0.05  # share of the corpus kept out of training to measure the held-out loss
MIN_DOCS_FOR_DOC_SPLIT = 20  # with fewer documents, the held-out part is the corpus's last tokens instead
MIN_HELDOUT_TOKENS = 1024  # enough held-out text for a context of 512 (when the corpus has it)
BUILTIN_STORIES = 4000

OFFLINE = ("Project Gutenberg could not be reached (this server seems to be offline): use the built-in "
           "stories, paste text or upload a .txt file instead.")


class CorpusError(ValueError):
    """Text that cannot be trained on; the message says why, in one plain sentence."""


@dataclass(frozen=True)
class Corpus:
    text: str  # documents separated by `<|endoftext|>` lines (a text without them is one document)
    name: str  # short label, e.g. "Built-in stories"
    source: str  # one line: where the text came from

    @property
    def fingerprint(self) -> str:
        """A short hash of the text: the same text prepared once is reused."""
        return hashlib.sha1(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def documents(self) -> list[str]:
        return split_documents(self.text)


def checked(text: str, name: str, source: str) -> Corpus:
    """A Corpus from `text`, refusing empty text and cutting text over MAX_CHARS (the source says so)."""
    text = text.replace("\r\n", "\n").replace("\x00", "")
    if not text.strip() or not split_documents(text):
        raise CorpusError(f"{name} is empty: there is no text to train on.")
    if len(text) > MAX_CHARS:
        source += f" Only the first {MAX_CHARS:,} of its {len(text):,} characters are used."
        text = text[:MAX_CHARS]
    return Corpus(text, name, source)


def builtin_stories(n: int = BUILTIN_STORIES) -> Corpus:
    return Corpus(stories_text(n), "Built-in stories", f"{n:,} stories. {STORIES_SOURCE}")


def from_pasted(text: str) -> Corpus:
    return checked(text, "The pasted text", "Text pasted into the page.")


def decode_text_file(data: bytes, name: str = "the file") -> str:
    """Bytes of a .txt file as text: UTF-8 (with or without a byte-order mark), else Windows-1252.

    Refuses anything over MAX_UPLOAD_BYTES and anything that looks binary (NUL bytes in UTF-8 text).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise CorpusError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{name} is not a text file (it holds binary data).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # old Windows text files, the usual non-UTF-8 case


def from_upload(data: bytes, filename: str) -> Corpus:
    label = f"The file {filename}"
    return checked(decode_text_file(data, label), label, f"Uploaded file {filename} ({len(data):,} bytes).")


_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)


def strip_gutenberg(text: str) -> str:
    """The book without Project Gutenberg's licence header and footer (kept as is when they are absent)."""
    start, end = _START.search(text), _END.search(text)
    if start and end and end.start() > start.end():
        return text[start.end():end.start()].strip("\n")
    if start:
        return text[start.end():].strip("\n")
    return text


def fetch_gutenberg(number: int, base_url: str = GUTENBERG_URL, timeout: float = GUTENBERG_TIMEOUT_S,
                    max_bytes: int = MAX_BOOK_BYTES) -> Corpus:
    """Download Project Gutenberg book `number` as plain text (its licence header and footer removed)."""
    if not 1 <= int(number) <= 10_000_000:
        raise CorpusError("A Project Gutenberg book number is a whole number, e.g. 11 for Alice in Wonderland.")
    url = f"{base_url.rstrip('/')}/cache/epub/{int(number)}/pg{int(number)}.txt"
    request = urllib.request.Request(url, headers={"User-Agent": "Glassbox (educational)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)  # never more than the cap, whatever the server says
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise CorpusError(f"Project Gutenberg has no plain-text book number {number}.") from None
        raise CorpusError(f"Project Gutenberg answered with an error ({e.code}); try again later.") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError):
        raise CorpusError(OFFLINE) from None
    if len(data) > max_bytes:
        raise CorpusError(f"Book {number} is larger than {max_bytes / 1e6:.0f} MB, the limit for a download.")
    text = strip_gutenberg(decode_text_file(data, f"Book {number}"))
    title = re.search(r"^Title: *(.+)$", data[:4000].decode("utf-8", "replace"), re.MULTILINE)
    name = f"Project Gutenberg book {number}" + (f" ({title.group(1).strip()})" if title else "")
    return checked(text, name, f"{name}, public domain in the USA, downloaded from {url}.")


@dataclass(frozen=True)
class Prepared:
    """A corpus as token ids, ready for `engine.train.data.Batches` (check it against the context first)."""
    train_ids: np.ndarray  # flat token ids, documents separated by <|endoftext|>
    val_ids: np.ndarray  # held-out ids, never trained on
    tokenizer: object  # a transformers PreTrainedTokenizerFast
    heldout: str  # how the held-out part was chosen, in words
    n_chars: int
    corpus_name: str = ""
    corpus_source: str = ""

    @property
    def n_tokens(self) -> int:
        return len(self.train_ids) + len(self.val_ids)

    def check(self, block_size: int) -> None:
        """CorpusError unless both parts hold a window of `block_size` + 1 tokens to train and measure on."""
        need = block_size + 2  # Batches draws windows of block_size + 1 tokens, starting before the end
        if len(self.train_ids) < need or len(self.val_ids) < need:
            raise CorpusError(
                f"{self.corpus_name or 'The text'} is too short for a context of {block_size:,} tokens: it has "
                f"{self.n_tokens:,} tokens and needs at least {2 * need:,} (a window to train on and one held "
                "out to measure). Add text or shorten the context.")


def make_tokenizer(corpus: Corpus, vocab_size: int):
    """A byte-level BPE trained on the corpus: small vocabularies make small models train fast."""
    if vocab_size < MIN_VOCAB:
        raise CorpusError(f"A vocabulary needs at least {MIN_VOCAB} tokens (256 bytes plus a few merges).")
    return train_bpe(corpus.documents(), vocab_size)


def _ids(docs: list[str], tokenizer) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="glassbox-corpus-") as tmp:
        path = Path(tmp) / "ids.bin"
        tokenize_documents(docs, tokenizer, path)
        return np.array(load_ids(path, len(tokenizer)))  # a copy in memory: the file goes with the folder


def prepare(corpus: Corpus, tokenizer) -> Prepared:
    """Token ids split into training and held-out parts.

    With many documents whole documents are held out (the last 5 %); with few (one book, one pasted text)
    or short ones, the last 5 % of the tokens (at least MIN_HELDOUT_TOKENS, at most half the text).
    """
    docs = corpus.documents()
    if not docs:
        raise CorpusError(f"{corpus.name} is empty: there is no text to train on.")
    if EOT not in tokenizer.get_vocab():
        raise CorpusError(f"The tokenizer has no {EOT} token to separate documents with.")
    train = val = None
    if len(docs) >= MIN_DOCS_FOR_DOC_SPLIT:
        n_val = max(1, int(len(docs) * HELDOUT_FRACTION))
        train, val = _ids(docs[:-n_val], tokenizer), _ids(docs[-n_val:], tokenizer)
        heldout = f"the last {n_val:,} of {len(docs):,} documents"
    if val is None or len(val) < MIN_HELDOUT_TOKENS:
        ids = _ids(docs, tokenizer)
        n_val = max(int(len(ids) * HELDOUT_FRACTION), min(MIN_HELDOUT_TOKENS, len(ids) // 2))
        train, val = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
        heldout = f"the last {n_val:,} tokens"
    return Prepared(train, val, tokenizer, heldout, sum(len(d) for d in docs), corpus.name, corpus.source)
