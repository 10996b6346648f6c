"""Guess the next token, the engine's side (engine/inspect/guessing.py): a guess read the way the tokenizer splits
it after the prompt, scored in bits against the model's own distribution, and the model's live draw."""
from __future__ import annotations

import math

import pytest
import torch

from engine import encode, run_trace
from engine.inspect.guessing import BadGuess, Odds, clean, draw, read_guess
from engine_fixtures import tiny_model, tokenizer


def test_a_word_after_a_word_gets_its_space():
    tok = tokenizer()
    g = read_guess(tok, "there was a little", "  cat ")
    assert g.text == " cat" and g.ids == encode(tok, " cat").ids and g.token == g.tokens[0]
    assert read_guess(tok, "there was a little ", "cat").text == "cat", "the prompt already ends in a space"
    assert read_guess(tok, "", "cat").text == "cat", "nothing to follow"
    assert read_guess(tok, "Tom was sad", ".").text == ".", "punctuation follows without a space"
    assert read_guess(tok, "a", "red ball").token_id == encode(tok, " red ball").ids[0], "the first token counts"


def test_typed_text_is_cleaned_and_capped():
    assert clean("a\u200bb\u202ec\x00 \n\t d") == "abc d", "format and control characters go, whitespace is one space"
    assert clean("x" * 500) == "x" * 40 and clean("y" * 30, limit=24) == "y" * 24
    for empty in ("", "   ", "\u200b\u200d", "\x00\x07"):
        with pytest.raises(BadGuess, match="Type a word or a token first"):
            read_guess(tokenizer(), "p", empty)
    g = read_guess(tokenizer(), "p", "🦊")
    assert g.ids and all(t.startswith("<0x") or t.startswith("␣") for t in g.tokens), "any Unicode has tokens"


def test_odds_are_the_models_softmax_in_bits():
    model, tok = tiny_model(), tokenizer()
    logits = run_trace(model, tok, "Once upon a time, there was a little").logits[-1]
    odds = Odds.from_logits(logits)
    p = logits.softmax(-1)
    assert torch.allclose(2 ** odds.log2p, p, atol=1e-6)
    best = int(p.argmax())
    assert odds.score(best) == (pytest.approx(math.log2(float(p[best])), abs=1e-5), 1)
    worst = int(p.argmin())
    assert odds.score(worst)[1] == int((p > p[worst]).sum()) + 1
    entropy = -float((p * p.log2()).sum())
    assert odds.entropy_bits == pytest.approx(entropy, abs=1e-4)
    assert odds.miss_bits == -math.log2(len(p))
    top = odds.top(tok, 5)
    assert [i for i, _, _ in top] == p.topk(5).indices.tolist() and top[0][2] == pytest.approx(float(p[best]))


def test_ties_share_the_better_rank_and_zero_is_a_finite_floor():
    logits = torch.tensor([2.0, 2.0, 0.0, float("-inf")])
    odds = Odds.from_logits(logits)
    assert odds.score(0)[1] == odds.score(1)[1] == 1 and odds.score(2)[1] == 3
    assert odds.score(3) == (-1e4, 4)


def test_a_draw_is_a_sample_of_the_model():
    logits = torch.tensor([0.0, 3.0, 1.0, -2.0])
    assert draw(logits, 0.0) == 1, "temperature 0 draws the top token"
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(torch.tensor([draw(logits, 1.0, g) for _ in range(4000)]), minlength=4).float()
    assert torch.allclose(counts / 4000, logits.softmax(-1), atol=0.03)
