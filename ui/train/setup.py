"""Setting up a training run on the Train page: the training text, the model's shape and the training
settings (with presets), and what the run will cost before it starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st
import torch

from engine import GPT, GPTConfig, describe, pick_device, settings
from engine.model.cost import TraceBudget, config_cost, over_budget
from engine.model.device import run_threads
from engine.train.budget import (STEP_TIMES, available_memory, estimate_memory, estimate_run_seconds, fits_message,
                                 gb)
from engine.train.corpus import (GUTENBERG_URL, MAX_UPLOAD_BYTES, Corpus, CorpusError, Prepared, builtin_stories,
                                 fetch_gutenberg, from_pasted, from_upload, make_tokenizer, prepare)
from engine.train.runspec import PRESETS, Preset, RunSpec

from ..models import SHARED, ModelChoice, default_model, describe_size, session_models
from ..text import md
from ..inputs import whole_number
from .figures import duration
from .state import ESTIMATE, PAGE

BUILTIN, PASTE, UPLOAD, BOOK = "Built-in stories", "Paste text", "Upload a .txt file", "Project Gutenberg book"
MAX_PASTE_CHARS = 2_000_000
BUILTIN_TOKENIZER = 0  # vocabulary option: reuse the built-in model's tokenizer
LAYERS = (1, 2, 3, 4, 6, 8)
HEADS = (1, 2, 4, 8, 16)
WIDTHS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
CONTEXTS = (16, 32, 64, 128, 256, 512)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
VOCABS = (512, 1024, 2048, 4096, BUILTIN_TOKENIZER)
# High rates stay on the slider on purpose: trying one is how you see a run diverge.
RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0, 100.0, 1000.0)
_PREPARED = PAGE.key("prepared")  # session key: (key, Prepared) of the last text prepared
_BOOK = PAGE.key("book")  # session key: the fetched Gutenberg Corpus
_UPLOADED = PAGE.key("uploaded_corpus")  # session key: (file id, Corpus)
_BOOK_ERROR = PAGE.key("book_error")  # session key: why the last fetch failed


@dataclass(frozen=True)
class Settings:
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    vocab: int  # tokenizer size to train; BUILTIN_TOKENIZER = the built-in model's tokenizer
    max_steps: int
    batch_size: int
    learning_rate: float

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(block_size=self.block_size, vocab_size=vocab_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd)


# -- the training text ----------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Writing the built-in stories…")
def _builtin() -> Corpus:
    return builtin_stories()


@st.cache_data(ttl=3600, max_entries=8, show_spinner="Downloading the book…")
def _book(number: int, base_url: str) -> Corpus:
    return fetch_gutenberg(number, base_url)  # errors are not cached: a retry tries again


def _fetch_book() -> None:
    number = int(PAGE.kept("book_number", 11))
    try:
        st.session_state[_BOOK] = _book(number, settings.current().gutenberg_url or GUTENBERG_URL)
        st.session_state.pop(_BOOK_ERROR, None)
    except CorpusError as e:
        st.session_state.pop(_BOOK, None)
        st.session_state[_BOOK_ERROR] = str(e)


def corpus_picker() -> Corpus | None:
    """The training text the user chose, or None (with the reason shown) when there is none yet."""
    kinds = (BUILTIN, PASTE, UPLOAD, BOOK)
    kind = st.radio("Training text", kinds, horizontal=True, **PAGE.remembered("corpus_kind", BUILTIN, kinds))
    try:
        if kind == BUILTIN:
            corpus = _builtin()
        elif kind == PASTE:
            text = st.text_area("Text to train on", **PAGE.remembered("paste", ""), height=160,
                                max_chars=MAX_PASTE_CHARS, placeholder="Paste any text. Lines holding only <|endoftext|> separate documents.")
            if not text.strip():
                st.info("Paste some text to train on (a few pages at least).", icon=":material/content_paste:")
                return None
            corpus = from_pasted(text)
        elif kind == UPLOAD:
            corpus = _uploaded()
        else:
            corpus = _gutenberg()
    except CorpusError as e:
        st.error(md(str(e)), icon=":material/block:")  # messages may quote file names and book titles
        return None
    if corpus is not None:
        st.caption(f"**{md(corpus.name)}** · {len(corpus.text):,} characters · {md(corpus.source)}")
        with st.expander("Preview the text"):
            st.text(corpus.text[:1500] + ("…" if len(corpus.text) > 1500 else ""))
    return corpus


def _uploaded() -> Corpus | None:
    f = st.file_uploader(f"A plain-text file (UTF-8, at most {MAX_UPLOAD_BYTES // 10**6} MB)", type=["txt"],
                         key=PAGE.key("upload_txt"))
    cached = st.session_state.get(_UPLOADED)
    if f is None:
        if cached:  # the uploader forgets its file on other pages; the text it gave is kept
            st.caption("Training on the file you uploaded before; upload another to replace it.")
            return cached[1]
        return None
    if cached and cached[0] == f.file_id:
        return cached[1]
    corpus = from_upload(f.getvalue(), f.name)
    st.session_state[_UPLOADED] = (f.file_id, corpus)
    return corpus


def _gutenberg() -> Corpus | None:
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    whole_number("Book number on gutenberg.org (e.g. 11 is Alice's Adventures in Wonderland)", 1, 10_000_000,
                 where=c1, **PAGE.remembered("book_number", 11))
    c2.button("Fetch the book", on_click=_fetch_book, icon=":material/download:", key=PAGE.key("fetch"))
    if error := st.session_state.get(_BOOK_ERROR):
        st.error(md(error), icon=":material/cloud_off:")
    elif _BOOK not in st.session_state:
        st.info("Choose a book by its number and fetch it (this needs the server to be online).",
                icon=":material/menu_book:")
    return st.session_state.get(_BOOK)


# -- tokenizing -------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def _prepared_builtin(vocab: int, default_key: str) -> Prepared:
    # Shared by every session: at a workshop, thirty people training on the stories tokenize them once.
    # `default_key` names the built-in model, whose tokenizer BUILTIN_TOKENIZER reuses (it may be replaced).
    corpus = _builtin()
    tok = default_model().tokenizer if vocab == BUILTIN_TOKENIZER else make_tokenizer(corpus, vocab)
    return prepare(corpus, tok)


def prepared_data(corpus: Corpus, vocab: int, base: ModelChoice | None = None) -> Prepared:
    """The corpus tokenized (a tokenizer trained on it first, unless the built-in one is chosen, or the tokenizer of
    the model being fine-tuned), cached."""
    if base is not None:
        key = (corpus.fingerprint, base.key)
        cached = st.session_state.get(_PREPARED)
        if cached and cached[0] == key:
            return cached[1]
        with st.spinner(f"Splitting the text with {base.name}'s tokenizer…"):
            data = prepare(corpus, base.tokenizer)
        st.session_state[_PREPARED] = (key, data)
        return data
    if corpus == _builtin():
        with st.spinner("Training a tokenizer on the stories…"):
            return _prepared_builtin(vocab, default_model().key if vocab == BUILTIN_TOKENIZER else "")
    key = (corpus.fingerprint, vocab)
    cached = st.session_state.get(_PREPARED)
    if cached and cached[0] == key:
        return cached[1]
    with st.spinner("Training a tokenizer on your text and splitting it into tokens…"):
        tok = default_model().tokenizer if vocab == BUILTIN_TOKENIZER else make_tokenizer(corpus, vocab)
        data = prepare(corpus, tok)
    st.session_state[_PREPARED] = (key, data)  # one per session: a user's text is not kept process-wide
    return data


# -- where the run starts: a new model, or a copy of one to fine-tune ---------------------------------------------
FRESH = ""  # "Start from" option: a new model with random weights


def base_models(current: ModelChoice) -> list[ModelChoice]:
    """The models this session may fine-tune: those on Glassbox's own GPT it can see (the one in use, the built-in
    model, the server's loaded GPT-2-family models, its own), each once."""
    out, seen = [], set()
    for c in [current, default_model(), *SHARED.loaded(), *session_models().values()]:
        if isinstance(c.model, GPT) and c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def base_model_picker(current: ModelChoice) -> ModelChoice | None:
    """"Start from": a new model (the default) or a model to fine-tune on the text. Returns the model, or None."""
    bases = {c.key: c for c in base_models(current)}
    key = st.selectbox(  # a model it named that is gone (a server model let go) falls back to FRESH
        "Start from", [FRESH, *bases], **PAGE.remembered("base", FRESH, [FRESH, *bases]),
        format_func=lambda k: "a new model (random weights)" if k == FRESH else
        f"fine-tune {bases[k].name} ({describe_size(bases[k].n_params)} parameters)",
        help="A new model learns everything from your text. Fine-tuning starts from a trained model's weights "
             "and its tokenizer, and nudges them towards your text: the same training, from a better start.")
    if key == FRESH:
        return None
    base = bases[key]
    cfg = base.model.config
    st.caption(f"Fine-tuning **{md(base.name)}**: {cfg.n_layer} layers × {cfg.n_head} heads, width {cfg.n_embd}, "
               f"context {cfg.block_size:,}, its own {len(base.tokenizer):,}-token tokenizer; its shape is fixed. "
               "A short run on this server's CPU: the estimate below says how long. The model you start from "
               "is not changed; the result is yours, this session only.")
    return base


# -- the model and the training settings --------------------------------------------------------------------
def _preset_values(p: Preset) -> dict:
    return {"n_layer": p.n_layer, "n_head": p.n_head, "n_embd": p.n_embd, "block_size": p.block_size,
            "vocab": p.vocab_size, "max_steps": p.max_steps, "batch_size": p.batch_size,
            "learning_rate": p.learning_rate}


def apply_preset(name: str) -> None:
    for field, value in _preset_values(PRESETS[name]).items():
        PAGE.choose(field, value)


def _field(name: str, options=None) -> dict:
    """A setting's widget arguments: remembered across pages, starting from the tiny preset."""
    return PAGE.remembered(name, _preset_values(PRESETS["tiny"])[name], options)


def settings_form(base: ModelChoice | None = None) -> Settings:
    """Presets, then every setting (starting from the tiny preset; kept across visits to other pages). When
    fine-tuning `base`, only the training settings: the shape and tokenizer are the model's."""
    if base is not None:
        c = st.columns(3)
        steps = whole_number("Training steps", 1, 20_000, step=50, where=c[0], **_field("max_steps"))
        batch = c[1].selectbox("Batch size", BATCHES, help="Text windows per step.", **_field("batch_size", BATCHES))
        rate = c[2].select_slider("Learning rate", RATES, format_func=lambda r: f"{r:g}",
                                  **_field("learning_rate", RATES), help="Fine-tuning wants a smaller step than training from scratch (1e-4 to 1e-3).")
        cfg = base.model.config
        return Settings(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.block_size,
                        vocab=BUILTIN_TOKENIZER, max_steps=int(steps), batch_size=batch, learning_rate=rate)
    cols = st.columns([1.2] + [1] * len(PRESETS), vertical_alignment="center")
    cols[0].markdown("**Presets** (on this server's CPU):")
    for col, (name, preset) in zip(cols[1:], PRESETS.items()):
        col.button(preset.label, on_click=apply_preset, args=(name,), key=PAGE.key(f"preset_{name}"),
                   use_container_width=True)
    c = st.columns(4)
    values = dict(
        n_layer=c[0].selectbox("Layers", LAYERS, help="Transformer blocks, one after another.",
                               **_field("n_layer", LAYERS)),
        n_head=c[1].selectbox("Heads per layer", HEADS, help="Attention heads in each block.",
                              **_field("n_head", HEADS)),
        n_embd=c[2].selectbox("Width (d_model)", WIDTHS, help="Numbers per token in the residual stream.",
                              **_field("n_embd", WIDTHS)),
        block_size=c[3].selectbox("Context (tokens)", CONTEXTS, help="The most tokens the model reads at once.",
                                  **_field("block_size", CONTEXTS)))
    c = st.columns(4)
    values.update(
        max_steps=whole_number("Training steps", 1, 20_000, step=50, where=c[0], **_field("max_steps")),
        batch_size=c[1].selectbox("Batch size", BATCHES, help="Text windows per step.",
                                  **_field("batch_size", BATCHES)),
        learning_rate=c[2].select_slider("Learning rate", RATES, format_func=lambda r: f"{r:g}",
                                         help="The peak step size. Too high and the loss blows up: try it.",
                                         **_field("learning_rate", RATES)),
        vocab=c[3].selectbox("Vocabulary", VOCABS,
                             format_func=lambda v: "built-in model's" if v == BUILTIN_TOKENIZER else f"{v:,} tokens",
                             help="A tokenizer trained on your text with this many tokens (fewer if the text is "
                                  "small), or the built-in model's tokenizer.", **_field("vocab", VOCABS)))
    return Settings(**values)


def _step_seconds(cfg: GPTConfig, batch_size: int, device: torch.device, threads: int) -> float:
    """One step's time: the fastest measured for these settings in this process (engine.train.budget.StepTimes),
    so the same settings never give a longer estimate because the machine was busy a moment ago."""
    with st.spinner("Timing one training step on this device…"):
        return STEP_TIMES.seconds(cfg, batch_size, device, threads)


def cost_panel(spec: RunSpec, data: Prepared, fine_tune: bool = False) -> str | None:
    """Parameters, memory, time (from a measured step) and device, before the run starts.

    Returns why the run cannot start (not enough memory, with the figures, or a model too costly to look
    inside on this server, by the same trace budget an uploaded zip is held to), or None.
    """
    cfg, t = spec.model, spec.train
    device = pick_device()
    threads = run_threads()
    est = estimate_memory(cfg, t.batch_size, spec.n_snapshots)
    free = available_memory()
    free_gpu = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    # A new shape is held to the trace budget an upload is; a model being fine-tuned was accepted already (its
    # traces are priced per text when it is used).
    problem = fits_message(est, device, free, free_gpu) or (
        None if fine_tune else over_budget(config_cost(cfg), TraceBudget.from_env()))
    c = st.columns(4)
    c[0].metric("Parameters", f"{cfg.n_params():,}")
    c[2].metric("Memory needed", gb(est.total), help=f"Of {gb(free)} free on this server." if free else None)
    c[3].metric("Training tokens", f"{len(data.train_ids):,}", help=f"Held out: {data.heldout}.")
    if problem:
        c[1].metric("Estimated time", "–")
        return problem  # never time a step of a model that does not fit
    step_s = _step_seconds(cfg, t.batch_size, device, threads)
    n_evals = t.max_steps // max(1, t.eval_interval) + 1
    seconds = estimate_run_seconds(step_s, t.max_steps, n_evals, t.eval_batches, spec.n_snapshots, spec.sample_tokens)
    st.session_state[ESTIMATE] = seconds  # the run's planned length, for those who queue behind it
    c[1].metric("Estimated time", duration(seconds), help=f"Measured on this device: {step_s * 1000:,.0f} ms per "
                f"step × {t.max_steps:,} steps, plus held-out checks and samples.")
    where = describe(device) if device.type != "cpu" else (
        f"CPU, {threads} thread{'s' if threads > 1 else ''} of {os.cpu_count()} (capped, so other pages stay "
        "responsive while it trains)")
    st.caption(f"Trains on {where}. The tokenizer has {len(data.tokenizer):,} tokens; "
               f"{spec.n_snapshots} checkpoints are kept for the time-lapse.")
    return None
