"""Training data: documents streamed from text files into flat files of token ids, read back through
memory maps, so a large corpus never becomes a Python list in memory.

Corpora follow the format of ../shared/data: plain UTF-8, each document followed by a line that is
exactly `<|endoftext|>`. A file without such lines is one document.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..model.tokenizer import EOT

CHUNK_DOCS = 256  # documents tokenized per batch call


def iter_documents(path: str | Path) -> Iterator[str]:
    """Yield the documents of a corpus file one at a time (streamed line by line)."""
    lines: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.rstrip("\r\n") == EOT:
                doc = "".join(lines).strip("\n")
                if doc.strip():
                    yield doc
                lines = []
            else:
                lines.append(line)
    doc = "".join(lines).strip("\n")
    if doc.strip():
        yield doc


def split_documents(text: str) -> list[str]:
    """The documents of an in-memory text (pasted or uploaded), in the same format."""
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == EOT:
            docs.append("".join(cur).strip("\n"))
            cur = []
        else:
            cur.append(line)
    docs.append("".join(cur).strip("\n"))
    return [d for d in docs if d.strip()]


def doc_hash(doc: str) -> str:
    return hashlib.sha1(" ".join(doc.split()).encode()).hexdigest()


def tokenize_documents(docs: Iterable[str], tokenizer, out: str | Path) -> int:
    """Write `<|endoftext|> doc <|endoftext|> doc ...` as uint16 (or uint32) ids to `out`; return the count."""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    dtype = np.uint16 if len(tokenizer) < 2**16 else np.uint32
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    n = 0
    with open(tmp, "wb") as f:
        batch: list[str] = []

        def flush() -> int:
            ids: list[int] = []
            for enc in tokenizer(batch, add_special_tokens=False)["input_ids"]:
                ids.append(eot)
                ids.extend(enc)
            np.asarray(ids, dtype=dtype).tofile(f)
            batch.clear()
            return len(ids)

        for doc in docs:
            batch.append(doc)
            if len(batch) >= CHUNK_DOCS:
                n += flush()
        if batch:
            n += flush()
    tmp.replace(out)
    return n


def load_ids(path: str | Path, vocab_size: int) -> np.ndarray:
    """Memory-map a token file written by `tokenize_documents`."""
    dtype = np.uint16 if vocab_size < 2**16 else np.uint32
    return np.memmap(path, dtype=dtype, mode="r")


@dataclass
class Source:
    ids: np.ndarray  # flat token ids (a memmap, or an array for small in-memory corpora)
    weight: float  # relative share of training windows drawn from this source
    name: str = ""


class Batches:
    """Random windows of block_size + 1 tokens from weighted sources, drawn with a seedable generator."""

    def __init__(self, sources: list[Source], block_size: int, batch_size: int, seed: int = 0):
        usable = [s for s in sources if len(s.ids) > block_size + 1 and s.weight > 0]
        if not usable:
            longest = max((len(s.ids) for s in sources), default=0)
            raise ValueError(f"the corpus has {longest} tokens, fewer than one context window "
                             f"({block_size + 1} tokens are needed)")
        self.sources, self.block_size, self.batch_size = usable, block_size, batch_size
        w = torch.tensor([s.weight for s in usable], dtype=torch.float64)
        self.weights = w / w.sum()
        self.generator = torch.Generator().manual_seed(seed)

    def next(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A batch (x, y), both [batch, block_size] int64, y shifted by one."""
        g, T = self.generator, self.block_size
        which = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=g)
        rows = []
        for si in which.tolist():
            ids = self.sources[si].ids
            start = int(torch.randint(0, len(ids) - T - 1, (1,), generator=g))
            rows.append(np.asarray(ids[start:start + T + 1], dtype=np.int64))
        xy = torch.from_numpy(np.stack(rows))
        x, y = xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
        if torch.device(device).type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
