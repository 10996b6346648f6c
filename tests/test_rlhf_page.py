"""The Pre-training vs RLHF page in Streamlit's AppTest: the pre-training record, built-in and hand-marked
preference pairs, a DPO run from start to "tuned model", what changed, and refusals in plain words."""
from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine import GPTConfig, load_pretrained
from engine.train.corpus import builtin_stories, make_tokenizer, prepare
from engine.train.preference import PreferencePair
from engine.train.runs import TrainingRun
from engine.train.runspec import make_spec
from ui.models import default_model_dir

PAGE = str(ROOT / "pages" / "6_Pretraining_vs_RLHF.py")
TIMEOUT = 120
K = "rlhf."  # widget keys are prefixed with the page's id
PAIRS, RUN = "rlhf.pairs", "rlhf.run"


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def tune_to_the_end(at: AppTest, steps: int = 10):
    at.slider(key=K + "steps").set_value(steps).run()
    at.button(key=K + "start").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    run = at.session_state[RUN]
    run.join(TIMEOUT)
    at.run()  # the page notices the end: registers the tuned model and reruns
    assert not at.exception
    return run


def test_the_page_opens_with_the_pretraining_record_and_nothing_to_tune_yet():
    at = page()
    assert [h.value for h in at.header] == ["1. Pre-training: knowledge from text", "2. Preferences you give",
                                           "3. Tuning with DPO", "Base vs instruct: what tuning did to a real model"]
    assert metric(at, "Tokens read") == "45,056,000" and metric(at, "Training steps") == "5,500"
    assert len(at.code) == 3 and all(c.value.strip() for c in at.code)  # three live samples
    assert at.button(key=K + "start").disabled and "No pairs yet" in at.info[0].value
    assert any("reward model" in m.value and "PPO" in m.value for m in at.markdown)  # what real RLHF adds


@pytest.mark.parametrize("key", ["name", "happy", "short"])
def test_each_builtin_set_adds_pairs_labelled_by_its_rule(key):
    at = page()
    at.selectbox(key=K + "set").set_value(key).run()
    assert any("A rule labelled these pairs" in c.value for c in at.caption)
    at.button(key=K + "add_set").click().run()
    pairs = at.session_state[PAIRS]
    assert pairs and all(p.labelled_by.startswith("rule") and p.chosen != p.rejected for p in pairs)
    assert "labelled by the rule" in at.success[0].value and not at.button(key=K + "start").disabled


def test_marking_your_own_pair():
    at = page()
    at.button(key=K + "write").click().run()
    assert len(at.code) == 3 + 4  # the samples, then four completions side by side
    assert at.button(key=K + "add_pair").disabled  # nothing marked yet
    at.radio(key=K + "chosen").set_value(2).run()
    at.radio(key=K + "rejected").set_value(2).run()
    assert at.button(key=K + "add_pair").disabled  # one completion cannot beat itself
    at.radio(key=K + "rejected").set_value(3).run()
    at.button(key=K + "add_pair").click().run()
    (pair,) = at.session_state[PAIRS]
    assert pair.labelled_by == "you" and pair.prompt.endswith("girl named") and not at.exception
    at.selectbox(key=K + "example").set_value("One day, the little dog found").run()
    assert at.text_input(key=K + "prompt").value == "One day, the little dog found"
    assert len(at.code) == 3  # the completions were for the other prompt: none shown until written


def test_a_tuning_run_becomes_the_tuned_model_and_leaves_the_shared_model_alone():
    at = page()
    fresh, _ = load_pretrained(default_model_dir())  # the shared default model as it is on disk
    at.button(key=K + "add_set").click().run()
    run = tune_to_the_end(at, steps=10)
    s = run.status()
    assert s.state == "done" and s.step == 10 and s.history[-1].stats.margin > s.history[0].stats.margin
    assert [h.value for h in at.header][3:] == ["4. What changed", "5. The black box, honestly",
                                                "Base vs instruct: what tuning did to a real model"]
    assert "tuned model" in at.session_state["models.session"]
    assert at.session_state["models.session"]["tuned model"].model is run.model
    assert float(metric(at, "Reward margin")) > 0
    labels = [b.label for b in at.get("download_button")]
    assert "Download the tuned model (.zip, Hugging Face format)" in labels
    # the reference it tuned from is the shared default model, still exactly as loaded from disk
    for (name, a), b in zip(run.reference.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


def test_bad_pairs_get_a_plain_message_and_a_busy_server_a_place_in_line():
    at = page()
    at.session_state[PAIRS] = [PreferencePair("Tom was", "", " sad.")]  # an empty side, however it got there
    at.run()
    at.button(key=K + "start").click().run()
    assert "empty completion" in at.error[0].value and RUN not in at.session_state
    corpus = builtin_stories(100)
    data = prepare(corpus, make_tokenizer(corpus, 300))
    cfg = GPTConfig(block_size=16, vocab_size=len(data.tokenizer), n_layer=1, n_head=1, n_embd=16)
    other = TrainingRun(make_spec(cfg, 100_000, 2, 1e-3), data, threads=1)
    other.start()  # somebody else's training run holds the only slot
    try:
        at.session_state[PAIRS] = [PreferencePair("Tom was", " happy.", " sad.")]
        at.run()
        at.button(key=K + "start").click().run()
        run = at.session_state[RUN]
        assert run.status().state == "queued" and any("Waiting in line" in i.value for i in at.info)
        at.button(key=K + "leave_line").click().run()
        run.join(10)
        assert run.status().state == "stopped" and not at.exception
    finally:
        other.stop()


def test_settings_survive_a_visit_to_another_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/6_Pretraining_vs_RLHF.py").run()
    at.slider(key=K + "steps").set_value(50).run()
    at.selectbox(key=K + "set").set_value("happy").run()
    at.switch_page("app.py").run()
    at.switch_page("pages/6_Pretraining_vs_RLHF.py").run()
    assert at.slider(key=K + "steps").value == 50 and at.selectbox(key=K + "set").value == "happy"
    assert not at.exception
