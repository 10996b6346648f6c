"""Head statistics on hand-made patterns whose answers are known, and the attention stages of a real trace."""
from __future__ import annotations

import math

import pytest
import torch

from engine import trace_ids
from engine.inspect.attention_steps import weight_steps
from engine.inspect.heads import (first_token_share, head_stats, induction_half, induction_score, induction_trace,
                                  label_heads, max_entropy, mean_entropy, normalized_entropy, previous_token_share,
                                  repeated_random_ids, row_entropy, self_share, stacked_patterns)
from engine.inspect.word_context import align_tokens, aligned_difference, cosine_by_layer, shared_words, word_positions
from engine_fixtures import tiny_model, tokenizer

T = 9


def previous_token(n: int = T) -> torch.Tensor:
    """Every query puts all its weight on the token before it (position 0 on itself: it has nothing else)."""
    p = torch.zeros(n, n)
    p[0, 0] = 1
    p[torch.arange(1, n), torch.arange(n - 1)] = 1
    return p


def uniform(n: int = T) -> torch.Tensor:
    """Each query spreads its weight evenly over itself and every earlier token."""
    return torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None]


def first_token(n: int = T) -> torch.Tensor:
    p = torch.zeros(n, n)
    p[:, 0] = 1
    return p


def induction(half: int) -> torch.Tensor:
    """[bos] r r: in the second copy, each query looks at the token after its earlier copy; elsewhere at bos."""
    n = 1 + 2 * half
    p = first_token(n)
    for q in range(1 + half, n):
        p[q] = 0
        p[q, q - half + 1] = 1
    return p


def test_hand_made_patterns_are_valid() -> None:
    for p in (previous_token(), uniform(), torch.eye(T), first_token(), induction(4)):
        assert torch.allclose(p.sum(-1), torch.ones(len(p)))
        assert (p.triu(1) == 0).all()  # causal


def test_previous_token_pattern_scores_one() -> None:
    p = previous_token()
    assert previous_token_share(p) == pytest.approx(1.0)
    assert self_share(p) == pytest.approx(0.0)
    assert first_token_share(p) == pytest.approx(1 / (T - 1))  # only query 1's previous token is position 0
    assert normalized_entropy(p) == pytest.approx(0.0)


def test_identity_pattern_is_all_self() -> None:
    p = torch.eye(T)
    assert self_share(p) == pytest.approx(1.0)
    assert previous_token_share(p) == pytest.approx(0.0)
    assert first_token_share(p) == pytest.approx(0.0)
    assert mean_entropy(p) == pytest.approx(0.0)


def test_uniform_pattern_has_max_entropy() -> None:
    p = uniform()
    assert torch.allclose(row_entropy(p), max_entropy(T))
    assert normalized_entropy(p) == pytest.approx(1.0)
    assert row_entropy(p)[3] == pytest.approx(2.0)  # query 3 sees 4 tokens evenly: 2 bits
    # Any other causal pattern has less.
    torch.manual_seed(0)
    other = (torch.randn(T, T) + torch.full((T, T), float("-inf")).triu(1)).softmax(-1)
    assert normalized_entropy(other) < 1.0
    assert previous_token_share(p) == pytest.approx(sum(1 / (q + 1) for q in range(1, T)) / (T - 1))
    # The same entropies as torch's own Categorical (nats, converted to bits).
    assert torch.allclose(row_entropy(other), torch.distributions.Categorical(probs=other).entropy() / math.log(2),
                          atol=1e-5)


def test_first_token_pattern() -> None:
    assert first_token_share(first_token()) == pytest.approx(1.0)
    assert previous_token_share(first_token()) == pytest.approx(1 / (T - 1))


def test_leading_dimensions_pass_through() -> None:
    stack = torch.stack([torch.stack([previous_token(), torch.eye(T)]), torch.stack([uniform(), first_token()])])
    stats = head_stats(stack)  # [layer=2, head=2, q, k]
    assert stats.previous.shape == (2, 2)
    assert stats.previous[0, 0] == pytest.approx(1.0)
    assert stats.self[0, 1] == pytest.approx(1.0)
    assert stats.entropy_norm[1, 0] == pytest.approx(1.0)
    assert stats.first[1, 1] == pytest.approx(1.0)
    assert stats.induction is None
    labels = {(h.layer, h.head): h.label for h in label_heads(stats)}
    assert labels == {(0, 0): "previous token", (0, 1): "self", (1, 0): "broad", (1, 1): "first token (sink)"}


def test_induction_score_on_hand_built_patterns() -> None:
    half = 5
    assert induction_score(induction(half), half) == pytest.approx(1.0)
    n = 1 + 2 * half
    # A previous-token head and a start-marker head do no induction.
    assert induction_score(previous_token(n), half) == pytest.approx(0.0)
    assert induction_score(first_token(n), half) == pytest.approx(0.0)
    # Looking at the earlier copy itself (not the token after it) is not induction either.
    dup = first_token(n)
    for q in range(1 + half, n):
        dup[q] = 0
        dup[q, q - half] = 1
    assert induction_score(dup, half) == pytest.approx(0.0)
    # Half the weight on the right token scores a half.
    assert induction_score(0.5 * induction(half) + 0.5 * first_token(n), half) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        induction_score(torch.eye(4), 5)


def test_induction_label_wins_and_shows_its_figure() -> None:
    half = 4
    stack = torch.stack([induction(half), previous_token(1 + 2 * half)])[None]  # [1, 2, q, k]
    stats = head_stats(stack, stack, half)
    labels = label_heads(stats)
    assert [h.label for h in labels] == ["induction", "previous token"]
    assert "100%" in labels[0].reason and "repeated random sequence" in labels[0].reason
    uneven = torch.tensor([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.1, 0.8, 0.1, 0], [0.05, 0.9, 0, 0.05]])
    assert label_heads(head_stats(uneven[None, None]))[0].label == "mixed"


def test_repeated_random_ids() -> None:
    ids = repeated_random_ids(100, 10, seed=3, bos_id=0, exclude={1, 2})
    assert ids[0] == 0 and ids[1:11] == ids[11:] and len(set(ids[1:11])) == 10
    assert not {0, 1, 2} & set(ids[1:])
    assert ids == repeated_random_ids(100, 10, seed=3, bos_id=0, exclude={1, 2})  # reproducible
    with pytest.raises(ValueError):
        repeated_random_ids(5, 10)


def test_induction_trace_of_a_model() -> None:
    model = tiny_model()  # block_size 16: 7 tokens per copy
    trace = induction_trace(model, tokenizer())
    half = induction_half(model.config.block_size)
    assert half == 7 and len(trace) == 15 and trace.ids[1:8] == trace.ids[8:]
    stats = head_stats(stacked_patterns(trace), stacked_patterns(trace), half)
    assert stats.induction.shape == (2, 2)
    assert ((stats.induction >= 0) & (stats.induction <= 1)).all()


@pytest.fixture(scope="module")
def trace():
    tok = tokenizer()
    ids = [0] + tok("The cat sat. The cat ran.", add_special_tokens=False)["input_ids"][:14]
    return trace_ids(tiny_model(), tok, ids, has_bos=True)


def test_weight_steps_match_the_trace(trace) -> None:
    query = len(trace) - 4
    s = weight_steps(trace, 1, 1, query)
    assert s.scale == pytest.approx(math.sqrt(trace.config.d_head))
    visible = ~s.masked
    # The raw dot products, scaled, are the trace's scores wherever the mask lets a key through.
    assert torch.allclose(s.scaled[visible], s.scores[visible], atol=1e-5)
    assert torch.isneginf(s.scores[s.masked]).all() and s.masked.sum() == 3
    assert torch.isfinite(s.dots).all()  # q . k exists for future keys too: the mask hides it
    assert s.weights.sum() == pytest.approx(1.0) and (s.weights[s.masked] == 0).all()
    assert torch.allclose(s.exp_shifted / s.exp_shifted.sum(), s.weights, atol=1e-6)
    assert torch.allclose(s.z_from_sum, s.z, atol=1e-5)
    with pytest.raises(IndexError):
        weight_steps(trace, 2, 0, 0)


def test_stacked_patterns_rows_sum_to_one(trace) -> None:
    p = stacked_patterns(trace)
    assert p.shape == (2, 2, len(trace), len(trace))
    assert torch.allclose(p.sum(-1), torch.ones(2, 2, len(trace)), atol=1e-5)


def test_word_positions_and_shared_words() -> None:
    tok, model = tokenizer(), tiny_model()

    def run(text: str):
        ids = [0] + tok(text, add_special_tokens=False)["input_ids"]
        offsets = [(0, 0)] + [tuple(o) for o in tok(text, add_special_tokens=False,
                                                     return_offsets_mapping=True)["offset_mapping"]]
        return trace_ids(model, tok, ids, text=text, offsets=offsets, has_bos=True)

    a, b = run("The cat sat on the mat."), run("A cat? The cat ran!")
    assert shared_words(a.text, b.text) == ["the", "cat"]
    pos_a, pos_b = word_positions(a, "CAT"), word_positions(b, "cat")
    assert len(pos_a) == 1 and len(pos_b) == 2
    assert a.text[slice(*a.offsets[pos_a[0]])].strip() == "cat"
    assert word_positions(a, "ca") == [] and word_positions(a, " ") == []
    cos = cosine_by_layer(a, pos_a[0], b, pos_b[1])
    assert len(cos) == 2 + a.config.n_layer
    assert cos[0] == pytest.approx(1.0)  # the same token has the same embedding
    assert all(-1.0 <= c <= 1.0 + 1e-6 for c in cos)


def test_alignment_and_difference() -> None:
    al = align_tokens([0, 5, 6, 7, 8], [0, 5, 9, 7, 8])
    assert (al.a, al.b) == ([0, 1, 3, 4], [0, 1, 3, 4])
    shifted = align_tokens([0, 5, 6], [0, 4, 4, 5, 6])
    assert (shifted.a, shifted.b) == ([0, 1, 2], [0, 3, 4])
    pa, pb = uniform(3), uniform(5)
    diff = aligned_difference(pa, pb, shifted)
    assert diff.shape == (3, 3)
    assert diff[2, 2] == pytest.approx(1 / 3 - 1 / 5)
    assert aligned_difference(pa, pa, align_tokens([1, 2, 3], [1, 2, 3])).abs().max() == 0
    assert aligned_difference(pa, pb, align_tokens([1], [2])).shape == (0, 0)


def test_missing_types_name_the_closest_head_and_skip_what_was_not_measured():
    from engine.inspect.heads import HeadStats, label_heads, missing_types
    z = torch.zeros(2, 3)
    previous = z.clone()
    previous[1, 2] = 0.9
    stats = HeadStats(entropy_bits=z, entropy_norm=z + 0.1, previous=previous, first=z + 0.2, self=z,
                      induction=None)
    missing = {m.label: m for m in missing_types(stats, label_heads(stats))}
    assert "previous token" not in missing and "induction" not in missing  # found; not measured
    assert set(missing) == {"self", "first token (sink)", "broad"}
    assert missing["broad"].best == pytest.approx(0.1) and missing["broad"].threshold == 0.75
