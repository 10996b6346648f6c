"""Byte-level BPE, one merge at a time: a transparent trainer that records every merge (which pair, how often
it occurred, the new token), and a way to split text with only the first k merges.

It reproduces the `tokenizers` library's `BpeTrainer`, configured as `engine.model.tokenizer.train_bpe` does, merge
for merge (tests/test_tokens_page_bpe.py checks it against the library):
- the text is cut into words by the library's own GPT-2 byte-level pre-tokenizer, so the words are the same;
- the first vocabulary is `<|endoftext|>` then the 256 byte symbols in code-point order (the library's order);
- each step merges the most frequent adjacent pair, a tie going to the pair with the smaller ids;
- it stops at the vocabulary size, or when no pair occurs `min_frequency` times any more.
Pair counts are kept up to date incrementally, as the library does, so a 1 MB text trains in seconds.
"""
from __future__ import annotations

import heapq
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel
from transformers import PreTrainedTokenizerFast

from ..model.tokenizer import EOT, display_token, wrap

Pair = tuple[int, int]
Progress = Callable[[int, int], None]  # (merges done, merges wanted)
PROGRESS_EVERY = 50  # merges between progress reports


@dataclass(frozen=True)
class Merge:
    rank: int  # 0 for the first merge learned
    left: int  # token id of the pair's left part
    right: int  # token id of the pair's right part
    new_id: int  # token id of the merged token
    count: int  # how often the pair occurred in the training text when it was merged


@dataclass(frozen=True)
class BpeRun:
    """The outcome of training: the vocabulary (id -> byte-level piece, e.g. "Ġthe") and every merge."""
    vocab: tuple[str, ...]  # byte-level pieces, GPT-2's printable stand-ins for bytes ("Ġ" is a space)
    merges: tuple[Merge, ...]  # in the order learned
    n_words: int  # words in the training text, as the pre-tokenizer cut it
    n_distinct_words: int
    stop_reason: str  # why training stopped, in words
    _cache: dict = field(default_factory=dict, compare=False, repr=False)  # the wrapped tokenizer, built once

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The trained vocabulary as a regular `tokenizers` BPE (all merges), wrapped like the model's own."""
        if "tok" not in self._cache:
            self._cache["tok"] = wrap(build_tokenizer(self.vocab, self.merges))
        return self._cache["tok"]

    def piece(self, token_id: int) -> str:
        """Display form of a token (visible whitespace, byte fragments as <0xNN>)."""
        return display_token(self.tokenizer(), token_id)

    def splits(self, text: str, checkpoints: Sequence[int]) -> tuple[dict[int, list[int]], list[int]]:
        """Token ids of `text` after each number of merges in `checkpoints`, and the token count after
        0, 1, ..., len(merges) merges (the compression curve).

        Merges are applied in the order learned, each to every occurrence: that is exactly BPE encoding with
        the first k merges, since a pair that uses a token only appears after the merge that made it.
        """
        words = [[self.index[ch] for ch in w] for w, _ in _pre_tokenizer().pre_tokenize_str(text)]
        wanted = set(checkpoints)
        out: dict[int, list[int]] = {}
        total = sum(len(w) for w in words)
        curve = [total]
        if 0 in wanted:
            out[0] = [i for w in words for i in w]
        for k, m in enumerate(self.merges, start=1):
            for w in words:
                total -= _merge_word(w, m.left, m.right, m.new_id, None)
            curve.append(total)
            if k in wanted:
                out[k] = [i for w in words for i in w]
        return out, curve

    @property
    def index(self) -> dict[str, int]:
        if "index" not in self._cache:
            self._cache["index"] = {p: i for i, p in enumerate(self.vocab)}
        return self._cache["index"]


def _pre_tokenizer() -> pre_tokenizers.ByteLevel:
    return pre_tokenizers.ByteLevel(add_prefix_space=False)


def base_vocab() -> list[str]:
    """<|endoftext|> then the 256 byte symbols, ordered by code point as the library's trainer orders them."""
    return [EOT, *sorted(ByteLevel.alphabet())]


def _merge_word(symbols: list[int], a: int, b: int, new: int, changes: list[tuple[Pair, int]] | None) -> int:
    """Merge every (a, b) in `symbols` in place, left to right; return how many merges happened.

    When `changes` is given, append the pair-count changes this causes, as the library's `Word::merge` does:
    the neighbours' old pairs lose one, the pairs they form with the new token gain one.
    """
    out: list[int] = []
    i, n = 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == a and symbols[i + 1] == b:
            if changes is not None:
                if out:  # the left neighbour, possibly a token this very call just made
                    changes += [((out[-1], a), -1), ((out[-1], new), 1)]
                if i + 2 < n:
                    changes += [((b, symbols[i + 2]), -1), ((new, symbols[i + 2]), 1)]
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    done = n - len(out)
    symbols[:] = out  # one rebuild per word: merging in place would move the tail once per occurrence
    return done


def train_steps(text: str, vocab_size: int, min_frequency: int = 2, progress: Progress | None = None,
                time_limit_s: float | None = None) -> BpeRun:
    """Train byte-level BPE on `text` up to `vocab_size` tokens, recording every merge.

    `progress(done, wanted)` is called every few merges (for a progress bar). With `time_limit_s`, training
    stops early once that much time has passed (a text of very long "words", such as one without any spaces,
    makes every merge slow); the merges learned so far are kept and the stop reason says so.
    """
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    vocab = base_vocab()
    index = {p: i for i, p in enumerate(vocab)}
    word_counts = Counter(w for w, _ in _pre_tokenizer().pre_tokenize_str(text))
    words = [[index[ch] for ch in w] for w in word_counts]  # each distinct word as symbol ids
    counts = list(word_counts.values())  # how often each distinct word occurs

    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> words that contain (or once contained) it
    for wi, (w, n) in enumerate(zip(words, counts)):
        for pair in zip(w, w[1:]):
            pair_counts[pair] += n
            where[pair].add(wi)
    # A max-heap by count, smaller pair first on ties, as (-count, pair). Entries can go stale as counts
    # fall; a stale entry is corrected when it reaches the top, as the library does.
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[Merge] = []
    wanted = max(0, vocab_size - len(vocab))
    stop = f"reached the vocabulary size of {vocab_size:,}"
    while len(vocab) < vocab_size:
        if not heap:
            stop = "every word is a single token: nothing is left to merge"
            break
        neg, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if -neg != count:
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        if count < max(1, min_frequency):
            stop = f"no pair occurs {min_frequency} times any more"
            break
        if deadline is not None and time.monotonic() > deadline:
            stop = f"the time limit of {time_limit_s:g} seconds ran out (the merges learned so far are kept)"
            break
        a, b = pair
        piece = vocab[a] + vocab[b]
        new = index.get(piece)
        if new is None:  # two merge paths can spell the same token; then it keeps its first id
            new = len(vocab)
            vocab.append(piece)
            index[piece] = new
        merges.append(Merge(len(merges), a, b, new, count))

        fresh: set[Pair] = set()
        for wi in list(where[pair]):
            changes: list[tuple[Pair, int]] = []
            _merge_word(words[wi], a, b, new, changes)
            for p, delta in changes:
                pair_counts[p] += delta * counts[wi]
                if delta > 0:
                    where[p].add(wi)
                    fresh.add(p)
        del pair_counts[pair], where[pair]  # gone everywhere, and no later merge can make it again
        for p in fresh:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
        if progress and len(merges) % PROGRESS_EVERY == 0:
            progress(len(merges), wanted)
    if progress:
        progress(len(merges), wanted)
    return BpeRun(tuple(vocab), tuple(merges), sum(counts), len(words), stop)


def build_tokenizer(vocab: Sequence[str], merges: Sequence[Merge]) -> Tokenizer:
    """A `tokenizers` byte-level BPE with this vocabulary and these merges (its split is the library's)."""
    model = models.BPE({p: i for i, p in enumerate(vocab)}, [(vocab[m.left], vocab[m.right]) for m in merges])
    tok = Tokenizer(model)
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    return tok
