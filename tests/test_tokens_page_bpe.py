"""engine/inspect/bpe_steps.py: the transparent BPE trainer agrees with the `tokenizers` library merge for merge, its
counts are the real pair frequencies, and splitting with the first k merges matches the library's BPE."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from tokenizers import pre_tokenizers

from engine import train_bpe
from engine.inspect.bpe_steps import BpeRun, base_vocab, build_tokenizer, train_steps
from ui.tokens.bpe import BUILT_IN, checkpoints, read_upload

TEXTS = {
    "fables": BUILT_IN,
    "repeats": "aaaa aaa abab abababab ba ba bab aaaaaaa\n" * 30,  # overlapping pairs: the tricky counting case
    "unicode": "Café naïve façade. 猫は暖かい窓辺で眠っています。 I love pizza 🍕🍕 and 👍🏽! " * 12,
    "code": "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i))\n" * 10,
}


def library_merges(text: str, vocab_size: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    model = json.loads(train_bpe([text], vocab_size)._tokenizer.to_str())["model"]
    return [tuple(m) for m in model["merges"]], model["vocab"]


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("vocab_size", [270, 600])
def test_merges_match_the_tokenizers_library(name: str, vocab_size: int) -> None:
    run = train_steps(TEXTS[name], vocab_size)
    merges, vocab = library_merges(TEXTS[name], vocab_size)
    assert [(run.vocab[m.left], run.vocab[m.right]) for m in run.merges] == merges
    assert {p: i for i, p in enumerate(run.vocab)} == vocab
    assert [m.rank for m in run.merges] == list(range(len(run.merges)))


def _pair_counts(text: str, run: BpeRun, k: int) -> Counter:
    """Adjacent-pair counts inside words after the first k merges, counted from scratch with the library."""
    tok = build_tokenizer(run.vocab, run.merges[:k])
    counts: Counter = Counter()
    for word, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text):
        ids = [t.id for t in tok.model.tokenize(word)]  # the word is already in byte-level form
        counts.update(zip(ids, ids[1:]))
    return counts


@pytest.mark.parametrize("name", ["fables", "repeats"])
def test_each_merge_is_the_most_frequent_pair_with_its_true_count(name: str) -> None:
    text = TEXTS[name]
    run = train_steps(text, 300)
    for m in run.merges[:12]:
        counts = _pair_counts(text, run, m.rank)
        assert counts[(m.left, m.right)] == m.count
        assert m.count == max(counts.values())
        assert run.vocab[m.new_id] == run.vocab[m.left] + run.vocab[m.right]


@pytest.mark.parametrize("name", TEXTS)
def test_splitting_after_k_merges_matches_the_library(name: str) -> None:
    run = train_steps(TEXTS[name], 500)
    sentence = "The tortoise and the hare, café 🍕, aaaa abab!\n    return 42"
    marks = [0, 1, 10, 100, len(run.merges)]
    splits, curve = run.splits(sentence, marks)
    for k in marks:
        if k > len(run.merges):
            continue
        expected = build_tokenizer(run.vocab, run.merges[:k]).encode(sentence, add_special_tokens=False).ids
        assert splits[k] == expected, k
        assert curve[k] == len(expected)
    assert curve[0] == len(sentence.encode("utf-8"))  # no merges: one token per byte
    assert all(a >= b for a, b in zip(curve, curve[1:]))  # a merge never adds tokens
    full = run.tokenizer()(sentence, add_special_tokens=False)["input_ids"]
    assert splits[len(run.merges)] == full


def test_stop_reasons_and_small_inputs() -> None:
    assert "vocabulary size" in train_steps(BUILT_IN, 260).stop_reason
    assert len(train_steps(BUILT_IN, 260).merges) == 260 - len(base_vocab())
    few = train_steps("ab ab cd", 1000)
    assert "2 times" in few.stop_reason
    assert [(few.vocab[m.left], few.vocab[m.right]) for m in few.merges] == [("a", "b")]  # "Ġab" occurs once
    empty = train_steps("", 1000)
    assert empty.merges == () and empty.n_words == 0
    assert train_steps("x", 10).merges == ()  # a vocabulary smaller than the bytes: nothing to learn
    with pytest.raises(ValueError):
        train_steps("abc", 0)


def test_time_limit_keeps_what_was_learned() -> None:
    run = train_steps(BUILT_IN, 4000, time_limit_s=0)
    assert "time limit" in run.stop_reason
    assert len(run.merges) <= 1


def test_progress_is_reported() -> None:
    seen = []
    run = train_steps(BUILT_IN, 400, progress=lambda done, wanted: seen.append((done, wanted)))
    assert seen[-1] == (len(run.merges), 400 - len(base_vocab()))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_display_pieces_are_readable() -> None:
    run = train_steps(TEXTS["unicode"], 400)
    shown = {run.piece(i) for i in range(len(run.vocab))}
    assert "␣" in shown and "<0xF0>" in shown
    assert not any("\ufffd" in s for s in shown)  # byte fragments are named, never a replacement character


def test_checkpoints() -> None:
    assert checkpoints(143, 10) == [0, 10, 100, 143]
    assert checkpoints(3839, 57) == [0, 10, 57, 100, 1000, 3839]
    assert checkpoints(5, 0) == [0, 5]


def test_read_upload_handles_hostile_files() -> None:
    # Outside a running app, the st.info messages read_upload draws are simply dropped.
    assert read_upload("héllo wörld".encode()) == "héllo wörld"
    assert read_upload("\ufeffwith a BOM".encode("utf-8")) == "with a BOM"
    assert read_upload(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") is None
    assert read_upload(b"\xff\xfe\xfa not utf-8") is None
    assert read_upload(b"   \n ") is None
