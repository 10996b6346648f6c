"""Surprise and perplexity (engine/inspect/surprise.py) on a tiny random model, checked against direct computation:
one forward pass per scored token, on exactly the history the function says it used."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.inspect.surprise import perplexity, score_tokens, text_surprise
from engine.train.evaluate import token_nll
from engine_fixtures import VOCAB, tiny_model, tokenizer

BLOCK = 16  # tiny_model's context


def random_ids(n: int, seed: int = 0) -> list[int]:
    return torch.randint(0, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@torch.no_grad()
def direct(model, ids: list[int], i: int, n_context: int) -> tuple[float, int, int]:
    """NLL, top guess and rank of ids[i] from one forward pass over the n_context tokens before it."""
    logits = model(torch.tensor([ids[i - n_context:i]]))[0][0, -1]  # [vocab]
    nll = float(F.cross_entropy(logits[None], torch.tensor([ids[i]])))
    return nll, int(logits.argmax()), int((logits > logits[ids[i]]).sum()) + 1


@pytest.mark.parametrize("stride", [None, BLOCK, 5, 1])
@pytest.mark.parametrize("n", [2, 9, BLOCK + 1, 50])
def test_scores_match_one_forward_pass_per_token(stride, n):
    model = tiny_model(seed=0)
    ids = random_ids(n, seed=n)
    sc = score_tokens(model, ids, stride)
    assert len(sc) == n - 1
    for i in range(1, n):
        ctx = int(sc.n_context[i - 1])
        assert 1 <= ctx <= min(i, BLOCK)
        nll, top, rank = direct(model, ids, i, ctx)
        assert float(sc.nll[i - 1]) == pytest.approx(nll, abs=1e-4)
        assert int(sc.top_ids[i - 1]) == top and int(sc.rank[i - 1]) == rank


def test_history_schedules():
    model = tiny_model(seed=0)
    ids = random_ids(60)
    sliding = score_tokens(model, ids).n_context.tolist()
    fresh = score_tokens(model, ids, stride=BLOCK).n_context.tolist()
    assert sliding[:BLOCK] == fresh[:BLOCK] == list(range(1, BLOCK + 1))  # the first window: the same
    assert min(sliding[BLOCK:]) == BLOCK // 2 + 1 and max(sliding) == BLOCK  # always half a window or more
    assert fresh[BLOCK:2 * BLOCK] == list(range(1, BLOCK + 1))  # starts again from nothing


def test_default_schedule_is_evaluate_token_nll():
    model = tiny_model(seed=2)
    ids = random_ids(70, seed=3)
    torch.testing.assert_close(score_tokens(model, ids).nll, token_nll(model, ids), atol=1e-5, rtol=1e-5)


def test_a_text_that_fits_is_one_forward_pass():
    model = tiny_model(seed=0)
    ids = random_ids(BLOCK + 1, seed=4)
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]))[0][0]  # [BLOCK, vocab]
    want = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
    sc = score_tokens(model, ids)
    torch.testing.assert_close(sc.nll, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sc.probs, torch.exp(-want))
    assert sc.perplexity == pytest.approx(math.exp(float(want.mean())), rel=1e-5)
    torch.testing.assert_close(sc.bits, want / math.log(2))


def test_perplexity_by_hand():
    assert perplexity(torch.full((7,), math.log(4))) == pytest.approx(4.0)
    assert perplexity(torch.zeros(3)) == 1.0
    with pytest.raises(ValueError):
        perplexity(torch.empty(0))


def test_text_surprise_scores_every_token_after_a_start_marker():
    model, tok = tiny_model(seed=0), tokenizer()
    text = "Tom was happy. 漢字 <b>!</b>\n" * 3
    s = text_surprise(model, tok, text)
    assert s.ids == tok(text, add_special_tokens=False)["input_ids"] and len(s.tokens) == len(s.ids)
    want = score_tokens(model, [tok.convert_tokens_to_ids("<|endoftext|>"), *s.ids])
    torch.testing.assert_close(s.scores.nll, want.nll)
    with pytest.raises(ValueError, match="no text"):
        text_surprise(model, tok, "")
    with pytest.raises(ValueError, match="two tokens"):
        score_tokens(model, [5])
