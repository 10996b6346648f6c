"""The Train and Pre-training vs RLHF pages keep their view in the URL, as every other page does, so that a
reload (F5), a link or a restarted server brings back the training text and settings, the prompt and the tuning
settings; and a URL naming a run this server never started (it restarted since) says in one line that the run
was lost, where the returning tab used to show nothing at all."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine.train import background
from ui.runs import RELOADED, RESTARTED
from ui.workshop import links

TRAIN, RLHF = str(ROOT / "pages" / "5_Train.py"), str(ROOT / "pages" / "6_Pretraining_vs_RLHF.py")
TIMEOUT = 120
PASTED = "A story I pasted, with its own words: the otter kept a pebble in her pocket.\n" * 40


def params(at: AppTest) -> dict[str, str]:
    return {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}


def reopened(script: str, query: dict[str, str]) -> AppTest:
    """A fresh session (a reload) opened on `query`."""
    at = AppTest.from_file(script, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_train_page_keeps_its_text_and_settings_in_the_url():
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    at.radio(key="train.corpus_kind").set_value("Paste text").run()
    at.text_area(key="train.paste").set_value(PASTED).run()
    at.selectbox(key="train.n_layer").set_value(3).run()
    at.select_slider(key="train.learning_rate").set_value(3e-3).run()
    query = params(at)
    assert query["corpus"] == "paste-text" and query["n_layer"] == "3" and query["learning_rate"] == "0.003"
    assert links.unpack_text(query["pz"]) == PASTED if "pz" in query else query["paste"] == PASTED
    assert "run" not in query, "no run yet"

    again = reopened(TRAIN, query)
    assert again.radio(key="train.corpus_kind").value == "Paste text"
    assert again.text_area(key="train.paste").value == PASTED
    assert again.selectbox(key="train.n_layer").value == 3
    assert again.select_slider(key="train.learning_rate").value == 3e-3
    assert not again.warning and not again.info or all("link" not in i.value for i in again.info)


def test_a_text_too_long_for_a_link_comes_back_as_far_as_it_fits_and_the_page_says_so():
    long = "".join(f"Line {i}: the {i * 7919 % 1000}th otter counted {i * 104729 % 997} pebbles.\n"
                   for i in range(2000))
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    at.radio(key="train.corpus_kind").set_value("Paste text").run()
    at.text_area(key="train.paste").set_value(long).run()
    assert any("brings back the first" in c.value for c in at.caption)
    query = params(at)
    assert sum(len(v) for k, v in query.items() if k in ("pz", "paste")) <= links.LINK_TEXT_CHARS
    again = reopened(TRAIN, query)
    kept = again.text_area(key="train.paste").value
    assert long.startswith(kept) and 1000 < len(kept) < len(long)


def test_a_book_number_and_its_kind_come_back():
    query = {"corpus": "project-gutenberg-book", "book": "1342"}
    at = reopened(TRAIN, query)
    assert at.radio(key="train.corpus_kind").value == "Project Gutenberg book"
    assert at.number_input(key="train.book_number").value == 1342
    assert params(at)["book"] == "1342" and "paste" not in params(at) and "pz" not in params(at)


def test_bad_train_values_in_a_url_fall_back_with_one_line():
    at = reopened(TRAIN, {"n_layer": "7", "learning_rate": "nan", "corpus": "**bold**"})
    assert at.selectbox(key="train.n_layer").value == 2, "the tiny preset's"
    (note,) = [i.value for i in at.info if "could not be used" in i.value]
    assert "n_layer" in note and "learning_rate" in note and "corpus" in note and "**bold**" not in note


def test_the_rlhf_page_keeps_its_prompt_and_settings_in_the_url():
    at = AppTest.from_file(RLHF, default_timeout=TIMEOUT).run()
    at.text_input(key="rlhf.prompt").set_value("The otter found").run()
    at.number_input(key="rlhf.seed").set_value(42).run()
    at.select_slider(key="rlhf.beta").set_value(0.5).run()
    at.slider(key="rlhf.steps").set_value(60).run()
    query = params(at)
    assert (query["prompt"], query["seed"], query["beta"], query["steps"]) == ("The otter found", "42", "0.5", "60")

    again = reopened(RLHF, query)
    assert again.text_input(key="rlhf.prompt").value == "The otter found"
    assert again.number_input(key="rlhf.seed").value == 42
    assert again.select_slider(key="rlhf.beta").value == 0.5 and again.slider(key="rlhf.steps").value == 60


@pytest.mark.parametrize("script", [TRAIN, RLHF])
def test_a_run_this_server_never_started_says_the_server_restarted(script):
    at = reopened(script, {"run": "0123abcd"})
    assert [w.value for w in at.warning].count(RESTARTED) == 1
    assert RESTARTED == "This server restarted since your run started; the run was lost."
    at.run()
    assert RESTARTED not in [w.value for w in at.warning], "said once"
    assert "run" not in params(at), "the URL no longer names a run this page does not show"


@pytest.mark.parametrize("script", [TRAIN, RLHF])
def test_a_run_this_server_started_for_the_page_before_a_reload_says_so(script, monkeypatch):
    monkeypatch.setitem(background._STARTED, "feedc0de", None)
    at = reopened(script, {"run": "feedc0de"})
    assert RELOADED in [w.value for w in at.warning]
    assert RESTARTED not in [w.value for w in at.warning]


def test_a_url_that_is_not_a_run_id_is_left_out_with_the_links_line():
    at = reopened(TRAIN, {"run": "../../etc"})
    assert not at.warning
    assert any("run=" in i.value and "not a run this app named" in i.value for i in at.info)


def test_the_page_names_its_own_run_in_the_url():
    def script():
        from types import SimpleNamespace

        import streamlit as st

        from ui.train import PAGE
        from ui.view import Context
        setting = next(s for s in PAGE.settings if s.name == "run")
        st.text(str(setting.read(Context(PAGE, ""))))
        st.session_state["train.run"] = SimpleNamespace(id="c0ffee00")
        st.text(str(setting.read(Context(PAGE, ""))))
        setting.apply(Context(PAGE, ""), "0123abcd")  # an old URL does not replace the run this session holds
        st.text(str(st.session_state.get("train.notice")))
    at = AppTest.from_function(script).run()
    assert [t.value for t in at.text] == ["None", "c0ffee00", "None"]
