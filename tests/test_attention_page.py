"""The Attention page run headless with Streamlit's AppTest: every tab draws, widgets change what is drawn,
choosing a head never reruns the model, and hard inputs and other model shapes draw cleanly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import ui.cache
import ui.state
from conftest import ROOT
from engine import GPT, GPTConfig, load_pretrained, load_tokenizer, run_trace
from engine.inspect.heads import stacked_patterns
from ui.models import ModelChoice, default_model_dir
from views_at import floats, report, sent

PAGE = str(ROOT / "pages" / "2_Attention.py")
TIMEOUT = 60
TABS = ("All heads", "How a weight is made", "What kind of head?", "Context changes meaning",
        "Compare two prompts")


def page(text: str | None = None, tab: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if text is not None:
        at.session_state["state.text"] = text
    if tab is not None:
        at.session_state["attention.tab"] = tab
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [c["layout"].get("title", {}).get("text", "") for c in charts(at)]


def clean(at: AppTest) -> None:
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


def messages(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.caption, *at.warning, *at.markdown])


VIEW = "attention.view"  # the "All heads" view, drawn in the browser (ui/views/attention.py)


def pick(at: AppTest) -> tuple[int, int, int]:
    return tuple(at.session_state[f"attention.{name}.kept"] for name in ("layer", "head", "query"))


def test_page_sends_every_heads_weights_once_and_draws_the_rest() -> None:
    at = page()
    clean(at)
    assert at.session_state["state.page"] == "attention"
    data = sent(at, VIEW)
    model, _ = load_pretrained(default_model_dir())
    trace = run_trace(model.eval(), load_tokenizer(default_model_dir()), ui.state.DEFAULT_TEXT)
    patterns = stacked_patterns(trace)  # [layer, head, q, k]
    n_layer, n_head, n, _ = patterns.shape
    assert (data["n_layer"], data["n_head"], data["tokens"]) == (n_layer, n_head, trace.tokens)
    assert data["sel"] == {"layer": 0, "head": 0, "query": n - 1}  # a new text starts at its last token
    q, k = torch.tril_indices(n, n)
    assert np.array_equal(floats(data["patterns"]), patterns[:, :, q, k].numpy().ravel())  # the trace's own numbers
    assert len(data["labels"]) == n_layer * n_head and data["labels"][0][0] in {"broad", "mixed", "self",
                                                                               "previous token", "first token (sink)"}
    assert {b.label for b in at.get("download_button")} >= {"Download every head's weights (CSV)"}
    assert "viridis" in messages(at)
    assert at.query_params["token"] == str(n - 1) and at.query_params["layer"] == "0"


def test_choosing_a_head_in_the_browser_reaches_the_session_and_the_url_without_rerunning_the_model(
        monkeypatch) -> None:
    calls = []
    real = ui.cache.run_trace
    monkeypatch.setattr(ui.cache, "run_trace", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    text = "A text only the head-choosing test uses, about a cat."
    at = page(text)
    first = sent(at, VIEW)
    last_layer, last_head = first["n_layer"] - 1, first["n_head"] - 1
    report(at, VIEW, {"layer": last_layer, "head": last_head, "query": 2, "n": 1})
    clean(at)
    assert pick(at) == (last_layer, last_head, 2)
    assert (at.query_params["layer"], at.query_params["head"], at.query_params["token"]) == (
        str(last_layer), str(last_head), "2")
    assert sent(at, VIEW) == first  # the browser drew it: the same message again (sent as a reference)
    report(at, VIEW, {"layer": 99, "head": "1", "query": -3, "n": 2})  # a hand-made message changes nothing
    clean(at)
    assert pick(at) == (last_layer, last_head, 2)
    for tab in TABS[1:3]:
        at.session_state["attention.tab"] = tab
        at.run()
        clean(at)
        assert (at.selectbox(key="attention.layer").value, at.selectbox(key="attention.head").value,
                at.selectbox(key="attention.query").value) == (last_layer, last_head, 2)
    assert calls == [text]
    # The choice survives a visit to another tab, and comes back to the browser with the view.
    at.session_state["attention.tab"] = TABS[0]
    at.run()
    assert sent(at, VIEW)["sel"] == {"layer": last_layer, "head": last_head, "query": 2}


def test_weight_steps_show_the_mask_for_an_earlier_query() -> None:
    at = page(tab="How a weight is made")
    clean(at)
    table = at.table[0].value  # a static table (st.table): the interactive grid cost the browser twice as much
    assert "−∞" not in set(table["score (trace)"])  # the last token sees everything
    assert "last token" in messages(at)
    worked = next(m for m in messages(at).split("For the key")[1:])
    assert "− −" not in worked and "−-" not in worked and "e^0" in worked  # the top score is shifted to 0
    at.selectbox(key="attention.query").select(3).run()
    clean(at)
    table = at.table[0].value
    assert list(table["key position"]) == [0, 1, 2, 3, 4, 5, 6]
    assert list(table["score (trace)"])[4:] == ["−∞"] * 3
    assert list(table["weight (trace)"])[4:] == [0.0] * 3
    assert sum(table["weight (trace)"]) == pytest.approx(1.0, abs=1e-5)
    assert any("z (trace)" in str(c["data"][0].get("y")) for c in charts(at))


def test_head_types_table_and_labels() -> None:
    at = page(tab="What kind of head?")
    clean(at)
    table = at.dataframe[0].value
    n_layer = len(at.selectbox(key="attention.layer").options)
    n_head = len(at.selectbox(key="attention.head").options)
    assert len(table) == n_layer * n_head
    assert set(table["label"]) <= {"induction", "previous token", "self", "first token (sink)", "broad", "mixed"}
    assert table[["previous", "self", "first", "entropy", "induction"]].stack().between(0, 1 + 1e-6).all()
    assert "heuristics" in " ".join(i.value for i in at.info)
    assert any(t.endswith("on the test sequence") for t in titles(at))
    assert "induction score: here" in messages(at)


def test_context_pairs_and_own_pair() -> None:
    at = page(tab="Context changes meaning")
    clean(at)
    pairs = at.selectbox(key="attention.pair").options
    assert len(pairs) >= 5 and pairs[-1] == "Your own pair"
    for pair in pairs[:-1]:
        at.selectbox(key="attention.pair").select(pair).run()
        clean(at)
        cosine = next(c for c in charts(at) if "cosine" in c["layout"]["yaxis"]["title"]["text"])
        assert cosine["data"][0]["y"][0] == pytest.approx(1.0)  # same token, same embedding
        assert at.selectbox(key="attention.word").value in pair
    at.text_input(key="attention.sentence_a").set_value("The sun is hot.").run()
    at.text_input(key="attention.sentence_b").set_value("My dog runs fast.").run()
    clean(at)
    assert at.selectbox(key="attention.pair").value == "Your own pair"
    assert "share no word" in messages(at)
    at.text_input(key="attention.sentence_b").set_value("The sun went down and it was hot again.").run()
    clean(at)
    assert at.selectbox(key="attention.word").options == ["the", "sun", "hot"]


def test_compare_two_prompts() -> None:
    at = page("Once upon a time, a little fox found a shiny red ball.", tab="Compare two prompts")
    clean(at)
    b = at.text_input(key="attention.compare_text").value
    assert b == "Once upon a time, a little dog found a shiny red ball."  # one word swapped
    assert any(t.startswith("A minus B on the") for t in titles(at))
    at.text_input(key="attention.compare_text").set_value("").run()
    assert "Type a prompt B" in messages(at)
    at.text_input(key="attention.compare_text").set_value("zzzz").run()
    clean(at)
    at.text_input(key="attention.compare_text").set_value("Once upon a time, a little fox found a shiny red ball.").run()
    clean(at)
    assert "The prompts are the same" in messages(at)
    assert not any(t.startswith("A minus B on the") for t in titles(at))


@pytest.mark.parametrize("text", [
    "<img src=x onerror=alert(1)> :red[boom] $x^2$ **bold** [link](javascript:alert(1))",
    "I love pizza 🍕😀 漢字 שלום",
    "nul\x00byte and bell\x07",
    "x",
], ids=["markup", "unicode", "control", "one-token"])
def test_hard_texts_draw_cleanly(text: str) -> None:
    for tab in TABS:
        at = page(text, tab=tab)
        clean(at)
        for spec in charts(at):
            assert "<img" not in json.dumps(spec)  # token text reaches Plotly escaped
    if text.startswith("<img"):  # the view gets the tokens as they are: the browser shows them as text
        assert "".join(sent(page(text), VIEW)["tokens"][1:]).replace("␣", " ").startswith("<img src=x onerror=")


def test_long_text_overview_uses_blocks() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    at = page(text)
    clean(at)
    assert "each the mean of the weights it covers" in messages(at)
    assert "sees the last" in messages(at)  # the context note from ui.trace_or_stop
    data = sent(at, VIEW)
    n = len(data["tokens"])
    assert data["overview"]["side"] < n  # every head in blocks
    assert (data["layers"], data["heads"]) == ([0], [0])  # and the chosen head whole: a text this long sends one
    assert len(floats(data["patterns"])) == n * (n + 1) // 2
    report(at, VIEW, {"layer": 1, "head": 2, "query": n - 1, "n": 1})  # a head the browser lacks: sent now
    assert (sent(at, VIEW)["layers"], sent(at, VIEW)["heads"]) == ([1], [2])


@pytest.fixture(scope="module")
def odd_model() -> ModelChoice:
    """A random model of another shape than the default: 3 layers of 2 heads, a 24-token context."""
    tokenizer = load_tokenizer(default_model_dir())
    model = GPT(GPTConfig(block_size=24, vocab_size=len(tokenizer), n_layer=3, n_head=2, n_embd=16)).eval()
    return ModelChoice("odd", model, tokenizer, key="session:test:odd", shared=False)


def test_any_model_shape(odd_model: ModelChoice) -> None:
    state = {"models.session": {"odd": odd_model}, "models.selected": "odd", "attention.layer.kept": 3,
             "attention.head.kept": 3}  # kept from a bigger model: out of range here
    text = ("Once upon a time, there was a girl who liked to read books about the sea and the fish in it. "
            "Every night her mother read her one more story before bed.")
    for tab in TABS:
        at = page(text, tab=tab, **state)  # longer than the 24-token context: the model reads the end
        clean(at)
        assert "sees the last 23" in messages(at)
        if tab == TABS[0]:
            data = sent(at, VIEW)
            assert (data["n_layer"], data["n_head"], data["sel"]["layer"], data["sel"]["head"]) == (3, 2, 0, 0)
            continue
        assert at.selectbox(key="attention.layer").options == ["0", "1", "2"]
        assert at.selectbox(key="attention.head").options == ["0", "1"]
        assert at.selectbox(key="attention.layer").value == 0


def test_a_head_type_no_head_reaches_is_said_with_what_a_larger_model_shows() -> None:
    """No head of the built-in model reaches the induction threshold: the page says so, with the closest
    head and what a larger model would show, instead of leaving the type silently absent."""
    at = page(tab="What kind of head?")
    clean(at)
    labels = set(at.dataframe[0].value["label"])
    assert "induction" not in labels
    text = messages(at)
    assert "No induction head" in text and "GPT-2 small" in text and "the rule needs 0.30" in text
    for kind in ("previous token", "self", "first token (sink)", "broad"):
        assert (kind in labels) != (f"No {kind} head" in text)
