"""The "Tokens and vectors" page, run headless with Streamlit's AppTest: it renders, reacts to typing, toggles
and every tab's widgets, handles hard input with a message, and never runs the model."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

import engine
from conftest import ROOT
from engine import encode, load_tokenizer

PAGE = str(ROOT / "pages" / "1_Tokens_and_vectors.py")
P = "tokens."  # the page's widget-key prefix
TIMEOUT = 90  # seconds per script run; the first run loads the model on a busy machine


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ROOT / "models" / "glassbox-stories")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # GPT-2 from the Hub is never tried in tests


@pytest.fixture
def no_model_runs(monkeypatch):
    """Fail if anything on the page runs the transformer (tokenizing and embedding lookups are all it needs)."""
    calls = []
    real = engine.GPT.run_with_cache
    monkeypatch.setattr(engine.GPT, "run_with_cache", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(engine.GPT, "forward", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(
        AssertionError("the page ran the model")))
    return calls


def page(tab: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if tab:
        at.session_state[P + "tab"] = tab
    return at.run()


def set_text(at: AppTest, text: str) -> AppTest:
    return at.text_area(key=P + "text_area").set_value(text).run()


def chip_blocks(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if 'class="gb-chips"' in m.value]


def n_chips(html: str) -> int:
    return len(re.findall(r'class="gb-chip[ "]', html))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def messages(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.caption, *at.warning, *at.markdown])


def assert_clean(at: AppTest) -> None:
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


def test_page_runs_with_counts_that_match_the_tokenizer(tokenizer, no_model_runs) -> None:
    at = page()
    assert_clean(at)
    text = "The little dog liked to run in the sun."
    at = set_text(at, text)
    n = len(encode(tokenizer, text))
    m = metrics(at)
    assert (m["Characters"], m["Tokens"]) == (str(len(text)), str(n))
    assert m["Characters per token"] == f"{len(text) / n:.2f}"
    assert m["Context used"] == f"{n / 255:.0%}"
    assert n_chips(chip_blocks(at)[0]) == n
    assert f"{n} of the 255 tokens" in messages(at)
    assert no_model_runs == []


def test_whitespace_toggle_changes_the_chips() -> None:
    at = set_text(page(), "a b")
    assert "␣b" in chip_blocks(at)[0]
    at.toggle(key=P + "show_whitespace").set_value(False).run()
    assert "␣" not in chip_blocks(at)[0] and "> b<" in chip_blocks(at)[0]


def test_huge_text_is_cut_with_messages(tokenizer) -> None:
    text = "The fox ran far away. " * 910  # 20,020 characters
    at = set_text(page(), text)
    assert_clean(at)
    assert "first 5,000" in messages(at)
    assert "will not see" in messages(at)
    n = len(encode(tokenizer, text[:5000]))
    assert int(metrics(at)["Tokens"].replace(",", "")) == n
    assert metrics(at)["Context used"] == f"all 255; {n - 255:,} cut"  # in words, never "1,600%"
    left_out, seen = chip_blocks(at)[:2]  # the left-out tokens, faded, then the ones the model reads
    assert 'class="gb-left-out"' in left_out and n_chips(left_out) == n - 255
    assert n_chips(seen) == 255
    # Positions run on across the two blocks: the last left out, then the first the model reads.
    assert f'title="position {n - 256}&#10;' in left_out and f'title="position {n - 255}&#10;' not in left_out
    assert f'title="position {n - 255}&#10;' in seen.split("</span>")[0]


@pytest.mark.parametrize("text", ["", "   ", "I love pizza 🍕😀👍🏽", "nul\x00byte\x07", "<img src=x onerror=alert(1)>",
                                  "first line\nsecond line"],
                         ids=["empty", "whitespace", "emoji", "control", "xss", "newline"])
def test_hard_text_renders_cleanly(text: str) -> None:
    at = page()
    at = set_text(at, text)  # a line break moves the text into the multi-line box on this run
    assert_clean(at)
    if text:
        assert chip_blocks(at) and "<img" not in chip_blocks(at)[0]
    else:
        assert "Type something" in messages(at)
    if "🍕" in text:
        assert "&lt;0xF0&gt;" in chip_blocks(at)[0] and "\ufffd" not in chip_blocks(at)[0]


@pytest.mark.parametrize("tab", ["Compare tokenizers", "Watch BPE learn", "Tokenization pitfalls", "Vectors"])
def test_every_tab_renders_without_running_the_model(tab: str, no_model_runs) -> None:
    at = page(tab)
    assert_clean(at)
    assert no_model_runs == []


def test_compare_tab_counts_and_offline_note(tokenizer) -> None:
    at = set_text(page("Compare tokenizers"), "café 🍕")
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "tokenizer" in d.value.columns)
    counts = dict(zip(table["tokenizer"], table["tokens"]))
    assert counts["Characters"] == 6 and counts["Bytes (UTF-8)"] == 10
    assert counts["This model's BPE"] == len(encode(tokenizer, "café 🍕"))
    assert "GPT-2's BPE" in counts or "not available offline" in messages(at)
    assert len(chip_blocks(at)) == 1 + len(counts)


def test_bpe_tab_trains_and_steps() -> None:
    at = page("Watch BPE learn")
    assert_clean(at)
    assert "Learned **143 merges**" in messages(at)  # the built-in text at the default size of 400
    assert "a vocabulary of **400 tokens** (257 to start with, plus one per merge) of the 400 asked for" in messages(at)
    at.slider(key=P + "bpe_vocab").set_value(300).run()
    assert "Learned **43 merges**" in messages(at) and "**300 tokens**" in messages(at)
    assert at.slider(key=P + "bpe_step").value == 10
    at.button(key=P + "bpe_next").click().run()
    assert at.slider(key=P + "bpe_step").value == 11
    assert "Merge **11** of 43" in messages(at)
    at.slider(key=P + "bpe_step").set_value(0).run()
    assert "No merges yet" in messages(at)
    at.text_input(key=P + "bpe_sentence").set_value("<script>alert(1)</script>").run()
    assert_clean(at)
    assert all("<script>" not in block for block in chip_blocks(at))
    assert any(list(d.value.columns)[:2] == ["step", "left"] and len(d.value) == 43 for d in at.dataframe)


def test_bpe_tab_paste_and_uploads() -> None:
    at = page("Watch BPE learn")
    at.radio(key=P + "bpe_source").set_value("Paste text").run()
    assert "Paste some text" in messages(at)
    at.text_area(key=P + "bpe_paste").set_value("low lower lowest newer newest wider " * 20).run()
    assert_clean(at)
    assert "Learned" in messages(at)
    at.radio(key=P + "bpe_source").set_value("Upload a .txt file").run()
    uploader = at.get("file_uploader")[0]
    uploader.set_value(("notes.txt", "the cat sat on the mat, the cat ran. ".encode() * 30, "text/plain"))
    at.run()
    assert_clean(at)
    assert "Learned" in messages(at)
    at.get("file_uploader")[0].set_value(("x.txt", b"\x89PNG\r\n\x1a\n\x00\x00garbage", "text/plain"))
    at.run()
    assert_clean(at)
    assert "looks binary" in messages(at)
    at.get("file_uploader")[0].set_value(("big.txt", b"a " * 600_000, "text/plain"))
    at.run()
    assert_clean(at)
    assert "the limit is 1 MB" in messages(at)


def test_pitfall_button_puts_the_sample_in_the_text_box() -> None:
    at = page("Tokenization pitfalls")
    assert_clean(at)
    assert len(chip_blocks(at)) >= 1 + 12
    at.button(key=P + "pitfall_0_1").click().run()
    assert at.text_area(key=P + "text_area").value == "1,234,567"
    assert metrics(at)["Characters"] == "9"


def test_vectors_tab_neighbours_and_downloads(tokenizer) -> None:
    at = set_text(page("Vectors"), "the cat and the dog")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 3
    # the Vectors tab's three CSVs, and the chips' own above the tabs (every figure and the chips export data)
    assert len(at.get("download_button")) == 4 and at.download_button(key=P + "chips_csv.0")
    box = at.selectbox(key=P + "neighbour_token")
    ids = encode(tokenizer, "the cat and the dog").ids
    assert box.value == ids[0]  # the text's first token (the start marker goes last)
    before = at.dataframe[-1].value
    box.select(ids[2]).run()
    after = at.dataframe[-1].value
    assert_clean(at)
    assert len(after) == 10 and not after["id"].equals(before["id"])
    assert after["cosine similarity"].is_monotonic_decreasing
    at = set_text(at, "a completely different text")  # the chosen token is gone: the picker starts over
    assert_clean(at)
    assert at.selectbox(key=P + "neighbour_token").value in encode(tokenizer, "a completely different text").ids


def _page_with_a_small_session_model() -> None:
    import runpy

    import streamlit as st

    import ui
    from engine import GPT, GPTConfig
    if "tiny_registered" not in st.session_state:
        tok = ui.models.default_model().tokenizer
        tiny = GPT(GPTConfig(block_size=8, vocab_size=len(tok) + 5, n_layer=1, n_head=1, n_embd=6)).eval()
        ui.models.register_session_model("tiny", tiny, tok)  # 5 padding rows no token uses
        st.session_state["tiny_registered"] = True
    runpy.run_path(st.session_state["page_path"], run_name="__main__")


@pytest.mark.parametrize("tab", ["Vectors", "Compare tokenizers"])
def test_page_works_with_another_model_size(tab: str, no_model_runs) -> None:
    at = AppTest.from_function(_page_with_a_small_session_model, default_timeout=TIMEOUT)
    at.session_state["page_path"] = PAGE
    at.session_state[P + "tab"] = tab
    at.run()
    at = set_text(at, "A much longer text than eight tokens can hold, so most of it is cut.")
    assert_clean(at)
    assert at.sidebar.selectbox[0].value == "tiny"
    assert "will not see" in messages(at)
    if tab == "Vectors":
        assert len(at.get("plotly_chart")) == 3
    assert no_model_runs == []


def test_without_gpt2_the_page_says_how_to_add_it(monkeypatch, tmp_path) -> None:
    """Offline with no copy: the note says where to put GPT-2's tokenizer and which variable points at one;
    following it (the variable, here at a folder with a tokenizer.json) puts the fourth tokenizer on the page."""
    import shutil

    import ui.tokens.splitting as splitting
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(splitting.GPT2_ENV, str(tmp_path / "nowhere"))
    splitting.gpt2_tokenizer.clear()
    at = page("Compare tokenizers")
    assert_clean(at)
    note = messages(at)
    assert "not available offline" in note and "GLASSBOX_GPT2_TOKENIZER" in note and "models/gpt2-tokenizer/" in note
    folder = tmp_path / "gpt2"
    folder.mkdir()
    shutil.copy(ROOT / "models" / "glassbox-stories" / "tokenizer.json", folder / "tokenizer.json")
    monkeypatch.setenv(splitting.GPT2_ENV, str(folder))
    splitting.gpt2_tokenizer.clear()
    at = page("Compare tokenizers")
    assert_clean(at)
    assert f"a local folder ({folder})" in messages(at)
    splitting.gpt2_tokenizer.clear()


def test_chips_and_the_bpe_curve_export_their_data(tokenizer) -> None:
    from ui.chips import chips_csv
    from ui.tokens.bpe import curve_csv
    enc = encode(tokenizer, "=1+2 the cat")
    rows = chips_csv(enc.ids, enc.tokens, tokenizer).splitlines()
    assert rows[0] == "position,id,token,bytes" and len(rows) == 1 + len(enc)
    assert rows[1].split(",")[2].startswith("'=")  # a formula-looking token is made inert
    assert curve_csv([9, 7, 5]).splitlines() == ["merges learned,tokens", "0,9", "1,7", "2,5"]
    at = page("Watch BPE learn")
    assert_clean(at)
    assert at.download_button(key=P + "bpe_curve_csv")
