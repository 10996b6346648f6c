"""Watch BPE learn: train a byte-level BPE live on a text the user picks, then step through its merges and see
a sentence split after 0, 10, 100, ... of them. The trainer is engine/inspect/bpe_steps.py (checked against the
`tokenizers` library in tests/test_tokens_page_bpe.py).
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.inspect.bpe_steps import BpeRun, base_vocab, train_steps

from ..chips import chips_html
from ..plots import fitted, plot_config
from .state import PAGE

MAX_CORPUS_CHARS = 1_000_000  # pasted or uploaded text beyond this is cut (with a note)
MAX_UPLOAD_BYTES = 1_000_000  # a bigger upload is refused before it is read
MAX_SENTENCE_CHARS = 500
TRAIN_TIME_LIMIT_S = 20  # a text of very long "words" (no spaces) makes merges slow; keep what was learned
MIN_VOCAB, MAX_VOCAB, DEFAULT_VOCAB = len(base_vocab()) + 1, 4096, 400
DEFAULT_SENTENCE = "The tortoise and the hare ran a race through the green meadow."
SOURCES = ("Built-in fables", "Paste text", "Upload a .txt file")

# Two fables after Aesop, retold in our own words for this page.
BUILT_IN = """\
The Tortoise and the Hare

A hare was always boasting about how fast he could run. "Nobody in the whole meadow can beat me," he said
to the other animals. "I dare anyone to race me." The tortoise looked up slowly and said, "I will race you."
The hare laughed so hard that he fell over in the grass. "You? You are the slowest animal in the meadow!"
"Keep your laughing for the finish line," said the tortoise. So the animals marked out a course from the old
oak tree, across the meadow, over the little bridge and up the hill to the farmer's gate.

The fox gave the signal, and the hare was gone in a flash. He ran so fast that the tortoise was soon far
behind. Halfway up the hill the hare looked back and saw no one at all. "That tortoise will take all day,"
he said. "I have time for a nap." He lay down in the shade of a hedge and fell fast asleep.

The tortoise kept walking. Slowly, slowly, one step and then another step, he crossed the meadow, went over
the little bridge and started up the hill. He passed the hedge where the hare was sleeping, and he did not
stop. When the hare woke up, the sun was low in the sky. He ran as fast as he could to the farmer's gate, but
the tortoise was already there, waiting for him, while the animals cheered. "Slow and steady wins the race,"
said the tortoise.

The North Wind and the Sun

The north wind and the sun were arguing about which of them was the stronger. As they argued, a traveller
came along the road, wrapped in a warm coat. "Let us settle it," said the sun. "Whichever of us can make that
traveller take off his coat is the stronger." The north wind agreed, and he went first.

The wind blew as hard as he could. He blew cold air down the road and made the trees bend and the leaves fly.
But the harder the wind blew, the tighter the traveller held his coat around him. At last the wind gave up.

Then the sun came out from behind a cloud and shone gently on the traveller. The air grew warm, and then
warmer still. The traveller opened his coat, then took it off, and at last he sat down in the shade of a tree
to rest. "You see," said the sun to the wind, "a gentle touch can do more than force."
"""


def corpus_picker() -> str | None:
    """The training text the user chose (built-in, pasted or uploaded), capped; None when there is none yet."""
    source = st.radio("Train on", SOURCES, horizontal=True, key=PAGE.key("bpe_source"))
    if source == SOURCES[0]:
        with st.expander("Read the built-in text"):
            st.text(BUILT_IN)
        return BUILT_IN
    if source == SOURCES[1]:
        text = st.text_area("Text to train on", key=PAGE.key("bpe_paste"), height=160,
                            placeholder="Paste a few paragraphs here, then press Ctrl+Enter.")
        return _cap(text) if text.strip() else _none("Paste some text to train on.")
    upload = st.file_uploader(f"A plain-text file (UTF-8, at most {MAX_UPLOAD_BYTES / 1e6:.0f} MB)", type=["txt"],
                              key=PAGE.key("bpe_file"), max_upload_size=MAX_UPLOAD_BYTES // 1_000_000)
    if upload is None:
        return _none("Choose a .txt file to train on.")
    if upload.size > MAX_UPLOAD_BYTES:
        return _none(f"That file is {upload.size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB. "
                     "Try a shorter excerpt.")
    return read_upload(upload.getvalue())


def read_upload(data: bytes) -> str | None:
    """Decode an uploaded file as UTF-8 text, or say in the page why it is not usable."""
    if b"\x00" in data[:8192]:
        return _none("That file looks binary, not text. Choose a plain .txt file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _none("That file is not UTF-8 text. Save it as UTF-8 and try again.")
    return _cap(text) if text.strip() else _none("That file is empty.")


def _none(message: str) -> None:
    st.info(message, icon=":material/description:")
    return None


def _cap(text: str) -> str:
    if len(text) > MAX_CORPUS_CHARS:
        st.info(f"The text has {len(text):,} characters; training uses the first {MAX_CORPUS_CHARS:,}.",
                icon=":material/content_cut:")
    return text[:MAX_CORPUS_CHARS]


@st.cache_resource(max_entries=6, show_spinner="Training BPE on your text…")
def train(corpus: str, vocab_size: int) -> BpeRun:
    """Cached per (text, size): the outcome depends only on them. Read-only once returned, so its lazily built
    tokenizer is built here, before any session shares it."""
    run = train_steps(corpus, vocab_size, time_limit_s=TRAIN_TIME_LIMIT_S)
    run.tokenizer()
    return run


def show_bpe() -> None:
    corpus = corpus_picker()
    vocab_size = st.slider("Vocabulary size", MIN_VOCAB, MAX_VOCAB, DEFAULT_VOCAB, key=PAGE.key("bpe_vocab"),
                           help=f"It starts with {MIN_VOCAB - 1} tokens (the 256 bytes and <|endoftext|>); "
                                "each merge adds one.")
    if corpus is None:
        return
    run = train(corpus, vocab_size)
    start = MIN_VOCAB - 1  # the 256 bytes and <|endoftext|>
    st.markdown(f"Learned **{len(run.merges):,} merges** from {run.n_words:,} words "
                f"({run.n_distinct_words:,} different ones): a vocabulary of **{start + len(run.merges):,} "
                f"tokens** ({start:,} to start with, plus one per merge) of the {vocab_size:,} asked for. "
                f"Training stopped: {run.stop_reason}.")
    if not run.merges:
        st.info("There was nothing to merge: the text needs some repeated pairs of characters.",
                icon=":material/info:")
        return
    stepper(run)


def _code(piece: str) -> str:
    """Token text as inline code, every character but letters and digits as an HTML entity: neither HTML nor
    Markdown can read anything into it."""
    return "<code>" + "".join(c if c.isalnum() else f"&#{ord(c)};" for c in piece) + "</code>"


STEP = PAGE.key("bpe_step_value")  # session key: the chosen step (canonical, not a widget key)


def _step(delta: int, top: int) -> None:
    st.session_state[STEP] = max(0, min(top, st.session_state.get(STEP, 0) + delta))


def _sync_step(key: str) -> None:
    st.session_state[STEP] = st.session_state[key]


@st.fragment
def stepper(run: BpeRun) -> None:
    """Step through the merges; moving the step reruns only this part of the page."""
    n = len(run.merges)
    key = PAGE.key("bpe_step")
    # The slider's range changes with the vocabulary, which makes it a new widget with a fresh value; the
    # step lives in its own key and fills the slider, kept inside the new range.
    k = max(0, min(n, st.session_state.get(STEP, min(10, n))))
    st.session_state[STEP] = k
    st.session_state[key] = k  # written every run: a slider with a new range would otherwise start at 0
    k = st.slider("Merges applied", 0, n, key=key, on_change=_sync_step, args=(key,))
    with st.container(horizontal=True):
        st.button("Back", icon=":material/chevron_left:", key=PAGE.key("bpe_back"), on_click=_step,
                  args=(-1, n), help="One merge back", disabled=k == 0)
        st.button("Next", icon=":material/chevron_right:", key=PAGE.key("bpe_next"), on_click=_step,
                  args=(1, n), help="One merge forward", disabled=k == n)
    if k:
        m = run.merges[k - 1]
        st.markdown(f"Merge **{k:,}** of {n:,}: {_code(run.piece(m.left))} + {_code(run.piece(m.right))} → "
                    f"{_code(run.piece(m.new_id))} (new token id {m.new_id:,}); the pair occurred "
                    f"**{m.count:,}** times.", unsafe_allow_html=True)
    else:
        st.markdown("No merges yet: every byte is its own token.")
    sentence = st.text_input("A sentence to split", DEFAULT_SENTENCE, key=PAGE.key("bpe_sentence"),
                             max_chars=MAX_SENTENCE_CHARS)
    if sentence:
        show_splits(run, sentence, k)
    with st.expander(f"All {n:,} merges as a table"):
        st.dataframe(merge_table(run), hide_index=True, height=320)
        st.caption("The table's toolbar (top right, on hover) downloads it as CSV.")


def checkpoints(n: int, current: int) -> list[int]:
    """0, 10, 100, 1000, ... up to n, plus n itself and the current step."""
    marks = {0, n, current}
    step = 10
    while step < n:
        marks.add(step)
        step *= 10
    return sorted(marks)


def show_splits(run: BpeRun, sentence: str, k: int) -> None:
    marks = checkpoints(len(run.merges), k)
    splits, curve = run.splits(sentence, marks)
    tok = run.tokenizer()
    for mark in marks:
        ids = splits[mark]
        label = f"after {mark:,} merges" + (" (all)" if mark == len(run.merges) else "")
        if mark == k:
            label = f"**{label} ← this step**"
        st.markdown(f"{label} · {len(ids):,} tokens")
        st.markdown(chips_html(ids, [run.piece(i) for i in ids], tok), unsafe_allow_html=True)
    st.plotly_chart(fitted(curve_figure(curve, k)), config=plot_config("bpe-compression"), key=PAGE.key("bpe_curve"))
    st.download_button("Download the curve (CSV)", curve_csv(curve), file_name="glassbox-bpe-compression.csv",
                       mime="text/csv", icon=":material/download:", key=PAGE.key("bpe_curve_csv"))


def curve_csv(curve: list[int]) -> str:
    """The compression curve's data: tokens in the sentence after each number of merges."""
    return pd.DataFrame({"merges learned": range(len(curve)), "tokens": curve}).to_csv(index=False)


def curve_figure(curve: list[int], k: int) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(len(curve))), y=curve, mode="lines", line={"color": "#0072B2"},
                               hovertemplate="after %{x} merges: %{y} tokens<extra></extra>"))
    fig.add_trace(go.Scatter(x=[k], y=[curve[k]], mode="markers", marker={"size": 11, "color": "#D55E00"},
                             hovertemplate="this step: %{y} tokens<extra></extra>"))
    fig.update_layout(height=300, showlegend=False, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title="Tokens in your sentence as merges are learned",
                      xaxis_title="merges learned", yaxis_title="tokens", yaxis_rangemode="tozero")
    return fig


def merge_table(run: BpeRun) -> pd.DataFrame:
    return pd.DataFrame({
        "step": [m.rank + 1 for m in run.merges],
        "left": [run.piece(m.left) for m in run.merges],
        "right": [run.piece(m.right) for m in run.merges],
        "new token": [run.piece(m.new_id) for m in run.merges],
        "new id": [m.new_id for m in run.merges],
        "count": [m.count for m in run.merges],
    })
