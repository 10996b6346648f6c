"""engine/inspect/compare_tokenizers.py: the character and byte tokenizers' counts and display forms, GPT-2 from a
local folder, a plain note (never an error) offline, and the counts the page shows."""
from __future__ import annotations

import json
import socket
import time

import pytest

import ui
from engine import encode, token_bytes
from engine.inspect.compare_tokenizers import (ByteTokenizer, CharTokenizer, ContextFit, chars_per_token, compare,
                                               dropped_text, load_gpt2_tokenizer)
from engine_fixtures import tokenizer


@pytest.fixture(autouse=True)
def empty_hf_cache(monkeypatch, tmp_path):
    """No test may find a GPT-2 that this machine happens to have in its Hugging Face cache."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.mark.parametrize("text, chars, raw", [
    ("hello", 5, 5),
    ("café", 4, 5),  # é is two bytes
    ("🍕", 1, 4),
    ("👍🏽", 2, 8),  # a thumb and a skin-tone modifier: two code points
    ("猫は", 2, 6),
    ("", 0, 0),
])
def test_character_and_byte_counts(text: str, chars: int, raw: int) -> None:
    assert len(CharTokenizer().encode(text)) == chars
    assert len(ByteTokenizer().encode(text)) == raw == len(text.encode())


def test_display_forms() -> None:
    assert CharTokenizer().encode("a b\n").tokens == ["a", "␣", "b", "↵"]
    assert CharTokenizer().encode("a b", show_whitespace=False).tokens == ["a", " ", "b"]
    assert CharTokenizer().encode("é🍕").tokens == ["é", "🍕"]
    assert ByteTokenizer().encode("é🍕").tokens == ["<0xC3>", "<0xA9>", "<0xF0>", "<0x9F>", "<0x8D>", "<0x95>"]
    assert ByteTokenizer().encode("é").ids == [0xC3, 0xA9]
    assert ByteTokenizer().encode("aé").offsets == [(0, 1), (1, 2), (1, 2)]  # both bytes point at é
    assert CharTokenizer().encode("🍕").ids == [0x1F355]
    assert CharTokenizer().encode("\x00").tokens == ["<U+0000>"]


def test_hover_bytes_of_char_and_byte_tokens() -> None:
    chars, raw = CharTokenizer(), ByteTokenizer()
    assert token_bytes(chars, ord("é")) == "é".encode()
    assert token_bytes(chars, 0x1F355) == "🍕".encode()
    assert token_bytes(raw, 0xF0) == b"\xf0"
    assert token_bytes(raw, ord(" ")) == b" "
    html = ui.chips.chips_html(*_ids_tokens(raw.encode("<b>é")), raw)
    assert "<b>" not in html and ">&lt;</span>" in html
    assert "bytes C3" in html  # the hover text of a byte chip names its byte


def _ids_tokens(enc):
    return enc.ids, enc.tokens


def test_compare_lists_every_tokenizer() -> None:
    tok = tokenizer()
    views = compare("Tom liked the red ball.", tok)
    assert [v.name for v in views] == ["Characters", "Bytes (UTF-8)", "This model's BPE"]
    assert [len(v.encoding) for v in views] == [23, 23, len(encode(tok, "Tom liked the red ball."))]
    assert len(compare("x", tok, gpt2=tok)) == 4


def test_gpt2_from_a_local_folder(tmp_path) -> None:
    folder = tmp_path / "gpt2-tokenizer"
    tokenizer().save_pretrained(str(folder))  # any byte-level BPE folder stands in for GPT-2's
    got = load_gpt2_tokenizer([tmp_path / "missing", folder], hub=False)
    assert got.tokenizer is not None and got.note is None
    assert "local folder" in got.source
    text = "Tom was happy again."
    assert encode(got.tokenizer, text).ids == encode(tokenizer(), text).ids


def test_gpt2_from_classic_vocab_and_merges(tmp_path) -> None:
    model = json.loads(tokenizer()._tokenizer.to_str())["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    merges = ["#version: 0.2"] + [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (tmp_path / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    got = load_gpt2_tokenizer([tmp_path], hub=False)
    assert got.tokenizer is not None
    text = "The sun was warm and the sky was blue."
    assert encode(got.tokenizer, text).ids == encode(tokenizer(), text).ids


def test_broken_local_folder_is_a_note(tmp_path) -> None:
    (tmp_path / "tokenizer.json").write_text("{ not json", encoding="utf-8")
    got = load_gpt2_tokenizer([tmp_path], hub=False)
    assert got.tokenizer is None and "could not be read" in got.note


def test_offline_is_a_one_line_note(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    got = load_gpt2_tokenizer([])
    assert got.tokenizer is None
    assert "not available offline" in got.note and "\n" not in got.note
    assert time.monotonic() - t0 < 30  # generous: only guards against the Hub client's retry loop


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_unreachable_hub_is_a_one_line_note(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    got = load_gpt2_tokenizer([], endpoint=f"http://127.0.0.1:{_closed_port()}", timeout=2)
    assert got.tokenizer is None
    assert "cannot be reached" in got.note and "\n" not in got.note


def test_context_fit() -> None:
    fit = ContextFit(100, 256)
    assert (fit.room, fit.dropped) == (255, 0)
    assert fit.fraction == pytest.approx(100 / 255)
    over = ContextFit(300, 256)
    assert over.dropped == 45 and over.fraction > 1
    assert ContextFit(255, 256).dropped == 0 and ContextFit(256, 256).dropped == 1


def test_dropped_text_and_ratio() -> None:
    tok = tokenizer()
    text = "Tom liked to play. The end."
    enc = encode(tok, text)
    assert dropped_text(text, enc, 0) == ""
    assert dropped_text(text, enc, 1) == text[: enc.offsets[0][1]]
    assert dropped_text(text, enc, len(enc)) == text
    assert chars_per_token(text, len(enc)) == pytest.approx(len(text) / len(enc))
    assert chars_per_token("", 0) is None

