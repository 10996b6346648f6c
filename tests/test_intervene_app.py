"""The Intervene page run headless with Streamlit's AppTest: every tab draws on the built-in model and on
server folders (a Llama and a GPT-2 one), each control changes what is drawn, and bad input (an empty text, a
pair whose words split differently, a grid over the budget, an extreme strength, an empty set of prompts) is
one plain line, never a traceback."""
from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import ui.intervene.patching
import ui.models
from engine_fixtures import save_server_models
from test_feedforward_app import array

PAGE = str(ROOT / "pages" / "9_Intervene.py")
TIMEOUT = 120
TABS = ("Activation patching", "Ablation", "Steering", "Force a token", "Which tokens mattered")


def page(tab: str = TABS[0], text: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["intervene.tab"] = tab
    if text is not None:
        at.session_state["state.text"] = text
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [c["layout"].get("title", {}).get("text", "") for c in charts(at)]


def said(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.caption, *at.warning, *at.markdown, *at.error])


def own_pair(clean_text: str, corrupted: str) -> dict:
    return {"intervene.pair.kept": "Your own pair", "intervene.clean.kept": clean_text,
            "intervene.corrupted.kept": corrupted}


def grid_of(at: AppTest) -> np.ndarray:
    found = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("Share of the logit difference")]
    assert len(found) == 1, titles(at)
    return array(found[0]["data"][0]["z"])


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_draws(tab: str) -> None:
    at = page(tab)
    clean(at)
    assert "What it does not show" in said(at)  # every tab says what its method cannot tell
    if tab != "Force a token":
        assert charts(at)


def test_the_patching_grid_runs_and_a_clicked_cell_shows_three_runs() -> None:
    at = page()
    clean(at)
    grid = grid_of(at)
    assert grid.shape == (4, 16)  # 4 layers x the bank pair's 16 positions
    assert np.allclose(grid[:, :5], 0)  # before "river"/"town" the prompts are the same
    assert abs(grid[0, 5] - 1) < 1e-3  # copying the word in at the start recovers everything
    assert "the next token in three runs" in " ".join(titles(at))  # the best cell, until one is clicked
    at.session_state["intervene.cell.kept"] = (3, 15)  # what a click on a cell writes
    at.run()
    clean(at)
    cell = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("Layer 3, position 15")]
    assert cell and [d["name"] for d in cell[0]["data"]] == ["clean", "corrupted", "patched"]
    at.radio(key="intervene.grid").set_value("heads").run()
    clean(at)
    assert grid_of(at).shape == (4, 4)


def test_other_answers_change_the_grid() -> None:
    at = page()
    before = grid_of(at)
    box = at.selectbox(key="intervene.answer_corrupted")
    taken = {box.index, at.selectbox(key="intervene.answer_clean").index}
    box.select_index(next(i for i in range(len(box.options)) if i not in taken)).run()
    clean(at)
    assert not np.allclose(grid_of(at), before)


@pytest.mark.parametrize("clean_text, corrupted, words", [
    ("Lily went to the river.", "Lily went to the riverside.", "line up token for token"),
    ("", "Lily went to the town.", "Both prompts need some text"),
    ("Lily went to the town.", "Lily went to the town.", "the same tokens"),
])
def test_a_pair_that_cannot_be_patched_is_one_line(clean_text: str, corrupted: str, words: str) -> None:
    at = page(**own_pair(clean_text, corrupted))
    assert not at.exception
    assert len(at.error) == 1 and words in at.error[0].value
    assert not [c for c in charts(at) if "Share of the logit" in c["layout"]["title"]["text"]]


def test_a_grid_over_the_budget_is_refused_and_a_dear_one_waits_for_its_button(monkeypatch) -> None:
    unique = uuid.uuid4().hex[:6]  # a pair no other test ran: nothing kept
    pair = own_pair(f"Lily went to the river {unique}. She looked at the",
                    f"Lily went to the town {unique}. She looked at the")
    monkeypatch.setenv("GLASSBOX_INTERVENE_BUDGET_S", "0.0001")
    at = page(**pair)
    assert not at.exception
    assert len(at.error) == 1 and "GLASSBOX_INTERVENE_BUDGET_S" in at.error[0].value
    monkeypatch.delenv("GLASSBOX_INTERVENE_BUDGET_S")
    monkeypatch.setattr(ui.intervene.patching, "AUTO_S", 0.0)
    at = page(**pair)
    clean(at)
    assert not [c for c in charts(at) if "Share of the logit" in c["layout"]["title"]["text"]]
    run = [b for b in at.button if b.key == "intervene.run_grid"]
    assert run and run[0].label.startswith("Run the grid")
    run[0].click().run()
    clean(at)
    assert grid_of(at).shape[0] == 4


def test_ablation_compares_before_and_after() -> None:
    at = page("Ablation", "Once upon a time, there was a little girl named Lily. One day,")
    clean(at)
    labels = [m.label for m in at.metric]
    assert any(label.startswith("Loss with head 0 of layer 0 set to zero") for label in labels)
    at.radio(key="intervene.part").set_value("mlp").run()
    at.radio(key="intervene.mode").set_value("mean").run()
    clean(at)
    metric = next(m for m in at.metric if m.label.startswith("Loss with the whole MLP of layer 0 set to its mean"))
    assert float(metric.value) > float(at.metric[0].value)  # losing a whole layer costs on the held-out story
    assert len(at.code) == 2  # the two completions, side by side
    at.radio(key="intervene.part").set_value("neuron").run()
    at.number_input(key="intervene.neuron").set_value(511).run()
    clean(at)
    assert any("neuron 511 of layer 0" in m.label for m in at.metric)


def test_steering_at_an_extreme_strength_warns_and_the_sweep_shows_the_grammar_go() -> None:
    at = page("Steering", "Once upon a time, there was a little girl named Lily.")
    clean(at)
    at.slider(key="intervene.strength").set_value(40.0).run()
    clean(at)
    assert any("lose its grammar" in w.value for w in at.warning)
    [b for b in at.button if b.key == "intervene.sweep"][0].click().run()
    clean(at)
    table = at.dataframe[0].value
    assert list(table["strength"]) == [0.0, 2.0, 5.0, 10.0, 20.0, 40.0]
    assert table["completion"].iloc[0] != table["completion"].iloc[-1]
    at.slider(key="intervene.strength").set_value(-40.0).run()
    clean(at)


def test_steering_with_an_empty_set_of_prompts_is_one_line() -> None:
    at = page("Steering", **{"intervene.set.kept": "Your own sets", "intervene.set_b.kept": "  \n\n"})
    assert not at.exception
    assert len(at.error) == 1 and "Set B has no prompts" in at.error[0].value


def test_forcing_a_token_adds_a_branch_and_clearing_removes_it() -> None:
    at = page("Force a token", "Once upon a time, there was a little")
    clean(at)
    assert "**the original**" in [m.value for m in at.markdown]
    [b for b in at.button if b.key == "intervene.force"][0].click().run()
    clean(at)
    heads = [m.value for m in at.markdown if m.value.startswith("**branch")]
    assert len(heads) == 1 and "step 0 forced to" in heads[0]
    [b for b in at.button if b.key == "intervene.clear"][0].click().run()
    clean(at)
    assert not [m.value for m in at.markdown if m.value.startswith("**branch")]


def test_which_tokens_mattered_for_a_chosen_output() -> None:
    at = page("Which tokens mattered", "Once upon a time, there was a little girl named Lily. Then")
    clean(at)
    assert any(t.startswith("Each input token's effect") for t in titles(at))
    assert "Spearman" in said(at)
    at.selectbox(key="intervene.output").set_value(5).run()
    clean(at)
    bars = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("Each input token's effect"))
    assert len(bars["data"][0]["x"]) == 4  # positions 1..4 explain the token at 5
    at.selectbox(key="intervene.output").set_value(1).run()  # nothing of the text before the first token
    clean(at)
    assert "at least one token of your text before it" in said(at)


HOSTILE = '<script>alert(1)</script> **bold** $x$ [link](javascript:x) & "quotes" \u202e\u0000 🦊'


@pytest.mark.parametrize("tab", TABS[1:])
def test_hostile_and_overlong_texts_draw_cleanly(tab: str) -> None:
    at = page(tab, HOSTILE)
    clean(at)
    bodies = [h.proto.body for h in at.get("html")]
    assert not any("<script>alert" in b for b in bodies)  # escaped where tokens become HTML
    if tab in ("Force a token", "Which tokens mattered"):  # the tabs that draw the text token by token
        assert any("&lt;" in b and "gb-heat" in b for b in bodies)
    long = page(tab, "Once upon a time, there was a fox. " * 60)  # past the 256-token context
    clean(long)
    assert "sees the last 255" in said(long)


def test_an_empty_text_leaves_patching_working_and_the_others_say_what_to_do() -> None:
    for tab in TABS:
        at = page(tab, "")
        clean(at)
        if tab == TABS[0]:
            assert grid_of(at).shape == (4, 16)
        else:
            assert any("Type some text above" in i.value for i in at.info)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_server_models(root, families=("llama",))
    return root


@pytest.mark.parametrize("model", ["folder:tiny-llama", "folder:tiny-gpt2"])
def test_every_tab_draws_on_server_folders(models_dir, monkeypatch, model: str) -> None:
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(models_dir))
    ui.models.server_models.clear()
    ui.models.SHARED.clear()
    pair = own_pair("The cat sat on the bank and looked at the", "The dog sat on the bank and looked at the")
    try:
        for tab in TABS:
            at = page(tab, "Tom found a red ball. Then", **{"models.selected": model}, **pair)
            clean(at)
            if tab == TABS[0]:
                assert grid_of(at).shape[0] == 2  # the tiny folders have 2 layers
    finally:
        ui.models.server_models.clear()
        ui.models.SHARED.clear()
