"""The tokenizer: display forms that make invisible things visible (and never draw U+FFFD), offsets into the
original text, lossless round trips over hard Unicode, and saved tokenizers that load back in both libraries."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from engine import EOT, display_bytes, display_token, encode, load_tokenizer, token_bytes
from engine_fixtures import VOCAB, tokenizer

HARD_TEXTS = [
    "Tom was sad.",
    " leading and trailing spaces  ",
    "line one\nline two\r\nline three\n\n",
    "tab\there",
    "emoji 🙂 and family 👨‍👩‍👧 and flag 🇫🇷",
    "CJK 我爱我的猫。日本語のテキスト",
    "Hebrew שלום עולם and Arabic مرحبا بالعالم",
    "combining e\u0301 a\u0308 Z̤͔ͧ̑̓",
    "NUL \x00 bell \x07 escape \x1b delete \x7f",
    "bidi \u202eevil\u202c zero width \u200b joiner \u200d",
    "mixed: Tom 🙂猫 ש\n\x00",
    "\ufffd already a replacement char",
    "x",
]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


# --- display forms --------------------------------------------------------------------------------------------

def test_leading_space_and_newline_are_visible(tok):
    assert encode(tok, "Tom was").tokens == ["Tom", "␣was"]
    assert "↵" in encode(tok, "a\nb").tokens
    assert encode(tok, "a\tb\r").tokens == ["a", "⇥", "b", "␍"]


@pytest.mark.parametrize("text,expected", [
    ("🙂", ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]),
    ("猫", ["<0xE7>", "<0x8C>", "<0xAB>"]),
    ("ש", ["<0xD7>", "<0xA9>"]),
])
def test_fragments_of_a_character_show_as_bytes(tok, text, expected):
    # This small vocabulary holds no merges for these characters, so each byte is its own token.
    assert encode(tok, text).tokens == expected


@pytest.mark.parametrize("data,expected", [
    (" cat".encode(), "␣cat"),
    (b"\n", "↵"),
    (b"\t", "⇥"),
    (b"\r\n", "␍↵"),
    ("🙂".encode(), "🙂"),
    ("猫".encode(), "猫"),
    ("🙂".encode()[:2], "<0xF0><0x9F>"),
    ("🙂".encode()[1:], "<0x9F><0x99><0x82>"),
    (b"a\xffb", "a<0xFF>b"),
    (b"\xc0\xaf", "<0xC0><0xAF>"),  # an overlong encoding is bytes, not a character
    (b"\x00", "<U+0000>"),
    (b"\x07", "<U+0007>"),
    (b"\x1b", "<U+001B>"),
    (b"\x7f", "<U+007F>"),
    ("\u202e".encode(), "<U+202E>"),
    ("\u200b".encode(), "<U+200B>"),
    (b"", ""),
])
def test_display_bytes(data, expected):
    assert display_bytes(data) == expected


def test_whitespace_can_be_shown_plain():
    assert display_bytes(b" a\nb", show_whitespace=False) == " a\nb"
    assert display_bytes(b"\x00", show_whitespace=False) == "<U+0000>"


def test_every_token_has_a_printable_display_form_without_u_fffd(tok):
    assert len(tok) == VOCAB
    for i in range(len(tok)):
        shown = display_token(tok, i)
        assert shown and shown.isprintable(), (i, shown)
        assert "\ufffd" not in shown, (i, shown)
    assert display_token(tok, tok.convert_tokens_to_ids(EOT)) == EOT


@pytest.mark.parametrize("text", HARD_TEXTS[4:11])
def test_encoded_display_never_holds_u_fffd_or_raw_controls(tok, text):
    for shown in encode(tok, text).tokens:
        assert "\ufffd" not in shown and shown.isprintable()


def test_empty_text_has_no_tokens(tok):
    enc = encode(tok, "")
    assert enc.ids == [] and enc.tokens == [] and enc.offsets == [] and len(enc) == 0


# --- offsets and round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", HARD_TEXTS)
def test_offsets_index_the_original_text(tok, text):
    enc = encode(tok, text)
    assert len(enc.ids) == len(enc.tokens) == len(enc.offsets)
    spans: list[tuple[int, int]] = []
    for span in enc.offsets:
        if spans and span == spans[-1]:
            continue  # byte fragments of one character share its span
        assert span[0] == (spans[-1][1] if spans else 0) and span[1] > span[0], (text, enc.offsets)
        spans.append(span)
    assert "".join(text[s:e] for s, e in spans) == text
    # Tokens sharing a span hold exactly that span's bytes.
    for s, e in spans:
        data = b"".join(token_bytes(tok, i) for i, o in zip(enc.ids, enc.offsets) if o == (s, e))
        assert data == text[s:e].encode()


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_decode_encode_round_trips(tok, text):
    ids = encode(tok, text).ids
    assert tok.decode(ids) == text
    assert b"".join(token_bytes(tok, i) for i in ids) == text.encode("utf-8")


def test_the_end_of_text_marker_is_one_special_token(tok):
    assert tok.convert_tokens_to_ids(EOT) == 0
    assert token_bytes(tok, 0) == EOT.encode()


# --- saving and loading ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tok, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(folder)
    return folder


def test_saved_tokenizer_loads_with_the_same_ids(tok, saved):
    loaded = load_tokenizer(saved)
    assert len(loaded) == len(tok)
    for text in HARD_TEXTS:
        assert encode(loaded, text) == encode(tok, text)
    assert loaded.decode(loaded.encode(HARD_TEXTS[4])) == HARD_TEXTS[4]


def test_saved_tokenizer_loads_in_transformers(tok, saved):
    auto = AutoTokenizer.from_pretrained(saved)
    for text in HARD_TEXTS:
        assert auto(text, add_special_tokens=False)["input_ids"] == encode(tok, text).ids
    assert auto.eos_token == EOT and auto.bos_token == EOT


def test_load_tokenizer_of_a_missing_folder_raises_without_going_online(tmp_path):
    with pytest.raises(OSError):
        load_tokenizer(tmp_path / "nothing here")


def test_sentencepiece_pieces_show_as_text():
    """Llama 2-style vocabularies (not byte-level) write a space as "▁" and unknown bytes as <0xNN> pieces."""
    from engine.model.tokenizer import _piece_bytes
    assert _piece_bytes("▁the", set()) == b" the"
    assert _piece_bytes("<0x0A>", set()) == b"\n"
    assert _piece_bytes("Ġthe", set()) == b" the"  # GPT-2's byte-level form is unchanged
