"""The Next token page run headless with AppTest: it reacts to the sampling controls without rerunning the
model, generates, undoes and restarts, draws repeatably, works with any model, and escapes token text."""
from __future__ import annotations

import html as html_lib
import json
import re
import itertools

import plotly.graph_objects as go
import pytest
import torch
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import ui.models
from engine import GPT, GPTConfig, SamplingSettings, load_tokenizer, sampling_stages
from engine.generation.sampling_lab import Run, advance, blame, draw, removed_by, top_tokens
from engine.inspect.surprise import text_surprise
from ui.next_token.controls import ALL_PRESETS
from ui.next_token.draws import draws_html
from ui.next_token.figures import distribution_figure, draws_figure
from ui.next_token.generation import run_html
from ui.next_token.surprise import surprise_html, window_html
from views_at import floats, report, sent

PAGE = str(ROOT / "pages" / "4_Next_token.py")
TIMEOUT = 120  # seconds per script run: the first loads the model, the machine is shared


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def chart(at: AppTest, key: str) -> dict:
    """The Plotly spec of the chart with this key."""
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(key):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key}")


LAB = "next_token.lab"  # the sampling lab, drawn in the browser (ui/views/sampling.py)
REPORTS = itertools.count(1)  # each report is new, as the browser's are


def settings(at: AppTest, preset: str | None = None, **change) -> AppTest:
    """The browser's sliders or a preset moved: the lab reports every setting and the stage."""
    now = {**vars(at.session_state["next_token.settings"]), "stage": sent(at, LAB)["sel"]["stage"]}
    view = {**now, **(vars(ALL_PRESETS[preset]) if preset else {}), **change}
    return report(at, LAB, {**view, "n": next(REPORTS)})


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_temperature_reshapes_the_distribution_without_running_the_model(monkeypatch) -> None:
    at = page()
    ok(at)
    first = sent(at, LAB)
    assert first["sel"] == {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "stage": "① Raw logits"}
    assert len(floats(first["logits"])) == 4096  # the whole row: the browser computes every stage from it
    calls = []
    real = GPT._run
    monkeypatch.setattr(GPT, "_run", lambda self, *a: calls.append(1) or real(self, *a))
    settings(at, temperature=0.3)
    ok(at)
    assert at.session_state["next_token.settings"] == SamplingSettings(temperature=0.3)
    assert at.query_params["temp"] == "0.3"
    assert sent(at, LAB) == first  # the browser drew it already: the same message, sent as a reference
    settings(at, top_p=0.5)
    settings(at, preset="creative")
    assert at.session_state["next_token.settings"] == ALL_PRESETS["creative"]
    settings(at, temperature=123.0, top_k=-1)  # not a slider's option: a hand-made message changes nothing
    assert at.session_state["next_token.settings"] == ALL_PRESETS["creative"]
    at.select_slider(key="next_token.position").set_value(1).run()
    ok(at)
    now = sent(at, LAB)
    assert now["position"] == 1 and now["logits"] != first["logits"]
    assert now["sel"]["temperature"] == 1.3  # the settings the browser reported come back with the new row
    assert calls == []  # every change above reshaped the cached logits only


def test_greedy_draws_the_same_token() -> None:
    at = page()
    settings(at, preset="greedy")
    ok(at)
    assert at.session_state["next_token.settings"].greedy
    for _ in range(3):
        at.button(key="next_token.draw_one").click().run()
    draws = at.session_state["next_token.draws"]
    assert len(draws) == 3 and len({d["id"] for d in draws}) == 1
    assert len({d["seed"] for d in draws}) == 3  # fresh seeds, and still the same token
    assert all(d["probability"] == 1.0 for d in draws)


def test_the_same_seed_repeats_a_sampled_draw() -> None:
    at = page()
    settings(at, preset="creative")
    at.toggle(key="next_token.fresh_seed").set_value(False).run()
    at.number_input(key="next_token.draw_seed").set_value(1234).run()
    for _ in range(2):
        at.button(key="next_token.draw_one").click().run()
    a, b = at.session_state["next_token.draws"]
    assert a["seed"] == b["seed"] == 1234 and a["id"] == b["id"]
    assert a["settings"] == "T 1.3 · min-p 0.02"  # drawn with the settings the browser reported
    at.button(key="next_token.draw_many").click().run()
    ok(at)
    hist = chart(at, "next_token.hist_chart")
    shares = next(t for t in hist["data"] if t["name"].startswith("share"))["y"]
    assert sum(shares) == pytest.approx(1.0)
    before = hist["data"]
    settings(at, temperature=0.1)  # the histogram follows the sliders, with the same seed
    assert chart(at, "next_token.hist_chart")["data"] != before


def test_generate_undo_restart_and_step_view() -> None:
    at = page()
    at.button(key="next_token.step").click().run()
    ok(at)
    assert len(at.session_state["next_token.run"].steps) == 1
    at.number_input(key="next_token.n_steps").set_value(5).run()
    at.button(key="next_token.run_n").click().run()
    ok(at)
    run = at.session_state["next_token.run"]
    assert len(run.steps) == 6 and at.slider(key="next_token.view").value == 6
    assert chart(at, "next_token.step_chart")["layout"]["title"]["text"].startswith("Step 6")
    at.slider(key="next_token.view").set_value(2).run()
    assert chart(at, "next_token.step_chart")["layout"]["title"]["text"].startswith("Step 2")
    at.button(key="next_token.replay").click().run()  # plays every step into the same two slots
    ok(at)
    assert chart(at, "next_token.replay_6")["layout"]["title"]["text"].startswith("Step 6")
    at.button(key="next_token.undo").click().run()
    assert at.session_state["next_token.run"].ids == run.ids[:-1]
    at.button(key="next_token.run_n").click().run()  # same seed, same settings: the same tokens again
    assert at.session_state["next_token.run"].ids[:len(run.ids)] == run.ids
    at.button(key="next_token.restart").click().run()
    ok(at)
    assert at.session_state["next_token.run"].steps == ()
    assert "next_token.settings" in at.session_state and "run" not in at.session_state  # keys: next_token.*


def test_any_model_and_generating_past_its_window() -> None:
    tok = load_tokenizer(ROOT / "models" / "glassbox-stories")
    torch.manual_seed(0)
    tiny = GPT(GPTConfig(block_size=24, vocab_size=len(tok), n_layer=1, n_head=2, n_embd=16)).eval()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ui.models.SESSION_MODELS] = {
        "tiny": ui.models.ModelChoice("tiny", tiny, tok, key="session:test:tiny", shared=False)}
    at.session_state[ui.models.SELECTED] = "tiny"
    at.session_state["state.text"] = "One day, a little dog ran to the park. " * 3  # longer than 24 tokens
    at.run()
    ok(at)
    assert "24 tokens" in " ".join(i.value for i in at.info)  # the trace was cut to the window
    at.number_input(key="next_token.n_steps").set_value(30).run()
    at.button(key="next_token.run_n").click().run()
    ok(at)
    run = at.session_state["next_token.run"]
    assert len(run.steps) == 30 and run.steps[-1].n_context == 24 and run.steps[-1].n_cut > 0
    assert any("no longer reach the model" in i.value for i in at.info)
    loss = chart(at, "next_token.loss")
    assert any(t.get("name", "").startswith("fresh start") for t in loss["data"])  # past the window: two lines
    assert "next_token.scores" in at.session_state  # a session model's scores stay in the session


@pytest.mark.parametrize("text", ["<img src=x onerror=alert(1)>", "$x^2$ *a* `b` [l](javascript:alert(1))",
                                  "漢字 🍕\n\tend", "\x00\x1b", "a" * 20_000])
def test_hard_inputs_render_cleanly(text: str) -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["state.text"] = text
    at.run()
    ok(at)
    assert all("<img" not in md.value for md in at.markdown)  # token text reaches HTML escaped


def test_empty_text_asks_for_text() -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["state.text"] = ""
    at.run()
    ok(at)
    assert any("Type some text" in i.value for i in at.info)


def test_long_example_shows_what_the_window_cuts() -> None:
    at = page()
    at.button(key="next_token.long_example").click().run()
    ok(at)
    assert any("gb-nt-cut" in m.value for m in at.markdown)  # the cut tokens, struck through
    assert any("are cut" in m.value for m in at.markdown)


# --- the HTML builders escape every token ------------------------------------------------------------------

HOSTILE = '<img src=x onerror=alert(1)> " onmouseover="alert(1)'


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


def test_surprise_and_window_html_escape_tokens(tokenizer) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=len(tokenizer), n_layer=1, n_head=1, n_embd=8)).eval()
    s = text_surprise(model, tokenizer, HOSTILE)
    for out in (surprise_html(s, tokenizer), window_html(s.tokens, 3)):
        assert "<img" not in out and '" onmouseover=' not in out
        assert out.count("<span") == out.count("</span>")
    text = "".join(html_lib.unescape(t) for t in re.findall(r">([^<]*)</span>", surprise_html(s, tokenizer)))
    assert text == HOSTILE  # every character is there, as text


def test_run_and_draw_html_escape_tokens(tokenizer) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=len(tokenizer), n_layer=1, n_head=1, n_embd=8)).eval()
    ids = tuple(tokenizer(HOSTILE, add_special_tokens=False)["input_ids"])
    run = advance(model, Run("k", ids, seed=0), 3, SamplingSettings())
    out = run_html(run, 3, tokenizer)
    assert "<img" not in out and '" onmouseover=' not in out and out.count("gb-nt-drawn") == 1
    draws = draws_html([{"draw": 1, "token": HOSTILE, "seed": 0, "probability": 0.5, "settings": "<b>x</b>"}])
    assert "<img" not in draws and "<b>" not in draws and "&lt;img" in draws


# --- figures are built without Plotly's validation at runtime, so validate them here ----------------------------

@pytest.mark.parametrize("s", [SamplingSettings(), SamplingSettings(temperature=0), SamplingSettings(
    temperature=0.7, top_k=5, top_p=0.8, min_p=0.1), SamplingSettings(temperature=10.0, top_p=0.01)], ids=str)
def test_every_figure_is_valid_plotly(s) -> None:
    logits = torch.randn(300, generator=torch.Generator().manual_seed(0)) * 3
    stages, masks = sampling_stages(logits, s), removed_by(logits, s)
    top = top_tokens(stages, 12, include=int(stages.order[-1]))
    labels = [f"&lt;t{t}&gt;" for t in top.ids]
    figures = [
        distribution_figure(top, labels, blame(masks, top.ids), drawn=top.ids[-1], actual=top.ids[0], title="x"),
        draws_figure(draw(stages, s, 500, seed=0), stages, {t: f"t{t}" for t in range(300)}),
    ]
    for fig in figures:
        spec = fig.to_dict()
        go.Figure(spec)  # raises on any invalid property
        assert spec["data"] and spec["layout"]["title"]["text"]


def test_selections_survive_a_visit_to_another_page() -> None:
    """Open the page, pick a position and a bar count, go Home and back: both are as they were (the position
    read "0: <|endoftext|>" after such a visit). A new text starts at its end again."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/4_Next_token.py").run()
    end = len(at.select_slider(key="next_token.position").options) - 1
    assert at.select_slider(key="next_token.position").value == end
    at.select_slider(key="next_token.position").set_value(3).run()
    at.slider(key="next_token.bars").set_value(9).run()
    settings(at, stage="③ Filters")
    at.switch_page("app.py").run()
    ok(at)
    at.switch_page("pages/4_Next_token.py").run()
    ok(at)
    assert at.select_slider(key="next_token.position").value == 3
    assert at.slider(key="next_token.bars").value == 9
    assert sent(at, LAB)["n_bars"] == 9 and sent(at, LAB)["position"] == 3
    assert sent(at, LAB)["sel"]["stage"] == "③ Filters"
    at.text_area(key="next_token.text_area").set_value("The cat sat on the mat.").run()
    picker = at.select_slider(key="next_token.position")
    assert picker.value == len(picker.options) - 1


def test_n_continuations_show_the_determinism_pitfall_on_text() -> None:
    """N whole continuations: greedy writes one text N times; sampling writes different ones; the same seed
    writes the same N again."""
    at = page()
    settings(at, preset="greedy")
    at.button(key="next_token.continue_many").click().run()
    ok(at)
    texts = at.session_state["next_token.continuations"]["texts"]
    assert len(texts) == 5 and len(set(texts)) == 1 and texts[0]
    assert any("all 5 continuations are the same text" in c.value for c in at.caption)
    settings(at, preset="model as is")
    at.toggle(key="next_token.fresh_seed").set_value(False).run()
    at.number_input(key="next_token.draw_seed").set_value(7).run()
    at.button(key="next_token.continue_many").click().run()
    ok(at)
    first = at.session_state["next_token.continuations"]["texts"]
    assert len(set(first)) > 1
    at.button(key="next_token.continue_many").click().run()
    assert at.session_state["next_token.continuations"]["texts"] == first
    assert any("continuations after position" in m.value for m in at.markdown)
