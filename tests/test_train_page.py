"""The Train page in Streamlit's AppTest: setup, bad input, a tiny run from start to "my model", the
time-lapse and before/after views, and model zips going in and out."""
from __future__ import annotations

import io
import json
import zipfile

from conftest import ROOT
from streamlit.testing.v1 import AppTest

from engine import GPTConfig
from engine.train.bundle import export_zip
from engine.train.corpus import builtin_stories, make_tokenizer, prepare
from engine.train.runs import TrainingRun
from engine.train.runspec import PRESETS, make_spec
from engine_fixtures import tiny_model, tokenizer
from ui.runs import NOT_KEPT
from ui.text import md

PAGE = str(ROOT / "pages" / "5_Train.py")
TIMEOUT = 120
RUN = "train.run"


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def train_to_the_end(at: AppTest, steps: int = 30) -> TrainingRun:
    at.number_input(key="train.max_steps").set_value(steps).run()
    at.button(key="train.start").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    run = at.session_state[RUN]
    run.join(TIMEOUT)
    at.run()  # the page notices the end: registers "my model" and reruns
    assert not at.exception
    return run


def test_the_page_opens_on_the_builtin_stories_and_the_tiny_preset():
    at = page()
    assert at.radio(key="train.corpus_kind").value == "Built-in stories"
    assert "engine/train/stories.py" in at.caption[0].value.replace("\\", "")
    assert at.selectbox(key="train.n_layer").value == 2
    assert at.number_input(key="train.max_steps").value == PRESETS["tiny"].max_steps
    assert int(metric(at, "Parameters").replace(",", "")) > 0
    assert metric(at, "Estimated time").endswith("s") and not at.button(key="train.start").disabled
    at.button(key="train.preset_small").click().run()
    assert at.selectbox(key="train.n_layer").value == 4 and at.selectbox(key="train.block_size").value == 128
    assert not at.exception


def test_bad_text_gets_a_clear_message_and_no_start():
    at = page()
    at.radio(key="train.corpus_kind").set_value("Paste text").run()
    assert "Paste some text" in at.info[0].value and at.button(key="train.start").disabled
    at.text_area(key="train.paste").set_value("Just a few words, nowhere near a context.").run()
    assert "too short for a context of 64 tokens" in at.error[0].value
    assert at.button(key="train.start").disabled and not at.exception


def test_a_model_too_big_for_memory_is_refused_before_starting(monkeypatch):
    import ui.train.setup
    monkeypatch.setattr(ui.train.setup, "available_memory", lambda: 50 * 2**20)
    at = page()
    assert "this server has 50 MB free" in at.error[0].value and "Make it smaller" in at.error[0].value
    assert at.button(key="train.start").disabled


def test_a_busy_server_puts_the_run_in_line():
    corpus = builtin_stories(100)
    data = prepare(corpus, make_tokenizer(corpus, 300))
    cfg = GPTConfig(block_size=16, vocab_size=len(data.tokenizer), n_layer=1, n_head=1, n_embd=16)
    other = TrainingRun(make_spec(cfg, 100_000, 2, 1e-3), data, threads=1)
    other.start()  # somebody else's run holds the only slot
    try:
        at = page()
        at.button(key="train.start").click().run()
        run = at.session_state[RUN]
        assert run.status().state == "queued" and not at.exception
        assert any("Waiting in line" in i.value and "you are next" in i.value for i in at.info)
        assert at.button(key="train.start").disabled  # one run per session, queued or not
        at.button(key="train.leave_line").click().run()
        run.join(10)
        assert run.status().state == "stopped" and "out of the line" in run.status().message
    finally:
        other.stop()


def test_a_tiny_run_becomes_my_model_with_time_lapse_and_before_after():
    at = page()
    run = train_to_the_end(at)
    assert run.status().state == "done"
    assert "my model" in at.session_state["models.session"]
    assert at.session_state["models.session"]["my model"].model is run.model
    assert [h.value for h in at.header][2:] == ["3. Watch it learn", "4. Time-lapse: scrub through training",
                                                "5. Before and after", "6. Use your model"]
    assert at.success[0].value == "Trained 30 steps."
    assert at.sidebar.selectbox[0].options[-1] == "my model (yours, this session only)"
    assert at.query_params["run"] in (run.id, [run.id]), "the URL names the run, so a restarted server can say so"

    slider = at.select_slider(key=f"train.lapse_step_{run.id}")
    assert slider.options[0] == "0" and slider.value == 30
    slider.set_value(0).run()
    assert metric(at, "Step") == "0" and not at.exception
    at.selectbox(key=f"train.lapse_head_{run.id}").set_value(3).run()
    assert not at.exception
    at.button(key="train.lapse_play").click().run()  # play: from the first frame, one frame per tick
    assert at.select_slider(key=f"train.lapse_step_{run.id}").value == 0 and at.button(key="train.lapse_pause")
    at.run()
    assert at.select_slider(key=f"train.lapse_step_{run.id}").value > 0
    at.button(key="train.lapse_pause").click().run()
    assert at.button(key="train.lapse_play") and not at.exception

    prompt = at.text_input(key=f"train.compare_prompt_{run.id}")
    prompt.set_value("").run()
    assert any("Type a prompt" in i.value for i in at.info)
    hostile = "The dog ran 🐕 to the park, ünïcödé <b>bold</b> $x$ :red[y]"
    at.text_input(key=f"train.compare_prompt_{run.id}").set_value(hostile).run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert "Download my model (.zip, Hugging Face format)" in labels and "Download the losses (CSV)" in labels


def test_zips_upload_as_a_session_model_and_hostile_ones_are_refused():
    at = page()
    uploader = at.file_uploader(key="train.upload_zip")
    uploader.set_value(("evil.zip", b"PK\x03\x04 not really a zip", "application/zip")).run()
    assert at.error[0].value.replace("\\", "") == "evil.zip was not loaded. The file is not a zip archive."
    assert "uploaded model" not in at.session_state["models.session"]
    good = export_zip(tiny_model(seed=1), tokenizer(), "old-model")
    at.file_uploader(key="train.upload_zip").set_value(("old-model.zip", good, "application/zip")).run()
    assert not at.exception
    assert "uploaded model" in at.session_state["models.session"]
    assert any("Loaded old-model.zip" in s.value.replace("\\", "") for s in at.success)


def test_the_uploader_says_its_limit_and_names_are_shown_as_text():
    at = page()
    uploader = at.file_uploader(key="train.upload_zip")
    assert "up to 25 MB" in uploader.label  # Streamlit shows only a red icon for a file over the limit
    assert "24 layers" in uploader.help and "256 MB" in uploader.help
    name = "**bold** <img src=x>.zip"
    good = export_zip(tiny_model(seed=1), tokenizer(), "old-model")
    uploader.set_value((name, good, "application/zip")).run()
    message = next(s.value for s in at.success if "Loaded" in s.value)
    assert md(name) in message and name not in message  # escaped: no bold, no tag


def test_an_upload_with_a_hostile_tokenizer_is_refused_in_words():
    good = export_zip(tiny_model(seed=1), tokenizer(), "m")
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist()}
    tok = json.loads(files["m/tokenizer.json"])
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
    files["m/tokenizer.json"] = json.dumps(tok).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    at = page()
    at.file_uploader(key="train.upload_zip").set_value(("slow.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception
    assert "slow.zip was not loaded. tokenizer.json holds a regular expression" in at.error[0].value.replace("\\", "")
    assert "uploaded model" not in at.session_state["models.session"]


def test_a_model_too_costly_to_look_inside_is_refused_before_training(monkeypatch):
    monkeypatch.setenv("GLASSBOX_TRACE_BUDGET_MB", "0.5")
    at = page()
    message = at.error[0].value.replace("\\", "")
    assert "One look inside this model over its full 64-token context would hold 1.0 MB (" in message
    assert "this server allows 512 KB per trace (GLASSBOX_TRACE_BUDGET_MB)" in message
    assert at.button(key="train.start").disabled


def test_a_learning_rate_too_high_explains_and_keeps_no_broken_model():
    at = page()
    at.select_slider(key="train.learning_rate").set_value(1000.0).run()
    run = train_to_the_end(at, steps=60)
    assert run.status().state == "diverged"
    assert "learning rate" in at.error[0].value and "ten times lower" in at.error[0].value
    # Its last good weights are kept in the run; only a model that learned something becomes "my model".
    assert ("my model" in at.session_state["models.session"]) == (run.kept_step > 0)



def test_text_and_settings_survive_a_visit_to_another_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/5_Train.py").run()
    at.radio(key="train.corpus_kind").set_value("Paste text").run()
    at.text_area(key="train.paste").set_value("A text I pasted. " * 50).run()
    at.selectbox(key="train.n_layer").set_value(3).run()
    at.switch_page("app.py").run()  # the home page draws none of the Train page's widgets
    at.switch_page("pages/5_Train.py").run()
    assert at.radio(key="train.corpus_kind").value == "Paste text"
    assert at.text_area(key="train.paste").value == "A text I pasted. " * 50
    assert at.selectbox(key="train.n_layer").value == 3 and not at.exception


def test_fine_tuning_the_builtin_model_keeps_its_shape_and_tokenizer():
    at = page()
    base = at.selectbox(key="train.base")
    assert base.value == "" and any(o.startswith("fine-tune glassbox-stories") for o in base.options)
    at.selectbox(key="train.base").set_value(ui_default_key()).run()
    assert not at.exception, [e.message for e in at.exception]
    assert not any(s.key == "train.n_layer" for s in at.selectbox), "the shape is the model's"
    assert any("Fine-tuning" in c.value and "4,096-token tokenizer" in c.value for c in at.caption)
    assert metric(at, "Parameters") == f"{GPTConfig(n_layer=4, n_head=4, n_embd=128).n_params():,}"
    run = train_to_the_end(at, steps=3)
    assert run.status().state == "done" and run.init is not None
    assert run.status().val_losses[0][1] < 2.5, "it started from the trained model, not from noise"


def ui_default_key() -> str:
    import ui
    return ui.models.default_model().key


def test_a_model_the_server_has_no_room_for_can_still_be_downloaded(monkeypatch):
    monkeypatch.setenv("GLASSBOX_SESSIONS_MB", "0.01")  # every visitor's models together: less than a tiny one
    at = page()
    at.number_input(key="train.max_steps").set_value(30).run()
    at.button(key="train.start").click().run()
    run = at.session_state[RUN]
    run.join(TIMEOUT)
    at.run()
    assert not at.exception
    assert at.session_state["train.registered"] == f"not kept:{run.id}"
    assert "my model" not in at.session_state["models.session"]
    assert any("memory for visitors' own models and traces is full" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert any(NOT_KEPT in m.value for m in at.markdown), "the page says the model can still be downloaded"
    assert "Download my model (.zip, Hugging Face format)" in [b.label for b in at.get("download_button")]
