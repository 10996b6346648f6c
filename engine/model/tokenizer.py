"""Byte-level BPE tokenizers: training with the `tokenizers` library, loading as a transformers
`PreTrainedTokenizerFast`, and a readable display form for every token.

Display forms make invisible things visible: a leading space shows as "␣", a newline as "↵", a tab as "⇥",
and bytes that are only part of a UTF-8 character show as `<0xF0>` (never as U+FFFD).
"""
from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel
from transformers import PreTrainedTokenizerFast

from .families import FAMILIES
from .files import TOKENIZER

EOT = "<|endoftext|>"
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on `texts`; id 0 is the special `<|endoftext|>`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT],
        initial_alphabet=ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=None,
                                   model_max_length=10**9, clean_up_tokenization_spaces=False)


GPT2_PAIR = ("vocab.json", "merges.txt")  # GPT-2's tokenizer as its older repos ship it, without tokenizer.json
# Where the pair means GPT-2's byte-level BPE and its splitting expression (each family says; Qwen2 ships a
# pair too, but splits text with its own expression).
PAIR_FAMILIES = tuple(f.key for f in FAMILIES.values() if f.gpt2_pair)


def missing_tokenizer(names: Iterable[str], family: str | None) -> str | None:
    """Why a folder (or repo) with these file names has no tokenizer Glassbox can load, or None. `family`
    None: not known yet (a repo before its config is read), so GPT-2's pair is taken on trust."""
    names = set(names)
    if TOKENIZER in names:
        return None
    pair_ok = family is None or family in PAIR_FAMILIES
    if pair_ok and set(GPT2_PAIR) <= names:
        return None
    return "tokenizer.json is missing" + (" (GPT-2's vocab.json and merges.txt would also do)" if pair_ok else "")


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """Load tokenizer files from a local folder (never runs remote code): tokenizer.json, or else GPT-2's
    vocab.json and merges.txt (byte-level BPE with GPT-2's splitting; `missing_tokenizer` says where that
    holds)."""
    folder = Path(folder)
    if not (folder / TOKENIZER).is_file() and all((folder / n).is_file() for n in GPT2_PAIR):
        from transformers import GPT2Tokenizer  # the class is named: no tokenizer_class or auto_map is followed
        tok = GPT2Tokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        tok = PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    for how_it_was_loaded in ("local_files_only", "is_local"):  # else save_pretrained writes them into the config
        tok.init_kwargs.pop(how_it_was_loaded, None)
    return tok


def start_id(tokenizer) -> int:
    """The id a text starts with in a forward pass: <|endoftext|> where the vocabulary has it (GPT-2, ours,
    Pythia, Qwen), else the tokenizer's beginning-of-text token (Llama's <|begin_of_text|>), else its end one."""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    if isinstance(eot, int) and tokenizer.convert_ids_to_tokens(eot) == EOT:
        return eot
    for special in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(special, int):
            return special
    raise ValueError("the tokenizer has no start token (<|endoftext|>, a BOS or an EOS token)")


MAX_ADDED_TOKENS = 256  # ours writes one (<|endoftext|>)


def _type(node: object) -> str | None:
    return str(node.get("type"))[:40] if isinstance(node, dict) else None


def _kind(node: object, what: str) -> str:
    """'a Split pre-tokenizer', 'no pre-tokenizer': for messages."""
    return f"a {_type(node)} {what}" if _type(node) is not None else f"no {what}"


def _regexes_in(data: object) -> list[str]:
    """Every `{"Regex": ...}` pattern anywhere in the JSON (iterative: the file may be deeply nested)."""
    out, stack = [], [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "Regex" in node:
                out.append(str(node["Regex"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


# The splitting expressions Glassbox knows to be safe, exactly as tokenizer.json files hold them (a Split
# pre-tokenizer's {"Regex": ...}). Each is alternatives of character classes and fixed words with no repeated
# group, so the tokenizers library's backtracking engine runs it in time linear in the text. Every other
# expression is refused: no structural check tells all those that backtrack for minutes (`(a|aa)+$`, `(a|a)*$`)
# from the rest. Tokenizers with a ByteLevel pre-tokenizer and no Split (GPT-2, GPT-Neo, Pythia and GPT-NeoX,
# SmolLM2 and StarCoder, ours) hold no expression at all: the library's built-in one is GPT-2's.
SAFE_PATTERNS = {
    # GPT-2's, the tokenizers library's ByteLevel expression, written out by some GPT-2-style converters
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""": "GPT-2",
    # GPT-4's cl100k, as Llama 3 and 3.x and transformers' tiktoken converter write it (digits in threes)
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""":
        "Llama 3 (GPT-4's cl100k)",
    # Qwen2, Qwen2.5 and Qwen3 (one digit a piece)
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""":
        "Qwen2",
    # Qwen3.5 (combining marks kept with their letters)
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""":
        "Qwen3.5",
}


def check_tokenizer_patterns(raw: bytes) -> None:
    """Refuse a tokenizer.json that holds a regular expression other than the SAFE_PATTERNS (ValueError, one
    line): an unknown one can backtrack for minutes on a short text. For models from a folder or the Hub;
    uploads get the stricter `check_tokenizer_json`."""
    try:
        data = json.loads(raw)
    except (RecursionError, UnicodeDecodeError, ValueError):
        raise ValueError("tokenizer.json is not valid JSON.") from None
    for pattern in _regexes_in(data):
        if pattern not in SAFE_PATTERNS:
            raise ValueError(f"tokenizer.json splits text with a regular expression that is not one Glassbox knows "
                             f"to be safe ({pattern[:60]!r}; it takes those of GPT-2, Llama 3 and Qwen), and an "
                             "unknown one can take minutes on a short text, so Glassbox does not load it.")


def _regex_in(data: object) -> str | None:
    """The first `{"Regex": ...}` pattern anywhere in the JSON (iterative: the file may be deeply nested)."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "Regex" in node:
                return str(node["Regex"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def check_tokenizer_json(raw: bytes, max_vocab: int) -> None:
    """Refuse a tokenizer.json that is not a byte-level BPE as `train_bpe` (and GPT-2) write it, before the
    tokenizers library builds it: a regular expression can take minutes on a short text (`(a+)+$` on
    "aaaa...!" backtracks), and a huge vocabulary takes a minute and a gigabyte to load.

    Raises ValueError with one plain sentence. Checks the JSON only; building and using it is the caller's.
    """
    try:
        data = json.loads(raw)
    except RecursionError:  # Python's parser recurses once per level
        raise ValueError("tokenizer.json is nested too deeply to be a tokenizer.") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"tokenizer.json is not valid JSON ({str(e)[:200]}).") from None
    if not isinstance(data, dict):
        raise ValueError("tokenizer.json must hold a JSON object.")
    pattern = _regex_in(data)
    if pattern is not None:
        raise ValueError(f"tokenizer.json holds a regular expression ({pattern[:60]!r}), which can make splitting "
                         "a short text take minutes; Glassbox takes byte-level BPE tokenizers, whose only pattern is "
                         "built in, as its own trainer writes them.")
    ours = "as its own trainer writes them"
    pre, model = data.get("pre_tokenizer"), data.get("model")
    if _type(pre) != "ByteLevel":
        raise ValueError(f"tokenizer.json splits text with {_kind(pre, 'pre-tokenizer')}; Glassbox takes byte-level "
                         f"BPE tokenizers (a ByteLevel pre-tokenizer), {ours}.")
    for field in ("normalizer", "truncation", "padding"):
        if data.get(field) is not None:
            raise ValueError(f"tokenizer.json sets a {field}; Glassbox takes byte-level BPE tokenizers without one, "
                             f"{ours}.")
    if _type(data.get("decoder")) not in (None, "ByteLevel"):
        raise ValueError(f"tokenizer.json has {_kind(data.get('decoder'), 'decoder')}; Glassbox takes byte-level "
                         f"BPE tokenizers (a ByteLevel decoder), {ours}.")
    if _type(data.get("post_processor")) not in (None, "ByteLevel", "TemplateProcessing"):
        raise ValueError(f"tokenizer.json has {_kind(data.get('post_processor'), 'post-processor')}; Glassbox "
                         f"takes byte-level BPE tokenizers, {ours}.")
    if _type(model) != "BPE":
        raise ValueError(f"tokenizer.json holds {_kind(model, 'model')}; Glassbox takes byte-level BPE tokenizers, "
                         f"{ours}.")
    if model.get("dropout") not in (None, 0, 0.0):
        raise ValueError("tokenizer.json sets BPE dropout, which splits the same text differently every time; "
                         "Glassbox takes tokenizers without it.")
    vocab, merges, added = model.get("vocab"), model.get("merges"), data.get("added_tokens") or []
    if not isinstance(vocab, dict) or not isinstance(merges, list) or not isinstance(added, list):
        raise ValueError("tokenizer.json's vocabulary, merges or added tokens are not in the expected form.")
    for what, n, limit in (("tokens", len(vocab), max_vocab), ("merges", len(merges), max_vocab),
                           ("added tokens", len(added), MAX_ADDED_TOKENS)):
        if n > limit:
            raise ValueError(f"The tokenizer has {n:,} {what}; Glassbox takes tokenizers with up to {limit:,}.")
    ids = sorted(i for i in vocab.values() if isinstance(i, int) and not isinstance(i, bool))
    if ids != list(range(len(vocab))):  # the library accepts gaps and repeats, then hands out ids the model lacks
        raise ValueError("tokenizer.json's token ids are not 0, 1, 2, ... one per token.")


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    # GPT-2's reversible map from bytes to printable characters, inverted.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_FALLBACK = re.compile(r"<0x[0-9A-F]{2}>")


def _piece_bytes(piece: str | None, specials: set[str]) -> bytes:
    if piece is None:
        return b""
    if piece in specials:
        return piece.encode()
    if _BYTE_FALLBACK.fullmatch(piece):  # SentencePiece's byte fallback (Llama 2's vocabulary): one raw byte
        return bytes([int(piece[3:5], 16)])
    table = _unicode_to_byte()
    if all(ch in table for ch in piece):
        return bytes(table[ch] for ch in piece)
    # A vocabulary that is not byte-level: its pieces are text already; SentencePiece writes a space as "▁".
    return piece.replace("\u2581", " ").encode()


# Bytes of every id, built once per tokenizer (vocabularies are fixed once loaded); weak keys let a
# tokenizer that is no longer used be freed with its table.
_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bytes_table(tokenizer: PreTrainedTokenizerFast) -> list[bytes]:
    table = _BYTES.get(tokenizer)
    if table is None or len(table) != len(tokenizer):
        specials = set(tokenizer.all_special_tokens)
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        table = [_piece_bytes(p, specials) for p in pieces]
        _BYTES[tokenizer] = table
    return table


def token_bytes(tokenizer: PreTrainedTokenizerFast, token_id: int) -> bytes:
    """The raw bytes a token stands for (special tokens: their text, UTF-8)."""
    i = int(token_id)
    try:
        table = _bytes_table(tokenizer)
    except TypeError:  # a stand-in tokenizer (no len, no weak references): look the piece up directly
        table = []
    if 0 <= i < len(table):
        return table[i]
    return _piece_bytes(tokenizer.convert_ids_to_tokens(i), set(tokenizer.all_special_tokens))


def _utf8_len(lead: int) -> int:
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0  # a continuation byte or an invalid lead byte


def _pieces(data: bytes) -> Iterator[str | int]:
    """Split bytes into whole characters (str) and stray bytes (int)."""
    i = 0
    while i < len(data):
        n = _utf8_len(data[i])
        if n:
            try:
                yield data[i:i + n].decode("utf-8")
                i += n
                continue
            except UnicodeDecodeError:
                pass
        yield data[i]
        i += 1


def display_bytes(data: bytes, show_whitespace: bool = True) -> str:
    """Readable text for a token's bytes: visible whitespace, byte fragments as <0xNN>."""
    out = []
    for p in _pieces(data):
        if isinstance(p, int):
            out.append(f"<0x{p:02X}>")
        elif show_whitespace and p in VISIBLE:
            out.append(VISIBLE[p])
        elif p.isprintable() or p in VISIBLE:
            out.append(p)
        else:
            out.append(f"<U+{ord(p):04X}>")  # control characters, NUL, bidi marks: named, not drawn
    return "".join(out)


def display_token(tokenizer: PreTrainedTokenizerFast, token_id: int, show_whitespace: bool = True) -> str:
    return display_bytes(token_bytes(tokenizer, token_id), show_whitespace)


@dataclass(frozen=True)
class Encoding:
    ids: list[int]  # token ids, in order
    tokens: list[str]  # display form of each token
    offsets: list[tuple[int, int]]  # character span of each token in the text (fragments share a span)

    def __len__(self) -> int:
        return len(self.ids)


def encode(tokenizer: PreTrainedTokenizerFast, text: str, show_whitespace: bool = True) -> Encoding:
    """Token ids, display strings and character offsets of `text` (no special tokens added)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    return Encoding(ids, [display_token(tokenizer, i, show_whitespace) for i in ids],
                    [tuple(o) for o in enc["offset_mapping"]])
