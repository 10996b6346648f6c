"""Guess the next token: a person's guess read the way the tokenizer would split it after a prompt, and scored
against the model's own distribution for the next token.

A guess is a word or a token ("girl", " girl", ","). The model predicts one token at a time, so a guess counts
as its first token, read as it would follow the prompt: after a word, a guess that starts with a letter or a
digit gets the space before it (" girl", which byte-level BPE makes one token), as the text would be written.
A guess that splits into several tokens is shown as all of them and scored by its first.

Scores are in bits: the log-probability log2 p of the guessed token under the model (0 is a sure thing, -10
is a one-in-a-thousand guess), and its rank (1 = the model's top token). The model's entropy is what the
model itself would average if it guessed by drawing from its own distribution, so a room's average log-prob
sits beside minus the entropy on one scale.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import torch

from ..generation.sampling import SamplingSettings, entropy_bits, sample
from ..model.tokenizer import display_token, encode

MAX_GUESS_CHARS = 40  # a word, or a few: longer guesses are cut
TOP_K = 10  # the model's top tokens a reveal shows


class BadGuess(ValueError):
    """A guess with nothing to score (empty, or only whitespace and control characters); says why."""


@dataclass(frozen=True)
class Guess:
    text: str  # the guess as scored: cleaned, cut to MAX_GUESS_CHARS, with the space it would follow the prompt with
    ids: list[int]  # every token of it
    tokens: list[str]  # their display forms (␣ for a space)

    @property
    def token_id(self) -> int:
        return self.ids[0]

    @property
    def token(self) -> str:
        return self.tokens[0]


def clean(raw: str, limit: int = MAX_GUESS_CHARS) -> str:
    """Typed text made one plain line: control and format characters dropped (a zero-width joiner, a
    bidirectional override), runs of whitespace one space, cut to `limit` characters."""
    kept = "".join(ch for ch in unicodedata.normalize("NFC", raw)
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())[:limit].strip()


def read_guess(tokenizer, prompt: str, raw: str) -> Guess:
    """`raw` read as the tokenizer would split it after `prompt`. Raises BadGuess when nothing is left."""
    text = clean(raw)
    if not text:
        raise BadGuess("Type a word or a token first.")
    if prompt and not prompt[-1].isspace() and text[0].isalnum():
        text = " " + text  # written after the prompt, a word comes with its space
    enc = encode(tokenizer, text)
    if not enc.ids:
        raise BadGuess("That guess has no tokens.")
    return Guess(text, enc.ids, enc.tokens)


@dataclass(frozen=True)
class Odds:
    """The model's distribution for the token after a prompt, in the units a game needs."""
    log2p: torch.Tensor  # [vocab] log2 of each token's probability (raw logits, temperature 1)
    entropy_bits: float  # of the distribution

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> Odds:
        """`logits`: [vocab], the last position's (a Trace's `logits[-1]`)."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        return cls(logp / math.log(2), float(entropy_bits(logp.exp())))

    @property
    def vocab_size(self) -> int:
        return self.log2p.numel()

    @property
    def miss_bits(self) -> float:
        """The log-prob of a guess that knows nothing (uniform over the vocabulary): what a missed round scores."""
        return -math.log2(self.vocab_size)

    def score(self, token_id: int) -> tuple[float, int]:
        """(log2 p, rank) of one token; rank 1 is the model's top token, ties share the better rank."""
        value = self.log2p[token_id]
        return max(float(value), -1e4), int((self.log2p > value).sum()) + 1  # a probability of 0 is a finite floor

    def top(self, tokenizer, k: int = TOP_K) -> list[tuple[int, str, float]]:
        """The model's k most likely next tokens: (id, display form, probability), most likely first."""
        values, ids = self.log2p.topk(min(k, self.vocab_size))
        return [(int(i), display_token(tokenizer, int(i)), float(2.0 ** v)) for v, i in zip(values, ids)]


def draw(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> int:
    """One token drawn from the model's distribution at `temperature` (0: the top token), as sampling does."""
    return int(sample(logits.float(), SamplingSettings(temperature=temperature), generator))
