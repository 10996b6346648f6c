"""Preference tuning (engine/train/preference.py, engine/train/tuning.py): the DPO loss against a hand
computation, log-probabilities against transformers, the reference left untouched, a few steps learning the
preference, and every bad input refused in a sentence."""
from __future__ import annotations

import math
import time

import pytest
import torch
from transformers import AutoModelForCausalLM

from engine import save_pretrained
from engine.inspect.params import param_changes
from engine.train.preference import (PreferenceError, PreferencePair, PreferenceTuner, TuneConfig, dpo_loss,
                                     encode_pairs, mean_kl, next_token_probs, sequence_logprobs, write_completions)
from engine.train.runs import TrainingRun
from engine.train.tuning import TuningRun
from engine_fixtures import tiny_model, tokenizer

PAIRS = [
    PreferencePair("Once upon a time", " there was a cat named Tom.", " the sky was blue."),
    PreferencePair("One day, the ball", " rolled under the bed.", " was sad."),
    PreferencePair("Tom was", " happy again.", " sad."),
]


def test_dpo_loss_and_metrics_match_a_hand_computation():
    pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    rc, rr = torch.tensor([-1.5, -2.0]), torch.tensor([-2.5, -1.5])
    loss, s = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # chosen rewards 0.5 * (0.5, 0) = (0.25, 0); rejected 0.5 * (-0.5, 0.5) = (-0.25, 0.25); margins (0.5, -0.25)
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(0.25))) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-6) and s.loss == pytest.approx(expected, abs=1e-6)
    assert s.margin == pytest.approx(0.125) and s.accuracy == 0.5
    assert s.chosen_reward == pytest.approx(0.125) and s.rejected_reward == pytest.approx(0.0)
    assert s.chosen_logp == pytest.approx(-1.5) and s.rejected_logp == pytest.approx(-2.0)
    _, tie = dpo_loss(pc, pr, pc, pr, beta=0.1)  # policy == reference: log 2, nothing learned yet
    assert tie.loss == pytest.approx(math.log(2)) and tie.margin == 0 and tie.accuracy == 0


def test_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(7, 50, generator=g).log_softmax(-1), torch.randn(7, 50, generator=g).log_softmax(-1)
    want = torch.nn.functional.kl_div(q, p, log_target=True, reduction="batchmean")  # KL(p || q) per row
    assert mean_kl(p, q) == pytest.approx(float(want), rel=1e-5) and mean_kl(p, p) == pytest.approx(0, abs=1e-6)


def test_completion_tokens_are_masked_after_the_prompt():
    tok = tokenizer()
    batch = encode_pairs(tok, PAIRS[:1], block_size=64)
    prompt = len(tok.encode("Once upon a time", add_special_tokens=False)) + 1  # + <|endoftext|>
    for row, completion in ((0, PAIRS[0].chosen), (1, PAIRS[0].rejected)):
        n = len(tok.encode(completion, add_special_tokens=False))
        assert batch.mask[row].nonzero().flatten().tolist() == list(range(prompt - 1, prompt - 1 + n))


def test_sequence_logprobs_match_transformers(tmp_path):
    model, tok = tiny_model(seed=3, block_size=64), tokenizer()
    batch = encode_pairs(tok, PAIRS, block_size=64)
    ours = sequence_logprobs(model, batch)
    hf = AutoModelForCausalLM.from_pretrained(save_pretrained(model, tok, tmp_path / "m")).eval()
    with torch.no_grad():
        logp = hf(batch.ids).logits.log_softmax(-1)  # [2n, T, vocab]
    for r in range(batch.ids.shape[0]):
        want = sum(float(logp[r, t, batch.ids[r, t + 1]]) for t in batch.mask[r].nonzero().flatten().tolist())
        assert float(ours[r]) == pytest.approx(want, abs=1e-4)


def test_tuning_learns_the_preference_and_never_touches_the_reference():
    model, tok = tiny_model(seed=1, block_size=64), tokenizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuner = PreferenceTuner(model, tok, PAIRS, TuneConfig(learning_rate=3e-3, steps=12))
    result = tuner.run()
    first, last = result.history[0], result.history[-1]
    assert first.step == 0 and first.stats.loss == pytest.approx(math.log(2), abs=1e-5) and first.kl < 1e-6
    assert last.step == 12 and last.stats.margin > first.stats.margin + 0.1 and last.stats.accuracy == 1.0
    assert last.stats.loss < first.stats.loss and last.kl > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"the reference changed at {k}"
    moved = param_changes(model, tuner.policy)
    assert moved[0].relative > 0 and [c.relative for c in moved] == sorted((c.relative for c in moved), reverse=True)
    assert all(c.relative == 0 for c in param_changes(model, model))
    # the tuned model prefers what it was told to, measured afresh
    n = len(PAIRS)
    gain = sequence_logprobs(tuner.policy, tuner.batch).detach() - sequence_logprobs(model, tuner.batch).detach()
    assert bool((gain[:n] > gain[n:]).all())


@pytest.mark.parametrize("pairs, block, words", [
    ([], 64, "no preference pairs"),
    ([PreferencePair("Tom was", " happy.", " happy.")], 64, "over itself"),
    ([PreferencePair("Tom was", "  ", " sad.")], 64, "empty completion"),
    ([PreferencePair("Once upon a time there was a cat named Tom", " ok", " no")], 8, "shorten the prompt"),
])
def test_bad_pairs_are_refused_in_a_sentence(pairs, block, words):
    with pytest.raises(PreferenceError, match=words):
        encode_pairs(tokenizer(), pairs, block)


@pytest.mark.parametrize("cfg, words", [
    (TuneConfig(beta=0), "beta"), (TuneConfig(beta=float("nan")), "beta"),
    (TuneConfig(learning_rate=-1), "learning rate"), (TuneConfig(steps=0), "Steps"),
])
def test_bad_settings_are_refused(cfg, words):
    with pytest.raises(PreferenceError, match=words):
        PreferenceTuner(tiny_model(block_size=64), tokenizer(), PAIRS, cfg)


def test_completions_repeat_with_their_seed():
    model, tok = tiny_model(seed=2, block_size=64), tokenizer()
    a = write_completions(model, tok, "Tom was", 3, 8, seed=5)
    assert a == write_completions(model, tok, "Tom was", 3, 8, seed=5) and len(a) == 3
    p = next_token_probs(model, tok, "Tom was")
    assert p.shape == (model.config.vocab_size,) and float(p.sum()) == pytest.approx(1.0, abs=1e-5)


def test_tuning_run_in_the_background_shares_the_training_line():
    model, tok = tiny_model(seed=1, block_size=64), tokenizer()
    run = TuningRun(model, tok, PAIRS, TuneConfig(learning_rate=3e-3, steps=200), threads=1)
    run.start()
    try:
        from engine.train.corpus import from_pasted, make_tokenizer, prepare
        from engine.train.runspec import make_spec
        corpus = from_pasted("Tom had a red ball. " * 400)
        data = prepare(corpus, make_tokenizer(corpus, 300))
        other = TrainingRun(make_spec(tiny_model(block_size=32, vocab_size=len(data.tokenizer)).config, 5, 4, 1e-3),
                            data, threads=1)
        other.start()
        time.sleep(0.3)
        assert other.status().state == "queued" and other.status().place == 1  # it waits for the tuning run
    finally:
        run.stop(wait=True)
    other.join(60)
    assert other.status().state == "done"  # and trained once the slot was free
    s = run.status()
    assert s.state == "stopped" and "Stopped by you" in s.message and run.model is not None
    assert s.history[-1].step == s.step < 200
    with pytest.raises(PreferenceError):
        TuningRun(model, tok, [], TuneConfig())  # refused before anything runs
