"""The workshop wing run headless with Streamlit's AppTest: the tour walked by pressing Next, links to the exact
view through st.query_params (round trips, long texts, tampered and stale values), presenter mode, the
glossary and the key takeaways."""
from __future__ import annotations

import ast
import base64
import json
import random
import re
import zlib
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from ui.models import default_model_dir
from ui.registry import available
from ui.plots import PRESENTER_FIGURE_PX
from ui import terms
from ui.workshop import glossary, links, tour, views
from views_at import report, sent

TIMEOUT = 120  # seconds per run; the first run loads the model, a tour step may build the neuron atlas
NOTE = "Part of this link could not be used here"


def app(script: str = "app.py", **params: str) -> AppTest:
    """A fresh session opening `script` with the URL query `params`."""
    at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def query(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


def link_text(q: dict[str, str]) -> str:
    return links.unpack_text(q["tz"]) if "tz" in q else q["text"]


def notes(at: AppTest) -> str:
    return " ".join(i.value for i in at.info)


def button(at: AppTest, suffix: str):
    found = [b for b in at.button if b.key and b.key.endswith(suffix)]
    assert found, f"no button *{suffix} on {at.session_state['state.page']}"
    return found[0]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


# --- the tour --------------------------------------------------------------------------------------------------

def test_pressing_next_walks_every_step_and_each_step_sets_its_view() -> None:
    at = app()
    at.sidebar.button(key="home.tour_start_sidebar").click().run()
    steps = tour.steps()
    for step in steps:
        clean(at)
        assert at.session_state["state.page"] == step.page.id, step.title
        progress = at.get("progress")[0].proto.text
        assert progress.startswith(f"Step {step.number} of {len(steps)} · chapter ")
        q = query(at)
        assert q["tour"] == str(step.number)
        for name, value in step.fixed_view.items():  # the page's own keys hold the step's view: the URL reads them
            assert (link_text(q) if name == "text" else q.get(name)) == value, (step.title, name)
        for name in set(step.view) - set(step.fixed_view):  # a measured value: tests/test_tour_claims.py checks it
            assert q.get(name, "").isdigit(), (step.title, name)
        button(at, ".tour_next").click().run()
    clean(at)
    assert at.session_state["workshop.tour"] == {"step": len(steps) - 1, "on": False}  # Finish leaves it
    assert not at.get("progress")


def test_a_step_sets_the_widgets_themselves() -> None:
    at = app("pages/2_Attention.py", tour="5")  # one head up close: the strongest induction head, the second "fox"
    clean(at)
    q = query(at)
    assert sent(at, "attention.view")["sel"] == {"layer": int(q["layer"]), "head": int(q["head"]), "query": 20}
    assert at.session_state["attention.tab"] == "All heads"
    button(at, ".tour_next").click().run()  # how one weight is made: another tab, the same pick
    clean(at)
    assert at.session_state["attention.tab"] == "How a weight is made"
    at = app("pages/4_Next_token.py", tour=str(next(s.number for s in tour.steps() if s.title == "Temperature")))
    clean(at)
    assert sent(at, "next_token.lab")["sel"]["temperature"] == 0.5


def test_back_leave_and_resume() -> None:
    at = app()
    at.sidebar.button(key="home.tour_start_sidebar").click().run()
    button(at, ".tour_next").click().run()
    button(at, ".tour_next").click().run()
    assert at.session_state["workshop.tour"]["step"] == 2
    button(at, ".tour_back").click().run()
    clean(at)
    assert at.session_state["workshop.tour"] == {"step": 1, "on": True}
    button(at, ".tour_exit").click().run()
    clean(at)
    assert not at.get("progress") and "tour" not in query(at)
    resume = at.sidebar.button(key="tokens.tour_start_sidebar")
    assert resume.label == "Resume the tour (step 2)"
    resume.click().run()
    clean(at)
    assert at.get("progress")[0].proto.text.startswith("Step 2 of")


def test_a_step_stays_live_and_next_goes_on_from_there() -> None:
    at = app("pages/3_Feed_forward.py", tour="9")  # the residual stream: the step sets no text of its own
    clean(at)
    mine = "Tom and his sister built a tall tower of blocks."
    at.text_area(key="feedforward.text_area").set_value(mine).run()
    clean(at)
    assert link_text(query(at)) == mine and query(at)["tour"] == "9"  # changed, and still on the step
    button(at, ".tour_next").click().run()  # the logit lens
    clean(at)
    assert at.session_state["state.text"] == mine
    assert query(at)["tour"] == "10" and query(at)["tab"] == "logit-lens"


def test_a_tour_link_opens_its_step_on_its_own_page() -> None:
    at = app(tour="7")  # the home page's link to the "bank" step
    clean(at)
    assert at.session_state["state.page"] == "attention"
    assert at.session_state["attention.tab"] == "Context changes meaning"
    assert at.session_state["attention.pair.kept"].startswith("bank")


def test_the_tour_file_is_checked_when_it_loads(tmp_path: Path) -> None:
    cases = {
        'page = "Nowhere"': "no page 'Nowhere'",
        'page = "attention"\nview = { wobble = 1 }': "Attention has no setting ['wobble']",
        'page = "home"\ntext = "missing"': "no text named 'missing'",
    }
    for body, message in cases.items():
        path = tmp_path / "tour.toml"
        path.write_text(f'[[step]]\nchapter = "c"\ntitle = "t"\nbody = "b"\nfigure = ".x"\n{body}\n')
        with pytest.raises(ValueError, match=re.escape(message)) as e:
            tour.load(path)
        assert "step 1" in str(e.value)


def test_the_tour_quotes_the_models_shape_rather_than_writing_it_down() -> None:
    """Its words say the model in use, whatever it is: the built-in model's figures are never written into them
    (tests/test_tour_claims.py reads every quoted number back from the page it opens)."""
    cfg = json.loads((default_model_dir() / "config.json").read_text())
    written = " ".join(f"{s.body} {s.otherwise}" for s in tour.steps())
    for figure in (f"{cfg['n_layer']} layers", f"{cfg['n_embd']} numbers", f"{4 * cfg['n_embd']} **neurons**",
                   f"{cfg['vocab_size']:,} tokens", f"{cfg['n_positions']} tokens", "1.35 million"):
        assert figure not in written
    for placeholder in ("{n_layer}", "{n_head}", "{width}", "{neurons}", "{vocab}", "{context}", "{params}"):
        assert placeholder in written


def test_the_long_story_is_longer_than_the_window() -> None:
    from engine import encode, load_tokenizer
    tokenizer = load_tokenizer(default_model_dir())
    block = json.loads((default_model_dir() / "config.json").read_text())["n_positions"]
    assert len(encode(tokenizer, tour.texts()["long-story"])) > block


# --- links to the exact view -----------------------------------------------------------------------------------

def test_attention_view_round_trips_through_the_url() -> None:
    at = app("pages/2_Attention.py")
    at.text_area(key="attention.text_area").set_value("The cat sat on the mat. The cat was happy.").run()
    report(at, "attention.view", {"layer": 3, "head": 1, "query": 5, "n": 1})  # picked in the browser
    at.session_state["attention.tab"] = "How a weight is made"
    at.run()
    clean(at)
    q = query(at)
    assert (q["layer"], q["head"], q["token"], q["tab"]) == ("3", "1", "5", "how-a-weight-is-made")
    fresh = app("pages/2_Attention.py", **q)  # another session opens the link
    clean(fresh)
    assert fresh.text_area(key="attention.text_area").value == "The cat sat on the mat. The cat was happy."
    assert (fresh.selectbox(key="attention.layer").value, fresh.selectbox(key="attention.head").value,
            fresh.selectbox(key="attention.query").value) == (3, 1, 5)
    assert fresh.session_state["attention.tab"] == "How a weight is made"
    assert query(fresh) == q and NOTE not in notes(fresh)


def test_next_token_view_round_trips_with_its_sampling_settings_seed_and_draws() -> None:
    at = app("pages/4_Next_token.py")
    report(at, "next_token.lab", {"temperature": 0.7, "top_k": 40, "top_p": 1.0, "min_p": 0.0,
                                  "stage": "① Raw logits", "n": 1})  # the browser's sliders moved
    at.toggle(key="next_token.fresh_seed").set_value(False).run()
    at.number_input(key="next_token.draw_seed").set_value(1234).run()
    at.button(key="next_token.draw_many").click().run()
    clean(at)
    q = query(at)
    assert (q["temp"], q["top_k"], q["seed"], q["draws"]) == ("0.7", "40", "1234", "1000")
    fresh = app("pages/4_Next_token.py", **q)
    clean(fresh)
    assert sent(fresh, "next_token.lab")["sel"]["temperature"] == 0.7
    assert sent(fresh, "next_token.lab")["sel"]["top_k"] == 40
    assert fresh.number_input(key="next_token.draw_seed").value == 1234
    assert fresh.toggle(key="next_token.fresh_seed").value is False
    assert fresh.session_state["next_token.hist"] == {"n": 1000, "seed": 1234}  # the same 1,000 draws
    assert query(fresh) == q


def test_feedforward_view_round_trips() -> None:
    at = app("pages/3_Feed_forward.py", tab="neuron-explorer", layer="2", neuron="17")
    clean(at)
    assert at.session_state["feedforward.tab"] == "Neuron explorer"
    assert at.selectbox(key="feedforward.layer").value == 2
    assert at.selectbox(key="feedforward.neuron").value == 17
    q = query(at)
    assert (q["tab"], q["layer"], q["neuron"]) == ("neuron-explorer", "2", "17")


def test_changing_a_control_updates_the_url() -> None:
    at = app("pages/2_Attention.py")
    assert query(at)["head"] == "0"
    report(at, "attention.view", {"layer": 0, "head": 2, "query": 3, "n": 1})  # picked in the browser
    assert query(at)["head"] == "2"
    at.text_area(key="attention.text_area").set_value("A new story.").run()
    assert query(at)["text"] == "A new story."


def test_a_long_text_is_compressed_and_a_longer_one_cut_to_fit() -> None:
    story = tour.texts()["long-story"]
    packed = links.pack_text(story)
    assert packed.name == "tz" and packed.chars == len(story)
    assert len(packed.value) < 0.7 * len(quote_plus(story))
    at = app("pages/4_Next_token.py", tz=packed.value)
    clean(at)
    assert at.session_state["state.text"] == story
    rng = random.Random(0)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz .,") for _ in range(5_000))  # compresses poorly
    cut = links.pack_text(noise)
    assert 0 < cut.chars < len(noise)
    assert len(cut.value if cut.name == "tz" else quote_plus(cut.value)) <= links.LINK_TEXT_CHARS
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["state.text"] = noise
    at.run()
    clean(at)
    assert link_text(query(at)) == noise[:cut.chars]
    assert any(f"the link carries the first {cut.chars:,}" in w.value for w in at.warning)


@pytest.mark.parametrize("text", ["Zoë's 🦊 naïve café\n\ttab", "a\x00b\x07c", "<b>&amp;</b> $x$ **bold**",
                                  "x" * 4_000])
def test_texts_survive_packing(text: str) -> None:
    packed = links.pack_text(text)
    assert (links.unpack_text(packed.value) if packed.name == "tz" else packed.value) == text


def test_a_compressed_bomb_is_refused() -> None:
    bomb = base64.urlsafe_b64encode(zlib.compress(b"a" * 10_000_000, 9)).decode()
    with pytest.raises(views.Unusable):
        links.unpack_text(bomb)
    at = app(tz=bomb)
    clean(at)
    assert NOTE in notes(at) and at.session_state["state.text"] == ui_default_text()


def ui_default_text() -> str:
    import ui.state
    return ui.state.DEFAULT_TEXT


@pytest.mark.parametrize("script, params, defaults", [
    ("pages/2_Attention.py", {"layer": "99", "head": "-1", "token": "4000", "tab": "nope"},
     {"attention.layer": 0, "attention.head": 0, "attention.tab": "All heads"}),
    ("pages/2_Attention.py", {"layer": "1e9", "head": "two", "token": "", "pair": "<script>"},
     {"attention.layer": 0, "attention.head": 0}),
    ("pages/4_Next_token.py", {"temp": "nan", "top_k": "-5", "top_p": "7", "min_p": "inf", "seed": "x",
                               "draws": "3", "stage": "??"},
     {"next_token.temperature": 1.0, "next_token.top_k": 0, "next_token.top_p": 1.0}),
    ("pages/3_Feed_forward.py", {"tab": "", "layer": "4", "neuron": "100000"}, {"feedforward.tab": "Activations"}),
    ("app.py", {"model": "someone-elses-model", "tz": "%%%", "tour": "0", "present": "yes"}, {}),
], ids=["attention-ranges", "attention-garbage", "next-token", "feed-forward", "model-text-tour-present"])
def test_a_tampered_or_stale_link_falls_back_with_one_line(script: str, params: dict, defaults: dict) -> None:
    at = app(script, **params)
    clean(at)
    said = [i.value for i in at.info if i.value.startswith(NOTE)]
    assert len(said) == 1  # one line, naming each value left out
    for name in params:
        assert f"{'tz' if name == 'tz' else name}=" in said[0]
    for key, value in defaults.items():
        assert at.session_state[key] == value
    assert "someone-elses-model" not in query(at).values()
    at.run()  # the note is said once; the page goes on without it
    assert not [i for i in at.info if i.value.startswith(NOTE)]


def test_a_link_names_the_models_the_selector_offers() -> None:
    name = default_model_dir().name
    at = app(model=name)
    clean(at)
    assert NOTE not in notes(at) and query(at)["model"] == name


SHARED_OWNERS = {"state", "models", "cache", "workshop", "ndif", "memory"}  # the shared modules that keep session keys


def test_every_page_has_the_link_control_and_names_its_keys_by_its_id() -> None:
    """Session keys are `<owner>.<name>`: a page's own come from PAGE.key, the rest from a shared module."""
    for page in available():
        at = app(page.script)
        assert not at.exception, page.script
        assert at.get("popover"), page.script
        for key in at.session_state.keys():
            if key.startswith("$$"):  # Streamlit's id of a widget without a key
                continue
            if key.startswith("FormSubmitter:"):  # Streamlit names a form's submit button by the form's key
                key = key.removeprefix("FormSubmitter:").rsplit("-", 1)[0]
            owner = key.split(".", 1)[0]
            assert "." in key and owner in SHARED_OWNERS | {page.id}, f"{page.title}: session key {key!r}"


# --- presenter mode --------------------------------------------------------------------------------------------

def test_presenter_mode_from_the_link() -> None:
    at = app("pages/4_Next_token.py", present="1")
    clean(at)
    assert at.session_state["state.presenting"] is True
    assert at.sidebar.toggle(key="next_token.present").value is True
    assert query(at)["present"] == "1"
    assert any(e.label.startswith("Your text") for e in at.expander)  # the text box is folded away
    assert max(c["layout"]["height"] for c in charts(at)) <= PRESENTER_FIGURE_PX  # figures sized to the screen
    button(at, ".present_off").click().run()
    clean(at)
    assert "present" not in query(at) and not any(e.label.startswith("Your text") for e in at.expander)
    assert max(c["layout"]["height"] for c in charts(at)) > PRESENTER_FIGURE_PX


# --- the glossary and the takeaways ----------------------------------------------------------------------------

ISSUE_TERMS = {"parameters", "transformer", "rlhf", "token", "embedding", "attention head", "query key value",
               "logit", "softmax", "temperature", "top-k top-p", "context window", "residual stream", "neuron",
               "logit lens", "perplexity", "dpo"}


def test_the_glossary_page_lists_every_term_and_takeaway_with_a_link() -> None:
    at = app("pages/7_Glossary.py")
    clean(at)
    shown = " ".join(m.value for m in at.markdown)
    assert ISSUE_TERMS <= set(terms.terms())
    for entry in [*terms.terms().values(), *terms.takeaways()]:
        assert f"{entry.name}**" in shown and entry.text in shown
    assert len(terms.takeaways()) == 6


@pytest.mark.parametrize("entry", [*terms.terms().values(), *terms.takeaways()], ids=lambda e: e.key)
def test_every_glossary_view_is_one_the_app_can_show(entry: terms.Entry) -> None:
    page, view = glossary.view_of(entry)
    at = app(page.script, **links.url_params(view))
    clean(at)
    assert NOTE not in notes(at)
    assert at.session_state["state.page"] == page.id


def test_every_define_call_names_a_glossary_term() -> None:
    """A help text that names a term the glossary lacks would raise on the page: read every call."""
    called = set()
    for path in [*ROOT.glob("ui/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "define":
                arg = node.args[0]
                if isinstance(arg, ast.Constant):
                    called.add(arg.value)
                elif path.name == "sections.py":  # position_picker(v, key, term): its callers pass constants
                    continue
                else:
                    pytest.fail(f"{path.name}: define() with a computed term")
    assert called and called <= set(terms.terms()), called - set(terms.terms())
    assert len(called) >= 15  # shown where the terms appear, not only on the Glossary page
