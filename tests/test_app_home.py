"""The home page and the shared ui/ machinery, run headless with Streamlit's AppTest (no browser)."""
from __future__ import annotations

import ast
import html as html_lib
import re

import pytest
from streamlit.testing.v1 import AppTest

import ui
import ui.cache
from ui.registry import PAGES
from conftest import ROOT
from engine import encode, load_tokenizer

AREA_BOX = "home.text_area"  # every page has the same multi-line box (a one-line box loses pasted line breaks)
TIMEOUT = 60  # seconds per script run; the first run loads the model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


def home() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()


def chips_markdown(at: AppTest) -> str:
    blocks = [m.value for m in at.markdown if 'class="gb-chips"' in m.value]
    assert len(blocks) == 1
    return blocks[0]


def n_chips(html: str) -> int:
    return len(re.findall(r'class="gb-chip[ "]', html))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def set_text(at: AppTest, text: str) -> AppTest:
    return at.text_area(key=AREA_BOX).set_value(text).run()


def test_home_runs_and_shows_default_text() -> None:
    at = home()
    assert not at.exception
    assert not at.error
    assert n_chips(chips_markdown(at)) == int(metrics(at)["Tokens"]) > 0
    assert "parameters" in " ".join(m.value for m in at.sidebar.markdown)


def test_typing_shows_chips_and_counts(tokenizer) -> None:
    text = "The little dog liked to run in the sun."
    at = set_text(home(), text)
    n = len(encode(tokenizer, text))
    assert metrics(at) == {"Characters": str(len(text)), "Tokens": str(n),
                           "Characters per token": f"{len(text) / n:.2f}"}
    html = chips_markdown(at)
    assert n_chips(html) == n
    assert 'title="position 0&#10;id ' in html


def _messages(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.caption, *at.warning])


@pytest.mark.parametrize("text, message", [
    ("", "Type something"),
    ("   \t  ", "only whitespace"),
    ("I love pizza 🍕😀👍🏽", "single bytes"),
    ("漢字とカタカナ", "single bytes"),
    ("שלום עולם مرحبا بالعالم", "single bytes"),
    ("bell\x07 escape\x1b tab\t done", "control characters"),
    ("nul\x00byte", "control characters"),
    ("a" * 20_000, "first 5,000"),
    ("<img src=x onerror=alert(1)>", None),
    ("$x^2$ :smile: **bold** [link](javascript:alert(1)) &amp;", None),
], ids=["empty", "whitespace", "emoji", "cjk", "rtl", "control", "nul", "20k-chars", "xss", "markdown"])
def test_hard_inputs_render_cleanly(text: str, message: str | None) -> None:
    at = set_text(home(), text)
    assert not at.exception
    assert not at.error
    if message:
        assert message in _messages(at)
    if text:
        assert n_chips(chips_markdown(at)) > 0


STORY = ("Once upon a time, a fox lived in the wood.\nShe liked the rain.\n\n"
         "One day she met a bear.\r\nThey became friends.\n\tThe end.\n")


def test_line_breaks_are_kept_exactly_as_typed(tokenizer) -> None:
    """A pasted multi-line text keeps every line break, on the home page and on every other page: the same
    tokens everywhere (a one-line box once turned them into spaces: 413 tokens at home, 428 on Attention)."""
    at = set_text(home(), STORY)
    assert not at.exception
    assert at.text_area(key=AREA_BOX).value == STORY and at.session_state["state.text"] == STORY
    assert "<br>" in chips_markdown(at)
    assert metrics(at)["Tokens"] == f"{len(encode(tokenizer, STORY)):,}"
    assert len(encode(tokenizer, STORY)) != len(encode(tokenizer, " ".join(STORY.split())))


@pytest.mark.parametrize("script", ["app.py", "pages/1_Tokens_and_vectors.py", "pages/2_Attention.py",
                                    "pages/3_Feed_forward.py", "pages/4_Next_token.py"])
def test_every_text_box_is_the_same_multiline_box_with_the_same_words(script: str) -> None:
    at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    at.session_state["state.text"] = STORY
    at.run()
    assert not at.exception
    assert len(at.text_input) == 0 or all(not b.key.endswith("text_line") for b in at.text_input)
    boxes = [b for b in at.text_area if b.key.endswith(".text_area")]
    assert len(boxes) == 1 and boxes[0].value == STORY
    assert ui.frame.APPLY_HINT in [c.value for c in at.caption]


def test_long_text_notes_the_context_limit(tokenizer) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    at = set_text(home(), text)
    n = len(encode(tokenizer, text))
    assert f"Your text has {n:,} tokens" in _messages(at)


def test_token_text_is_escaped() -> None:
    at = set_text(home(), "<img src=x onerror=alert(1)>")
    html = chips_markdown(at)
    assert "&lt;" in html and "<img" not in html
    shown = "".join(html_lib.unescape(t) for t in re.findall(r">([^<]*)</span>", html))
    assert shown == "<img␣src=x␣onerror=alert(1)>"  # all of it is there, as text


def test_chips_html_escapes_text_and_titles(tokenizer) -> None:
    html = ui.chips.chips_html([1, 2], ['<img src=x onerror=alert(1)>', '" onmouseover="alert(1)'], tokenizer)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html
    assert '" onmouseover=' not in html and "&quot; onmouseover=&quot;alert(1)" in html


def test_every_page_file_is_registered() -> None:
    registered = {p.script for p in PAGES}
    for script in (ROOT / "pages").glob("*.py"):
        assert f"pages/{script.name}" in registered, f"add the page of {script.name} to ui/registry.py"


def _two_pages() -> None:
    import streamlit as st

    import ui
    from ui.page import Page
    title = st.session_state.get("which", "One")
    ui.setup_page(Page(title.lower(), title, "test.py", ":material/science:", "A test page."))
    st.write(ui.text_input_area())


def test_text_is_shared_between_pages() -> None:
    at = AppTest.from_function(_two_pages, default_timeout=TIMEOUT).run()
    at.text_area(key="one.text_area").set_value("shared by every page").run()
    at.session_state["which"] = "Two"
    at.run()
    assert at.text_area(key="two.text_area").value == "shared by every page"
    at.text_area(key="two.text_area").set_value("edited on page two").run()
    at.session_state["which"] = "One"
    at.run()
    assert at.text_area(key="one.text_area").value == "edited on page two"
    assert not at.exception


def _session_model_page() -> None:
    import streamlit as st

    import ui
    from ui.page import Page
    from engine import GPT, GPTConfig
    choice = ui.setup_page(Page("models", "Models", "test.py", ":material/science:", "A test page."))
    if st.button("train"):
        tiny = GPT(GPTConfig(block_size=32, vocab_size=choice.model.config.vocab_size, n_layer=1, n_head=2,
                             n_embd=16)).eval()
        ui.models.register_session_model("my model", tiny, choice.tokenizer)
        st.rerun()
    trace = ui.trace_or_stop("hello there", choice)
    st.write(f"{choice.name} {trace.config.block_size}")


def test_session_models_are_selectable_and_private() -> None:
    at = AppTest.from_function(_session_model_page, default_timeout=TIMEOUT).run()
    default_name = at.sidebar.selectbox[0].value
    assert at.sidebar.selectbox[0].options == [f"{default_name} (built in)"]
    at.button[0].click().run()
    assert at.sidebar.selectbox[0].value == "my model"
    assert at.main.markdown[-1].value == "my model 32"
    assert "cache.traces" in at.session_state  # its traces live in the session, not the shared cache
    at.sidebar.selectbox[0].select(default_name).run()
    assert at.main.markdown[-1].value.startswith(default_name)
    assert not at.exception


def _cached_trace_page() -> None:
    import streamlit as st

    import ui
    from ui.page import Page
    choice = ui.setup_page(Page("cache", "Cache", "test.py", ":material/science:", "A test page."))
    st.button("rerun without changing the text")
    st.write(len(ui.trace_or_stop("a text only this test uses", choice)))


def test_rerun_with_same_text_does_not_rerun_the_model(monkeypatch) -> None:
    calls = []
    real = ui.cache.run_trace
    monkeypatch.setattr(ui.cache, "run_trace", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    at = AppTest.from_function(_cached_trace_page, default_timeout=TIMEOUT).run()
    at.button[0].click().run()
    at.button[0].click().run()
    assert calls == ["a text only this test uses"]


def _failing_page() -> None:
    import streamlit as st

    import ui
    from ui.page import Page
    ui.setup_page(Page("boom", "Boom", "test.py", ":material/science:", "A test page."))
    with ui.error_boundary("drawing the boom"):
        raise RuntimeError("secret internal detail")
    st.write("still here")


def test_error_boundary_shows_plain_message() -> None:
    at = AppTest.from_function(_failing_page, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "Something went wrong while drawing the boom" in at.error[0].value
    assert "secret" not in at.error[0].value
    assert at.main.markdown[-1].value == "still here"


def _native_failure_page() -> None:
    import streamlit as st
    from tokenizers import normalizers

    import ui
    from ui.page import Page
    ui.setup_page(Page("panic", "Panic", "test.py", ":material/science:", "A test page."))
    with ui.error_boundary("splitting your text"):
        normalizers.Precompiled(b"\x04\x00\x00\x00" + b"\xff" * 4).normalize_str("abc")  # a Rust panic
    with ui.error_boundary("refusing"):
        raise ui.Refused("That text is too long for this model.")
    st.write("still here")


def test_error_boundary_catches_native_panics_with_a_plain_message() -> None:
    at = AppTest.from_function(_native_failure_page, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.error[0].value.startswith("A library Glassbox uses failed while splitting your text.")
    assert "index out of bounds" not in at.error[0].value
    assert at.error[1].value == "That text is too long for this model."  # a refusal says its own words
    assert at.main.markdown[-1].value == "still here"


def _control_flow_page() -> None:
    import streamlit as st

    import ui
    from ui.page import Page
    ui.setup_page(Page("flow", "Flow", "test.py", ":material/science:", "A test page."))
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    with ui.error_boundary("rerunning"):
        if st.session_state["runs"] == 1:
            st.rerun()
    with ui.error_boundary("stopping"):
        st.stop()
    st.write("never drawn")


def test_error_boundary_lets_stop_and_rerun_through() -> None:
    at = AppTest.from_function(_control_flow_page, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    assert at.session_state["runs"] == 2  # st.rerun() reran the script instead of becoming an error
    assert "never drawn" not in [m.value for m in at.main.markdown]  # st.stop() stopped it


@pytest.mark.parametrize("signal", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_error_boundary_never_swallows_interrupts_or_exits(signal) -> None:
    with pytest.raises(signal):
        with ui.error_boundary("waiting"):
            raise signal()


def _session_traces_page() -> None:
    import streamlit as st
    import torch

    import ui
    from ui.page import Page
    from engine import GPT, GPTConfig
    choice = ui.setup_page(Page("traces", "Traces", "test.py", ":material/science:", "A test page."))
    torch.manual_seed(0)
    small = GPT(GPTConfig(block_size=64, vocab_size=choice.model.config.vocab_size, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    mine = st.session_state.get("Traces.mine") or ui.models.register_session_model("small", small, choice.tokenizer,
                                                                            select=False)
    st.session_state["Traces.mine"] = mine
    with ui.error_boundary("running your model"):
        st.write(len(ui.get_trace(st.session_state.get("state.text", "hello"), mine)))


def test_session_traces_never_hold_more_than_the_cap(monkeypatch) -> None:
    # A session's traces hold two at the per-trace budget: 1 MB, two or three short traces of this model.
    monkeypatch.setenv("GLASSBOX_TRACE_BUDGET_MB", "0.5")
    cap = ui.cache.trace_cache_cap()
    at = AppTest.from_function(_session_traces_page, default_timeout=TIMEOUT).run()
    sizes = []
    for i in range(8):
        at.session_state["state.text"] = f"Story {i}: the little cat sat on the mat and looked at the big dog."
        at.run()
        cache = at.session_state["cache.traces"]
        assert not at.exception and not at.error
        assert ui.cache.cached_bytes(cache) <= cap and len(cache) <= ui.cache.SESSION_TRACES
        sizes.append(len(cache))
    # The byte cap, not the count, is what bites here: it keeps two and evicts the oldest to stay under it.
    assert max(sizes) == 2 < ui.cache.SESSION_TRACES
    assert list(at.session_state["cache.traces"])[-1][1].startswith("Story 7")
    at.session_state["state.text"] = "many words " * 100  # the full 64-token context: about 1.2 MB, over the cap alone
    at.run()
    assert not at.exception
    assert "more than the 1.0 MB this server keeps per session: try a shorter text" in at.error[0].value
    assert ui.cache.cached_bytes(at.session_state["cache.traces"]) <= cap


def test_missing_model_is_a_plain_message(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(ui.models.MODEL_ENV, str(tmp_path / "no-such-model"))
    at = home()
    assert not at.exception
    assert "could not be loaded" in at.sidebar.error[0].value


def test_engine_never_imports_ui_or_streamlit() -> None:
    for path in (ROOT / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & {"ui", "streamlit"}, f"{path.name} imports {roots & {'ui', 'streamlit'}}"


def test_the_sidebar_says_what_a_forward_pass_runs_on_the_same_on_every_visit() -> None:
    """It read this thread's torch setting, which the server lowers once its thread policy is set: the first
    visit said 2 threads and every later one 1."""
    from ui.server import FORWARD_THREADS, MAX_FORWARDS
    said = []
    for _ in range(2):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
        said.append([c.value for c in at.sidebar.caption if c.value.startswith("Runs on")])
    assert said[0] == said[1] == [f"Runs on CPU ({FORWARD_THREADS} thread{'' if FORWARD_THREADS == 1 else 's'}) "
                                  f"per forward pass, {MAX_FORWARDS} at once"]


@pytest.mark.parametrize("key, page", [("next_token.draw_seed", "pages/4_Next_token.py"),
                                       ("next_token.temperature", "pages/4_Next_token.py"),
                                       ("train.max_steps", "pages/5_Train.py"),
                                       ("rlhf.seed", "pages/6_Pretraining_vs_RLHF.py")])
def test_a_hand_made_nan_in_a_widget_is_forgotten_not_kept_breaking_the_session(key: str, page: str) -> None:
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT).run()
    for bad in (float("nan"), float("inf")):
        at.session_state[key] = bad  # as a crafted websocket message would set it
        at.run()
        assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
        at.run()  # and the next run too
        assert not at.exception and not at.error
