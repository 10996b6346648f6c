"""The tour never claims what the screen contradicts: every step is opened by its link, as an attendee would, and
each number its words quote is read back from the page it opens (the heads table, the cosine line, the draws'
caption, the window's line, the neuron explorer's examples, the sidebar's model facts). Walked on the built-in
model and on a small model trained here for a few steps, whose heads and neurons are nothing like the built-in
one's: the steps must say so in their `otherwise` words, not repeat the built-in model's story."""
from __future__ import annotations

import html
import json
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine import GPT, GPTConfig, load_tokenizer
from engine.train.corpus import builtin_stories, prepare
from engine.train.data import Batches, Source
from ui.models import ModelChoice, default_model_dir
from ui.workshop import tour

TIMEOUT = 180  # seconds per run: a step may build the neuron atlas of a new model
NUMBER = r"([0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?)"  # 1,000 or 0.5, never a trailing comma


def step(name: str) -> tour.Step:
    return next(s for s in tour.steps() if s.facts == name or s.title.startswith(name))


def open_step(s: tour.Step, state: dict | None = None) -> AppTest:
    """A fresh session opening the step's link (`?tour=N`), with `state` put in its session first."""
    at = AppTest.from_file(str(ROOT / s.page.script), default_timeout=TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.query_params["tour"] = str(s.number)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def words(at: AppTest) -> str:
    """The tour panel's words as the reader sees them (Markdown escapes dropped)."""
    body = next(m.value for m in at.markdown if m.value and "gb-tour-title" not in m.value and len(m.value) > 60)
    return re.sub(r"\\(.)", r"\1", body)


def query(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


def chart(at: AppTest, key: str) -> dict:
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(key) or key in el.proto.id:
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key}")


def trained_tiny() -> ModelChoice:
    """A 2-layer GPT trained for 40 steps on the built-in stories with the built-in tokenizer: a real, young
    model (no induction head, noisy neurons), cheap enough for a test."""
    tok = load_tokenizer(default_model_dir())
    data = prepare(builtin_stories(), tok)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=len(tok), n_layer=2, n_head=2, n_embd=32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = Batches([Source(data.train_ids, 1.0)], block_size=64, batch_size=8, seed=0)
    for _ in range(40):
        x, y = batches.next()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    return ModelChoice("tiny trained", model, tok, key="session:test:tiny-trained", shared=False)


MODELS = {"built-in": None}  # filled lazily: training takes a few seconds


def session_for(which: str) -> dict:
    if which == "built-in":
        return {}
    if which not in MODELS:
        MODELS[which] = trained_tiny()
    choice = MODELS[which]
    return {"models.session": {choice.name: choice}, "models.selected": choice.name}


@pytest.fixture(params=["built-in", "trained tiny"])
def model(request) -> str:
    return request.param


def test_every_step_renders_its_words_with_nothing_left_unsaid(model: str) -> None:
    for s in tour.steps():
        at = open_step(s, session_for(model))
        said = words(at)
        assert "{" not in said and "}" not in said, (s.title, said)
        assert not [e for e in at.error], (s.title, [e.value for e in at.error])


def test_the_model_shape_quoted_is_the_sidebars(model: str) -> None:
    at = open_step(step("Every layer, every head"), session_for(model))
    facts = " ".join(m.value for m in at.sidebar.markdown)
    layers, heads = re.search(rf"{NUMBER} layers? × {NUMBER} heads?", facts).groups()
    assert f"In each of the {layers} layers, {heads} **attention heads**" in words(at)


def test_the_induction_step_quotes_the_heads_table(model: str) -> None:
    s = step("induction")
    at = open_step(s, session_for(model))
    said, q = words(at), query(at)
    layer, head = int(q["layer"]), int(q["head"])
    assert f"layer {layer}, head {head}" in said.lower()
    at.session_state["attention.tab"] = "What kind of head?"
    at.run()
    table = next(d.value for d in at.dataframe if "induction" in d.value.columns)
    best = table.loc[table["induction"].idxmax()]
    assert (int(best["layer"]), int(best["head"])) == (layer, head)
    assert f"scores {best['induction']:.2f}" in said
    found = best["induction"] >= 0.3
    assert ("This model has none" not in said) == found


def test_the_bank_step_quotes_the_cosine_line(model: str) -> None:
    at = open_step(step("context"), session_for(model))
    ys = chart(at, "attention.cosine")["data"][0]["y"]
    said = words(at)
    assert f"similarity {ys[0]:.2f}" in said and f"leaves {ys[1]:.2f}" in said and f"{ys[-1]:.2f}" in said
    assert ("hardly drift apart" not in said) == (ys[1] - ys[-1] >= 0.05)


def test_the_determinism_step_quotes_the_histogram(model: str) -> None:
    at = open_step(step("draws"), session_for(model))
    caption = next(c.value for c in at.caption if "draws with seed" in c.value)
    n, seed, distinct = re.search(rf"{NUMBER} draws with seed {NUMBER} gave {NUMBER} different", caption).groups()
    said = words(at)
    if distinct != "1":
        assert f"{n} draws from this one distribution land on {distinct} different tokens" in said
    else:
        assert f"all {n} draws land on" in said


def test_the_window_step_quotes_the_pages_count(model: str) -> None:
    at = open_step(step("window"), session_for(model))
    said = words(at)
    line = " ".join(m.value for m in at.markdown if "Your text has" in m.value)
    n = re.search(rf"Your text has {NUMBER}", line).group(1)
    assert f"this story has {n}" in said
    cut = re.search(rf"the first {NUMBER} \(struck through\)", line)
    if cut:
        assert f"never sees its first {cut.group(1)}" in said
    else:
        assert "it fits" in said


def test_the_black_box_step_quotes_the_neuron_explorers_examples(model: str) -> None:
    at = open_step(step("mixed_neuron"), session_for(model))
    said, q = words(at), query(at)
    assert at.selectbox(key="feedforward.neuron").value == int(q["neuron"])
    assert f"Neuron {q['neuron']} of layer {q['layer']}" in said or f"neuron {q['neuron']} of layer" in said
    snippets = next(m.value for m in at.markdown if 'class="t peak"' in m.value)
    peaks = [html.unescape(t).replace("␣", " ").strip() for t in re.findall(r'class="t peak"[^>]*>([^<]*)<', snippets)]
    distinct = len(dict.fromkeys(peaks))
    top = max(set(peaks), key=peaks.count)
    if f"peaks on {distinct} different tokens in its {len(peaks)} strongest examples" in said:
        assert peaks.count(top) / len(peaks) < 0.5  # a mixture, as said
    else:
        assert f"peaks on *{top}* in {peaks.count(top) / len(peaks):.0%} of its" in said


def test_a_text_without_a_repeated_word_says_why_instead_of_inventing_numbers() -> None:
    at = open_step(step("induction"))
    at.text_area(key="attention.text_area").set_value("One two three four.").run()
    assert not at.exception
    assert "the text repeats no word" in words(at)


def test_after_the_last_step_the_tour_can_start_again() -> None:
    at = open_step(tour.steps()[-1])
    next_button = next(b for b in at.button if b.key and b.key.endswith(".tour_next"))
    next_button.click().run()
    labels = [b.label for b in at.sidebar.button]
    assert f"Resume the tour (step {len(tour.steps())})" in labels and "Start the tour again" in labels
    next(b for b in at.sidebar.button if b.label == "Start the tour again").click().run()
    assert not at.exception and at.session_state["workshop.tour"] == {"step": 0, "on": True}


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_kv_cache_step_quotes_the_sections_numbers(model: str) -> None:
    at = open_step(step("kv_cache"), session_for(model))
    said, m = words(at), metric_values(at)
    assert f"{m['Per token']} per token here, {m['Cached now']} for" in said
    line = next(x.value for x in at.markdown if "will run your text's" in x.value)
    n = re.search(rf"cache {NUMBER} positions per layer", line).group(1)
    assert f"these {n} positions" in said
    table = next(d.value for d in at.dataframe if "key/value heads" in d.value.columns).set_index("model")
    assert f"GPT-2 small keeps {table.loc['GPT-2 small', 'per token']} per token" in said
    assert f"Llama 2 7B {table.loc['Llama 2 7B', 'per token']}" in said
    assert f"Llama 3.1 8B only {table.loc['Llama 3.1 8B', 'per token']}" in said


def test_the_quantization_step_quotes_the_tab(model: str) -> None:
    at = open_step(step("quantization"), session_for(model))
    said, m = words(at), metric_values(at)
    assert at.segmented_control(key="feedforward.bits").value == 4 and "(simulated)" in said
    assert f"the weights would take {m['Weights in memory']} instead of" in said
    assert f"perplexity goes from" in said and f"to {m['Perplexity']}" in said
    flips = m["Top token flips"]
    if flips != "0.0%":
        assert f"changes at {flips} of" in said
    else:
        assert "never changes" in said


def test_the_circuits_step_quotes_the_builtin_models_heads() -> None:
    at = open_step(step("circuits"))
    said = words(at)
    line = next(x.value for x in at.markdown if "ended its training with" in x.value)
    layer, head, score = re.search(rf"layer {NUMBER}, head {NUMBER} scoring {NUMBER}", line).groups()
    assert f"layer {layer}, head {head}, {score} on the induction test" in said or \
        f"layer {layer}, head {head}, scores {score}" in said
    assert "Train a model on this page" in said


def test_the_base_vs_instruct_step_names_the_pair_to_add() -> None:
    at = open_step(step("base_instruct"))
    said = words(at)
    line = next(i.value for i in at.info if "No base and instruct pair" in i.value)
    for name in ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        assert name in said and name in line
