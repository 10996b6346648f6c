"""Cached model runs: one Trace per (model, text), so interactions that keep the text never rerun the model.

Traces of the shared default model are cached process-wide (`st.cache_resource`, bounded): every session
typing the same text gets the same Trace, which is therefore read-only. Traces of a session's own model are
cached in that session only.
"""
from __future__ import annotations

import streamlit as st

from engine import Encoding, Trace, encode, run_trace

from .models import ModelChoice, current_model

SHARED_TRACES = 16  # process-wide cache entries; one trace is tens of MB for a small model
SESSION_TRACES = 4  # per-session cache entries for the session's own models
_SESSION_CACHE = "session_traces"  # session key: {(model key, text): Trace}


@st.cache_resource(max_entries=SHARED_TRACES, show_spinner="Running the model…")
def _shared_trace(model_key: str, text: str, _choice: ModelChoice) -> Trace:
    # Keyed by (model_key, text); `_choice` is not hashed (the leading underscore tells Streamlit so).
    return run_trace(_choice.model, _choice.tokenizer, text)


def get_trace(text: str, choice: ModelChoice | None = None) -> Trace:
    """The Trace of `text` through the current model (or `choice`). Treat it as read-only: it may be shared.

    Raises ValueError for empty text; `trace_or_stop` handles that for a page.
    """
    choice = choice or current_model()
    if not text:
        raise ValueError("There is no text to run: type something first.")
    if choice.shared:
        return _shared_trace(choice.key, text, choice)
    cache: dict[tuple[str, str], Trace] = st.session_state.setdefault(_SESSION_CACHE, {})
    key = (choice.key, text)
    if key not in cache:
        with st.spinner("Running your model…"):
            trace = run_trace(choice.model, choice.tokenizer, text)
        while len(cache) >= SESSION_TRACES:
            cache.pop(next(iter(cache)))  # oldest first: dicts keep insertion order
        cache[key] = trace
    return cache[key]


def get_encoding(text: str, choice: ModelChoice | None = None) -> Encoding:
    """Tokens of `text` under the current model's tokenizer (no model run, no special tokens)."""
    choice = choice or current_model()
    return encode(choice.tokenizer, text)


def context_message(n_text_tokens: int, block_size: int) -> str | None:
    """What the model keeps of a text longer than its context, in words; None when it all fits."""
    room = block_size - 1  # the model's first position holds the <|endoftext|> start marker
    if n_text_tokens <= room:
        return None
    return (f"The model reads at most {block_size:,} tokens at once, and the first is a start marker. "
            f"Your text has {n_text_tokens:,} tokens, so the model sees the last {room:,} of them "
            f"and leaves out the first {n_text_tokens - room:,}.")


def trace_or_stop(text: str, choice: ModelChoice | None = None) -> Trace:
    """For a page that needs the model: the Trace of `text`, with a note when the context cut it.

    Empty text shows a prompt to type something and stops the page there.
    """
    choice = choice or current_model()
    if not text:
        st.info("Type some text above to see what the model does with it.", icon=":material/keyboard:")
        st.stop()
    trace = get_trace(text, choice)
    if trace.n_dropped:
        st.info(context_message(len(trace) - int(trace.has_bos) + trace.n_dropped, trace.config.block_size),
                icon=":material/straighten:")
    return trace
