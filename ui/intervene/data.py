"""What the Intervene page's tabs compute, computed once per (model, inputs) and kept.

Results on the server's shared models (the built-in one and server folders) are the same for every session,
so they are kept process-wide: a workshop's thirty attendees opening the same view pay for one patching grid.
Results on a session's own model stay in that session. Both caches are bounded by bytes and by count (a grid
is a few numbers, a pair's runs a few MB). Every computation runs in one of the server's forward slots
(ui.server.model_work) and returns plain values; a `Refusal` (over the budget, a pair that does not line up)
is raised, never kept, and says why in a sentence.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import TypeVar

import streamlit as st
import torch

from engine import display_token
from engine.intervene.price import Refusal

from ..errors import Refused
from ..lru import ByteLRU
from ..models import ModelChoice
from ..server import model_work
from .state import PAGE

T = TypeVar("T")
MB = 2**20


def nbytes(value: object) -> int:
    """The bytes a result's tensors hold (a pair's runs keep two activations per layer: 7 MB for GPT-2 small
    at 64 tokens), plus a little for everything else."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 64


SHARED_RESULTS: ByteLRU[tuple, object] = ByteLRU(64 * MB, 96, size=nbytes)  # (model key, what, inputs) -> result
SESSION_RESULTS = PAGE.key("results")  # session key: ByteLRU of results on this session's own models
SESSION_BYTES, SESSION_ENTRIES = 32 * MB, 24


def kept(choice: ModelChoice, key: tuple, compute: Callable[[], T], spinner: str | None = "") -> T:
    """`compute()`'s result for `key` on this model, computed at most once while it is kept. A Refusal
    becomes ui's Refused, so the tab's error boundary shows its sentence as it is. `spinner` None: no spinner
    (the caller draws its own progress)."""
    cache = SHARED_RESULTS if choice.shared else st.session_state.setdefault(
        SESSION_RESULTS, ByteLRU(SESSION_BYTES, SESSION_ENTRIES, size=nbytes))
    full = (choice.key, *key)
    hit = cache.get(full)
    if hit is not None:
        return hit
    try:
        if spinner is None:
            with model_work():
                value = compute()
        else:
            with st.spinner(spinner or "Running the model…"), model_work():
                value = compute()
    except Refusal as e:
        raise Refused(str(e)) from None
    cache.put(full, value)
    return value


def peek(choice: ModelChoice, key: tuple) -> object | None:
    """The kept result for `key` on this model, or None (nothing is computed)."""
    cache = SHARED_RESULTS if choice.shared else st.session_state.get(SESSION_RESULTS)
    return None if cache is None else cache.get((choice.key, *key))


def shown(choice: ModelChoice, token_id: int) -> str:
    """A token's display form (␣ a space, ↵ a line break): plain text, escape it where it is drawn."""
    return display_token(choice.tokenizer, int(token_id))


def words(choice: ModelChoice, ids: list[int]) -> str:
    """Generated token ids as text."""
    return choice.tokenizer.decode(ids)
