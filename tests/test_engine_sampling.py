"""Sampling: our filters give transformers' logits-warper distributions, greedy is greedy, extreme settings stay
finite, seeds repeat, the stages the page draws are consistent, and generation slides its context."""
from __future__ import annotations

import math

import pytest
import torch
from transformers.generation.logits_process import (MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

from engine import SamplingSettings, generate, generate_steps, sample, sampling_stages
from engine.generation.sampling import (apply_temperature, entropy_bits, filter_logits, min_p_filter, top_k_filter,
                                        top_p_filter)
from engine_fixtures import tiny_model

V = 64


def random_logits(rows: int = 6, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * scale


def reference(logits: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    """transformers' warpers in the order temperature, top-k, top-p, min-p."""
    ids = torch.zeros(logits.shape[0], 1, dtype=torch.long)  # the warpers ignore the ids
    scores = logits.clone()
    warpers = [TemperatureLogitsWarper(s.temperature)]
    if s.top_k:
        warpers.append(TopKLogitsWarper(s.top_k))
    if s.top_p < 1:
        warpers.append(TopPLogitsWarper(s.top_p))
    if s.min_p > 0:
        warpers.append(MinPLogitsWarper(s.min_p))
    for w in warpers:
        scores = w(ids, scores)
    return scores


SETTINGS = [
    SamplingSettings(temperature=1.0),
    SamplingSettings(temperature=0.5),
    SamplingSettings(temperature=2.5),
    SamplingSettings(top_k=1),
    SamplingSettings(top_k=5),
    SamplingSettings(top_k=V),
    SamplingSettings(top_p=0.9),
    SamplingSettings(top_p=0.3),
    SamplingSettings(top_p=0.01),
    SamplingSettings(min_p=0.05),
    SamplingSettings(min_p=0.5),
    SamplingSettings(temperature=0.7, top_k=10, top_p=0.9),
    SamplingSettings(temperature=1.5, top_k=20, top_p=0.8, min_p=0.1),
    SamplingSettings(temperature=0.3, top_p=0.95, min_p=0.02),
    SamplingSettings(temperature=3.0, top_k=40, min_p=0.2),
]


@pytest.mark.parametrize("s", SETTINGS, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_filters_match_transformers_warpers(s, seed):
    logits = random_logits(seed=seed)
    ours = filter_logits(logits, s)
    theirs = reference(logits, s)
    assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))  # the same tokens survive
    torch.testing.assert_close(ours.softmax(-1), theirs.softmax(-1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_top_k_keeps_ties_as_transformers_does(k):
    logits = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0]])
    ours, theirs = top_k_filter(logits, k), TopKLogitsWarper(k)(torch.zeros(1, 1, dtype=torch.long), logits.clone())
    assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))


def test_single_filters_are_pure_and_off_by_default():
    logits = random_logits(seed=2)
    copy = logits.clone()
    for out in (top_k_filter(logits, 0), top_p_filter(logits, 1.0), min_p_filter(logits, 0.0)):
        assert torch.equal(out, logits)
    for f, arg in ((top_k_filter, 3), (top_p_filter, 0.5), (min_p_filter, 0.3), (apply_temperature, 2.0)):
        f(logits, arg)
    assert torch.equal(logits, copy)  # the input is never modified in place


def test_every_filter_keeps_at_least_the_top_token():
    logits = random_logits(seed=3)
    s = SamplingSettings(temperature=0.05, top_k=1, top_p=0.001, min_p=0.999)
    kept = torch.isfinite(filter_logits(logits, s))
    assert torch.equal(kept.sum(-1), torch.ones(logits.shape[0], dtype=torch.long))
    assert torch.equal(kept.float().argmax(-1), logits.argmax(-1))


# --- greedy and extreme temperatures --------------------------------------------------------------------------

def test_temperature_zero_is_greedy():
    logits = random_logits(rows=50, seed=4)
    s = SamplingSettings(temperature=0, top_k=5, top_p=0.5)
    assert s.greedy
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample(logits, s, g), logits.argmax(-1))
    stages = sampling_stages(logits[0], s)
    assert stages.kept.sum() == 1 and stages.kept[logits[0].argmax()]
    assert stages.probs_after[logits[0].argmax()] == 1.0
    assert stages.entropy_after == 0.0
    torch.testing.assert_close(stages.scaled, logits[0])  # greedy does not rescale


@pytest.mark.parametrize("temperature", [0, 0.001, 0.01])
def test_low_temperatures_agree_with_greedy_and_entropy_is_never_negative(temperature):
    """T = 0 is the limit of low temperatures: nothing left to filter at T = 0 either (it read 70% there and
    0% at 0.01), entropy 0.0 (it read -0.00), and the order is the model's, not underflow noise."""
    logits = random_logits(rows=1, seed=6, scale=3.0)[0]
    stages = sampling_stages(logits, SamplingSettings(temperature=temperature))
    assert float(stages.probs_before[~stages.kept].sum()) < 1e-6
    for h in (stages.entropy_before, stages.entropy_after):
        assert h >= 0 and math.copysign(1.0, h) == 1.0 and f"{h:.2f}" == "0.00"
    assert stages.order.tolist() == torch.argsort(logits, descending=True, stable=True).tolist()


def test_entropy_bits_is_never_negative_zero():
    one_hot = torch.tensor([0.0, 1.0, 0.0])
    assert math.copysign(1.0, float(entropy_bits(one_hot))) == 1.0
    assert float(entropy_bits(torch.tensor([1.0000001, 0.0]))) == 0.0


def test_top_tokens_lists_only_tokens_above_zero_and_counts_the_rest():
    from engine.generation.sampling_lab import top_tokens
    logits = torch.arange(V, dtype=torch.float32) * 0.5  # gaps of 50 logits at T = 0.01: most underflow to 0
    stages = sampling_stages(logits, SamplingSettings(temperature=0.01))
    top = top_tokens(stages, 15)
    assert all(p > 0 for p in top.probs_before) and len(top.ids) < 15
    assert top.n_zero == int((stages.probs_before == 0).sum()) > 0
    assert top.ids == list(range(V - 1, V - 1 - len(top.ids), -1))  # the likeliest, in the model's order


@pytest.mark.parametrize("temperature", [0.001, 0.01, 10.0, 100.0])
@pytest.mark.parametrize("s_extra", [{}, {"top_p": 0.9}, {"min_p": 0.1}, {"top_k": 3}])
def test_extreme_temperatures_give_finite_probabilities(temperature, s_extra):
    logits = random_logits(rows=4, seed=5, scale=1e4)
    s = SamplingSettings(temperature=temperature, **s_extra)
    for row in logits:
        st = sampling_stages(row, s)
        for probs in (st.probs_before, st.probs_after, st.cumulative):
            assert torch.isfinite(probs).all()
        torch.testing.assert_close(st.probs_before.sum(), torch.tensor(1.0))
        torch.testing.assert_close(st.probs_after.sum(), torch.tensor(1.0))
        assert math.isfinite(st.entropy_before) and math.isfinite(st.entropy_after)
    ids = sample(logits, s, torch.Generator().manual_seed(0))
    assert ids.shape == (4,)


def test_temperature_is_clamped_to_its_range():
    logits = random_logits(seed=6)
    torch.testing.assert_close(apply_temperature(logits, 0.0001), apply_temperature(logits, 0.01))
    torch.testing.assert_close(apply_temperature(logits, 1000), apply_temperature(logits, 10))
    assert apply_temperature(logits.half(), 1.0).dtype == torch.float32


# --- seeds -------------------------------------------------------------------------------------------------

def test_a_seeded_generator_repeats_exactly():
    logits = random_logits(rows=200, seed=7, scale=1.0)
    s = SamplingSettings(temperature=1.2, top_p=0.95)
    a = sample(logits, s, torch.Generator().manual_seed(42))
    b = sample(logits, s, torch.Generator().manual_seed(42))
    c = sample(logits, s, torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_seeded_generation_repeats_exactly():
    model = tiny_model(seed=0)
    s = SamplingSettings(temperature=1.0)
    a = generate(model, [0, 5], 12, s, torch.Generator().manual_seed(1))
    b = generate(model, [0, 5], 12, s, torch.Generator().manual_seed(1))
    c = generate(model, [0, 5], 12, s, torch.Generator().manual_seed(2))
    assert a == b and len(a) == 12 and a != c


def test_sampling_follows_the_filtered_distribution():
    # 4000 draws from 3 kept tokens: frequencies within a few standard deviations of the probabilities.
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]]).expand(4000, -1)
    s = SamplingSettings(temperature=1.0, top_k=3)
    ids = sample(logits, s, torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=5).float() / len(ids)
    probs = filter_logits(logits[:1], s).softmax(-1)[0]
    assert freq[3:].sum() == 0
    assert (freq - probs).abs().max() < 4 * math.sqrt(0.25 / len(ids))


# --- stages ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", SETTINGS[::2], ids=str)
def test_sampling_stages_are_consistent(s):
    logits = random_logits(rows=1, seed=8)[0]
    st = sampling_stages(logits, s)
    assert torch.equal(st.logits, logits)
    torch.testing.assert_close(st.scaled, logits / s.temperature)
    assert torch.equal(st.kept, st.probs_after > 0)
    torch.testing.assert_close(st.probs_before, st.scaled.softmax(-1))
    renormalised = st.probs_before * st.kept / (st.probs_before * st.kept).sum()
    torch.testing.assert_close(st.probs_after, renormalised)
    assert sorted(st.order.tolist()) == list(range(V))
    assert (st.probs_before[st.order].diff() <= 0).all()  # descending
    assert (st.cumulative.diff() >= 0).all()
    torch.testing.assert_close(st.cumulative[-1], torch.tensor(1.0))
    torch.testing.assert_close(st.cumulative, st.probs_before[st.order].cumsum(-1))
    assert st.entropy_after <= st.entropy_before + 1e-6


def test_entropies_are_in_bits():
    logits = torch.full((V,), -1e9)
    logits[:8] = 0.0  # 8 equally likely tokens: 3 bits
    st = sampling_stages(logits, SamplingSettings(top_k=2))  # ties with the 2nd are kept: all 8 stay
    assert st.entropy_before == pytest.approx(3.0, abs=1e-5)
    assert st.entropy_after == pytest.approx(3.0, abs=1e-5)
    st = sampling_stages(torch.tensor([0.0, 0.0, 0.0, 0.0]), SamplingSettings())
    assert st.entropy_before == pytest.approx(2.0, abs=1e-6)
    assert float(entropy_bits(torch.tensor([1.0, 0.0]))) == 0.0  # 0 log 0 = 0, no NaN


# --- generation ---------------------------------------------------------------------------------------------

def test_generate_steps_slides_the_context_when_it_is_full():
    model = tiny_model(seed=0)
    block = model.config.block_size
    prompt = list(range(1, block - 2))  # 13 tokens, 3 short of the context
    steps = list(generate_steps(model, prompt, 8, SamplingSettings(temperature=0)))
    ids = list(prompt)
    for step in steps:
        assert step.context == ids[-block:]
        assert len(step.context) == min(len(ids), block)
        with torch.no_grad():
            logits, _ = model(torch.tensor([step.context]))
        assert step.token_id == int(logits[0, -1].argmax())
        assert step.prob == float(step.stages.probs_after[step.token_id]) == 1.0
        ids.append(step.token_id)
    assert len(steps[-1].context) == block and steps[-1].context[0] == prompt[len(ids) - 1 - block]


def test_generate_stops_at_the_stop_id_and_needs_context():
    model = tiny_model(seed=0)
    greedy = SamplingSettings(temperature=0)
    full = generate(model, [0, 7], 6, greedy)
    assert generate(model, [0, 7], 6, greedy, stop_id=full[2]) == full[:full.index(full[2])]
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [], 3, greedy)


def test_step_probability_is_of_the_sampled_distribution():
    model = tiny_model(seed=0)
    s = SamplingSettings(temperature=0.8, top_k=10)
    for step in generate_steps(model, [0, 3, 4], 5, s, torch.Generator().manual_seed(0)):
        assert step.stages.kept[step.token_id]
        assert step.prob == pytest.approx(float(step.stages.probs_after[step.token_id]))
        assert int(step.stages.kept.sum()) == 10
