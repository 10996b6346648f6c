"""Circuits forming while it trains (engine/inspect/circuits.py, ui/train/circuits.py): a checkpoint's head scores
are the Attention page's "What kind of head?" scores for the same weights and prompt, the induction test's two
losses mean what they say, and the Train page draws every checkpoint on its time-lapse, the built-in model's
final scores beside them (and before any run, the built-in model's heads alone)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine import GPTConfig, Trace
from engine.inspect.circuits import Scores, first_induction, repeat_losses, scores
from engine.inspect.heads import head_stats
from engine.train.corpus import builtin_stories, make_tokenizer, prepare
from engine.train.runs import TrainingRun
from engine.train.runspec import make_spec
from ui.models import ModelChoice

TIMEOUT = 180
TRAIN = str(ROOT / "pages" / "5_Train.py")
ATTENTION = str(ROOT / "pages" / "2_Attention.py")


@pytest.fixture(scope="module")
def run() -> TrainingRun:
    corpus = builtin_stories(200)
    tok = make_tokenizer(corpus, 512)
    data = prepare(corpus, tok)
    cfg = GPTConfig(block_size=64, vocab_size=len(tok), n_layer=2, n_head=2, n_embd=32)
    r = TrainingRun(make_spec(cfg, 40, 8, 3e-3), data, threads=1)
    r.start()
    r.join(TIMEOUT)
    assert r.status().state == "done" and len(r.snapshots()) >= 3
    return r


def test_scores_at_a_checkpoint_are_the_attention_pages_for_the_same_weights(run):
    snap = run.snapshots()[len(run.snapshots()) // 2]
    ours = scores(run.model_at(snap), run.tokenizer, snap.probe, snap.step)
    choice = ModelChoice("checkpoint", run.model_at(snap), run.tokenizer, key="session:test:checkpoint", shared=False)
    at = AppTest.from_file(ATTENTION, default_timeout=TIMEOUT)
    at.session_state["models.session"] = {choice.name: choice}
    at.session_state["models.selected"] = choice.name
    at.query_params["tab"] = "what-kind-of-head"
    at.query_params["text"] = run.spec.probe
    at.run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "induction" in d.value.columns)
    for column, field in (("previous", "previous"), ("first", "first"), ("self", "self"), ("induction", "induction")):
        page = torch.tensor(table[column].to_numpy(), dtype=torch.float32).reshape(ours.stats.previous.shape)
        assert torch.allclose(page, getattr(ours.stats, field), atol=1e-6), column


def test_the_induction_tests_losses_read_each_copy():
    half, vocab = 5, 12
    ids = [0] + list(range(1, half + 1)) * 2  # [bos] r r
    logits = torch.zeros(len(ids), vocab)
    for p in range(half + 1, 2 * half):  # a perfect copier on the second copy only
        logits[p, ids[p + 1]] = 50.0
    trace = Trace(text="", ids=ids, tokens=[""] * len(ids), offsets=[(0, 0)] * len(ids), logits=logits, act={},
                  config=GPTConfig(block_size=16, vocab_size=vocab, n_layer=1, n_head=1, n_embd=4))
    first, second = repeat_losses(trace, half)
    assert first == pytest.approx(torch.log(torch.tensor(float(vocab))).item(), abs=1e-4)  # uniform guesses
    assert second < 1e-6


def test_the_first_checkpoint_with_an_induction_head_is_found():
    pattern = torch.tensor([[[[1.0, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]]]])  # [layer, head, q, k]

    def at(step: int, score: float) -> Scores:
        return Scores(step, replace(head_stats(pattern), induction=torch.tensor([[score]])), None, None)
    history = [at(0, 0.05), at(10, 0.2), at(20, 0.45), at(30, 0.6)]
    assert first_induction(history).step == 20 and first_induction(history[:2]) is None
    assert history[2].has_induction_head and not history[1].has_induction_head
    assert history[3].best("induction") == (pytest.approx(0.6), 0, 0)


def chart(at: AppTest, key: str) -> dict:
    return json.loads(next(el.proto.spec for el in at.get("plotly_chart") if el.proto.id.endswith(key)))


def test_the_train_page_shows_the_builtin_heads_then_every_checkpoint_of_a_run(run):
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    assert not at.exception
    builtin = chart(at, "train.circuits_chart")
    assert [t["type"] for t in builtin["data"]] == ["heatmap"] * 3
    assert any("induction test" in m.value for m in at.markdown)
    at.session_state["train.run"] = run
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    fig = chart(at, "train.circuits_chart")
    steps = [s.step for s in run.snapshots()]
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"] for t in lines] == ["induction score", "previous-token share", "first-token share (sink)",
                                          "first copy (random)", "second copy (a repeat)"]
    assert all(t["x"] == steps for t in lines)
    assert sum(1 for t in fig["data"] if t.get("line", {}).get("dash") == "dot") == 3  # the built-in model's
    assert any("induction" in m.value and ("appeared" in m.value or "No head reached" in m.value)
               for m in at.markdown)
    slider = at.select_slider(key=f"train.lapse_step_{run.id}")
    slider.set_value(steps[0]).run()
    assert chart(at, "train.circuits_chart")["layout"]["shapes"][-1]["x0"] == steps[0]  # the slider's step, marked
