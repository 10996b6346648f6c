"""The view vocabulary: the settings that make a view, in the words links, the tour and the glossary share.

A view is a page plus settings. Every page has `text` and `model` (COMMON, here); each page declares its own
in its Page (`Page.settings`, ui/page.py): `tab`, `layer`, `head`, `token`, `temp`, ... (README, "Workshop").
A `Setting` reads and writes the session keys its page already keeps, so there is no second copy of any state:
a view applied from a link is exactly what the page's own widgets would have chosen.

Values arrive as text (a URL) and are checked against the model and text in use; one that does not fit raises
`Unusable` with the reason in a few words, and the page keeps its default for it.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import streamlit as st

from engine import CheckpointError, display_token
from engine.model.trace import encode_for_model

from .models import SELECTED, ModelChoice, current_model, selected_name, selector_names
from .state import MAX_CHARS, choose, kept_value, set_text


class Unusable(ValueError):
    """A link value that cannot be used here; the message says why in a few words."""


class Keyed(Protocol):
    """What a setting needs of its page (ui.page.Page): the page's session keys."""
    def key(self, name: str) -> str: ...


def slug(label: str) -> str:
    """A label as it appears in a link: "What kind of head?" -> "what-kind-of-head"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class Context:
    """What a value is checked against: the page, and the session's text and model as set so far."""
    page: Keyed
    text: str

    @property
    def choice(self) -> ModelChoice:
        return current_model()

    @property
    def n_positions(self) -> int:
        """Positions of the text's trace: the start marker plus the tokens that fit the context."""
        choice = self.choice
        return len(encode_for_model(choice.tokenizer, self.text[:MAX_CHARS], choice.model.config.block_size)[0].ids)


@dataclass(frozen=True)
class Setting:
    name: str  # the link parameter: "layer"
    read: Callable[[Context], str | None]  # the session's value as link text; None: nothing to say
    apply: Callable[[Context, str], None]  # raises Unusable


@dataclass(frozen=True)
class Fact:
    """Something a page can say about the running model on the session's text, measured when asked: the tour
    quotes it rather than claiming what the screen might contradict.

    `compute` returns a value for each of `keys` (numbers already worded as the page shows them, token text as
    it is: the tour escapes it), plus FOUND: False when the model has no such thing (the tour then says so).
    It raises Unusable when it cannot say anything here (e.g. the text repeats no word).
    """
    name: str  # as a tour step names it: facts = "induction"
    keys: tuple[str, ...]  # the values it gives, checked against a step's placeholders when the tour loads
    compute: Callable[[Context], dict[str, object]]


FOUND = "found"  # a Fact's answer to "does the model have this?"


def spoken(tokenizer: Any, token_id: int) -> str:
    """A token as a sentence quotes it: "fox", not "␣fox" (its visible form when it is only whitespace; "the
    start marker" for the special token a text starts with)."""
    if token_id in set(getattr(tokenizer, "all_special_ids", ())):
        return "the start marker"
    return display_token(tokenizer, token_id, show_whitespace=False).strip() or display_token(tokenizer, token_id)


# --- parsing ---------------------------------------------------------------------------------------------------

def whole(raw: str, lo: int, hi: int, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise Unusable("not a whole number") from None
    if not lo <= value <= hi:
        raise Unusable(f"{what} run from {lo:,} to {hi:,}")
    return value


def number(raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise Unusable("not a number") from None
    if not lo <= value <= hi:  # also refuses nan
        raise Unusable(f"must be from {lo:g} to {hi:g}")
    return value


def label(raw: str, labels: Sequence[str], what: str = "tab") -> str:
    for one in labels:
        if raw in (one, slug(one)):
            return one
    raise Unusable(f"no such {what} here")


def fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def layer(ctx: Context, raw: str) -> int:
    return whole(raw, 0, ctx.choice.model.config.n_layer - 1, "layers")


def head(ctx: Context, raw: str) -> int:
    return whole(raw, 0, ctx.choice.model.config.n_head - 1, "heads")


def position(ctx: Context, raw: str) -> int:
    return whole(raw, 0, ctx.n_positions - 1, "positions of this text")


# --- settings kept by remembered widgets -----------------------------------------------------------------------

def kept(name: str, parse: Callable[[Context, str], Any], show: Callable[[Any], str | None] = fmt,
         widget: str | None = None) -> Setting:
    """A setting held by the page's remembered widget `widget` (default: the setting's own name)."""
    widget = widget or name

    def read(ctx: Context) -> str | None:
        value = kept_value(ctx.page.key(widget))
        return None if value is None else show(value)

    def apply(ctx: Context, raw: str) -> None:
        choose(ctx.page.key(widget), parse(ctx, raw))
    return Setting(name, read, apply)


def tab(labels: Sequence[str]) -> Setting:
    """The page's open tab (its remembered widget `tab`), by label or slug."""
    return kept("tab", lambda ctx, raw: label(raw, labels), slug)


# --- every page: the text and the model ------------------------------------------------------------------------

def _read_model(ctx: Context) -> str | None:
    try:
        ctx.choice  # the model in use loads (or the page says it could not)
    except (CheckpointError, RuntimeError, OSError):
        return None  # the page says the model could not be loaded
    return selected_name()


def _apply_model(ctx: Context, raw: str) -> None:
    if raw not in selector_names():
        raise Unusable("no model of that name here: the built-in one is shown")
    st.session_state[SELECTED] = raw  # the values after it are checked against this model


def _apply_text(ctx: Context, raw: str) -> None:
    set_text(raw)
    ctx.text = raw  # the positions after it are checked against this text


# Applied first, in this order: a page's own values are checked against the text and model already set.
COMMON: tuple[Setting, ...] = (
    Setting("model", _read_model, _apply_model),
    Setting("text", lambda ctx: ctx.text, _apply_text),
)
