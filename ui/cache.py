"""Cached model runs: one Trace per (model, text), so interactions that keep the text never rerun the model.

Traces of the shared default model are cached process-wide (`st.cache_resource`, bounded): every session
typing the same text gets the same Trace, which is therefore read-only. Traces of the server's other models
(GPT-2, Pythia, ...: ui/models.py) are shared process-wide too, but bounded by bytes (least recently used out
first), and one trace may not exceed the per-trace budget (GLASSBOX_TRACE_BUDGET_MB): a GPT-2 trace of 256
tokens is about 280 MB, of its full 1,024-token context several GB. Traces of a session's own model are cached
in that session only, bounded by count and by bytes (least recently used out first), because a model a user
uploads or trains can have traces of hundreds of MB. They live in `st.session_state`, which Streamlit frees
when the session ends (server.disconnectedSessionTTL, 2 minutes by default, after its tab closes). Both byte
bounds are TRACES_KEPT traces at the per-trace budget (engine/settings.py); both caches are a ui.lru.ByteLRU.

A model that runs on NDIF has no Trace of everything (a 405B model's attention alone is gigabytes): a view
says what it reads (`engine.remote.TraceRequest`) and `reading` gives a local model's Trace, which holds that
and the rest, or a remote model's selective trace of just that (ui/ndif.py: shared by every session, None
while its job runs). `get_trace` on a remote model refuses in one sentence naming the pages that draw it.
"""
from __future__ import annotations

import streamlit as st

from engine import Encoding, Trace, encode, run_trace, settings
from engine.model.cost import BUDGET_MB_ENV, TraceBudget, config_cost, size_text
from engine.model.trace import encode_for_model
from engine.remote import Selective, TraceRequest

from .errors import Refused
from .lru import ByteLRU
from .models import ModelChoice, current_model
from .ndif import selective
from .server import model_work

SHARED_TRACES = 16  # process-wide cache entries; one trace is tens of MB for a small model
SESSION_TRACES = 4  # per-session cache entries for the session's own models
_SESSION_CACHE = "cache.traces"  # session key: ByteLRU {(model key, text): Trace}


def trace_cache_cap() -> int:
    """Bytes one trace cache may hold: a session's traces of its own models, or the server models' together."""
    return settings.current().trace_cache_bytes

# (model key, text) -> Trace for the server's models, shared by sessions.
SERVER_TRACES: ByteLRU[tuple[str, str], Trace] = ByteLRU(trace_cache_cap, size=lambda t: t.nbytes)


def cached_bytes(cache: ByteLRU) -> int:
    return cache.nbytes


@st.cache_resource(max_entries=SHARED_TRACES, show_spinner="Running the model…")
def _shared_trace(model_key: str, text: str, _choice: ModelChoice) -> Trace:
    # Keyed by (model_key, text); `_choice` is not hashed (the leading underscore tells Streamlit so).
    with model_work():
        return run_trace(_choice.model, _choice.tokenizer, text)


def get_trace(text: str, choice: ModelChoice | None = None) -> Trace:
    """The Trace of `text` through the current model (or `choice`). Treat it as read-only: it may be shared.

    Raises ValueError for empty text; `trace_or_stop` handles that for a page.
    """
    choice = choice or current_model()
    if not text:
        raise ValueError("There is no text to run: type something first.")
    if choice.remote:
        raise Refused(f"{choice.name} runs on NDIF, where a page asks only for what it draws: the Attention, Next "
                      "token and Scale ladder pages do. This part needs a model this server runs: pick one in the "
                      "sidebar.")
    if choice.shared and choice.key.startswith("shared:"):
        return _server_trace(text, choice)
    if choice.shared:
        return _shared_trace(choice.key, text, choice)
    cache: ByteLRU[tuple[str, str], Trace] = st.session_state.setdefault(
        _SESSION_CACHE, ByteLRU(trace_cache_cap, SESSION_TRACES, size=lambda t: t.nbytes))
    key = (choice.key, text)
    if (hit := cache.get(key)) is not None:
        return hit
    cap = trace_cache_cap()
    enc, _ = encode_for_model(choice.tokenizer, text, choice.model.config.block_size)
    _refuse_over(config_cost(choice.model.config, n_pos=len(enc)).bytes, cap)  # exact for ours: before running
    with st.spinner("Running your model…"):
        with model_work():
            trace = run_trace(choice.model, choice.tokenizer, text)
    _refuse_over(trace.nbytes, cap)
    cache.put(key, trace)
    return trace


def _server_trace(text: str, choice: ModelChoice) -> Trace:
    """A server model's trace: priced before it runs, refused over the per-trace budget with the length that fits."""
    key = (choice.key, text)
    trace = SERVER_TRACES.get(key)
    if trace is not None:
        return trace
    cfg = choice.model.config
    enc, _ = encode_for_model(choice.tokenizer, text, cfg.block_size)
    budget = TraceBudget.from_env().max_bytes
    need = config_cost(cfg, n_pos=len(enc)).bytes
    if need > budget:
        fits = max((n for n in range(1, len(enc)) if config_cost(cfg, n_pos=n).bytes <= budget), default=0)
        raise Refused(f"A look inside {choice.name} at these {len(enc):,} tokens would hold {size_text(need)}, more "
                      f"than the {size_text(budget)} this server allows per trace ({BUDGET_MB_ENV}): "
                      f"shorten the text to about {max(fits - 1, 0):,} tokens.")
    with st.spinner(f"Running {choice.name}…"):
        with model_work():
            trace = run_trace(choice.model, choice.tokenizer, text)
    SERVER_TRACES.put(key, trace)
    return trace


def reading(text: str, choice: ModelChoice, request: TraceRequest) -> Trace | Selective | None:
    """What a view that reads `request` draws from: a local model's whole Trace, or a remote model's selective
    trace for `request` (None while its job runs: its state is drawn in its place). Raises Refused."""
    if not text:
        st.info("Type some text above to see what the model does with it.", icon=":material/keyboard:")
        st.stop()
    if not choice.remote:
        return get_trace(text, choice)
    return selective(choice.model, text, request)


def _refuse_over(need: int, cap: int) -> None:
    if need > cap:
        raise Refused(f"A trace of this text through your model would hold {size_text(need)}, more than the "
                      f"{size_text(cap)} this server keeps per session: try a shorter text.")


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
