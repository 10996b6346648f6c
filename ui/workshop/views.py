"""A view: a page plus the settings that make it, in one vocabulary shared by links, the tour and the glossary.

The vocabulary is the link parameters (README, "Workshop"): `text` and `model` on every page, and each page's
own: `tab`, `layer`, `head`, `token`, `pair`, `neuron`, `temp`, `top_k`, `top_p`, `min_p`, `seed`, `draws`,
`stage`. A setting reads and writes the session keys its page already keeps (the remembered widgets of
ui.state, the sampling settings of ui.next_token.controls, the text, the model choice): there is no second
copy of any state, so a view applied here is exactly what the page's own widgets would have chosen.

Values arrive as text (a URL) and are checked against the model and text in use; one that does not fit raises
`Unusable` with the reason in a few words, and the page keeps its default for it.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import streamlit as st

from engine import CheckpointError
from engine.model.trace import encode_for_model

from .. import state
from ..attention import SECTIONS as ATTENTION_TABS
from ..attention import context as attention_context
from ..attention import state as attention_state
from ..feedforward import TABS as FEEDFORWARD_TABS
from ..models import SELECTED, ModelChoice, current_model, selected_name, selector_names
from ..next_token import PAGE as NEXT_TOKEN, POSITION, POSITION_TEXT, STAGE, controls, draws, generation
from ..next_token.stages import STAGES
from ..tokens import TABS as TOKENS_TABS

ATTENTION, FEEDFORWARD, TOKENS = attention_state.PAGE, "Feed-forward", "Tokens and vectors"
SEED_MAX = 2**31 - 1  # the seed boxes' range


class Unusable(ValueError):
    """A link value that cannot be used here; the message says why in a few words."""


def slug(label: str) -> str:
    """A label as it appears in a link: "What kind of head?" -> "what-kind-of-head"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class Context:
    """What a value is checked against: the page, and the session's text and model as set so far."""
    page: str
    text: str

    @property
    def choice(self) -> ModelChoice:
        return current_model()

    @property
    def n_positions(self) -> int:
        """Positions of the text's trace: the start marker plus the tokens that fit the context."""
        choice = self.choice
        return len(encode_for_model(choice.tokenizer, self.text[:state.MAX_CHARS],
                                    choice.model.config.block_size)[0].ids)


@dataclass(frozen=True)
class Setting:
    read: Callable[[Context], str | None]  # the session's value as link text; None: nothing to say
    apply: Callable[[Context, str], None]  # raises Unusable


# --- parsing ---------------------------------------------------------------------------------------------------

def _whole(raw: str, lo: int, hi: int, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise Unusable("not a whole number") from None
    if not lo <= value <= hi:
        raise Unusable(f"{what} run from {lo:,} to {hi:,}")
    return value


def _number(raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise Unusable("not a number") from None
    if not lo <= value <= hi:  # also refuses nan
        raise Unusable(f"must be from {lo:g} to {hi:g}")
    return value


def _label(raw: str, labels) -> str:
    for label in labels:
        if raw in (label, slug(label)):
            return label
    raise Unusable("no such tab here")


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fmt_or_none(value) -> str | None:
    return None if value is None else _fmt(value)


# --- settings kept by ui.state.remembered ----------------------------------------------------------------------

def _kept(page: str, name: str, parse: Callable[[Context, str], object],
          show: Callable[[object], str | None] = _fmt) -> Setting:
    def read(ctx: Context) -> str | None:
        value = state.kept_value(page, name)
        return None if value is None else show(value)

    def apply(ctx: Context, raw: str) -> None:
        state.choose(page, name, parse(ctx, raw))
    return Setting(read, apply)


def _tab(page: str, labels) -> Setting:
    name = "section" if page == TOKENS else "tab"
    return _kept(page, name, lambda ctx, raw: _label(raw, labels), slug)


def _layer(ctx: Context, raw: str) -> int:
    return _whole(raw, 0, ctx.choice.model.config.n_layer - 1, "layers")


def _head(ctx: Context, raw: str) -> int:
    return _whole(raw, 0, ctx.choice.model.config.n_head - 1, "heads")


def _position(ctx: Context, raw: str) -> int:
    return _whole(raw, 0, ctx.n_positions - 1, "positions of this text")


# --- Attention -------------------------------------------------------------------------------------------------

def _apply_query(ctx: Context, raw: str) -> None:
    attention_state.keep_query(ctx.choice.key, ctx.text[:state.MAX_CHARS], _position(ctx, raw))


def _pair_word(name: object) -> str | None:
    pair = attention_context.PAIRS.get(name)
    return pair[2] if pair else None  # a pair the reader typed is theirs: it does not go into links


def _apply_pair(ctx: Context, raw: str) -> None:
    for name, (a, b, word) in attention_context.PAIRS.items():
        if raw.lower() in (word, slug(name)):
            for key, value in (("pair", name), ("sentence_a", a), ("sentence_b", b), ("word", word)):
                state.choose(ATTENTION, key, value)
            return
    raise Unusable("no such example pair")


# --- Feed-forward: `layer` and `token` belong to the open tab's own picker -------------------------------------

_FF_LAYER = {"Activations": "act_layer", "Neuron explorer": "neuron_layer"}
_FF_TOKEN = {"Residual stream": "resid_pos", "Logit lens": "lens_pos"}


def _ff_setting(pickers: Mapping[str, str], parse: Callable[[Context, str], int]) -> Setting:
    def read(ctx: Context) -> str | None:
        name = pickers.get(state.kept_value(FEEDFORWARD, "tab"))
        value = state.kept_value(FEEDFORWARD, name) if name else None
        return None if value is None else str(value)

    def apply(ctx: Context, raw: str) -> None:
        value = parse(ctx, raw)
        for name in pickers.values():  # every tab's picker: the link may open on any of them
            state.choose(FEEDFORWARD, name, value)
    return Setting(read, apply)


def _neuron(ctx: Context, raw: str) -> int:
    return _whole(raw, 0, ctx.choice.model.config.d_mlp - 1, "neurons")


# --- Next token: sampling settings, seed, draws ----------------------------------------------------------------

_LIMITS = {"temperature": (0.0, 10.0), "top_p": (0.01, 1.0), "min_p": (0.0, 1.0)}


def _sampling(field_name: str) -> Setting:
    def read(ctx: Context) -> str | None:
        if controls.SETTINGS not in st.session_state:
            return None
        return _fmt(getattr(controls.current_settings(), field_name))

    def apply(ctx: Context, raw: str) -> None:
        if field_name == "top_k":
            value = _whole(raw, 0, ctx.choice.model.config.vocab_size, "top-k values")
        else:
            value = _number(raw, *_LIMITS[field_name])
        controls.store_settings(replace(controls.current_settings(), **{field_name: value}))
    return Setting(read, apply)


def _read_seed(ctx: Context) -> str | None:
    # A seed says something only when it repeats: the box's seed with "Fresh seed" off, or a histogram's.
    hist = st.session_state.get(draws.HIST)
    if hist is not None:
        return str(hist["seed"])
    if st.session_state.get(draws.FRESH) is False and draws.SEED in st.session_state:
        return str(st.session_state[draws.SEED])
    return None


def _apply_seed(ctx: Context, raw: str) -> None:
    seed = _whole(raw, 0, SEED_MAX, "seeds")
    st.session_state[draws.SEED] = seed
    st.session_state[draws.FRESH] = False  # the same draws as the link's, not fresh ones
    if st.session_state.get(generation.SEED) != seed:
        st.session_state[generation.SEED] = seed
        st.session_state.pop(generation.RUN, None)  # the generation run starts again with this seed
    hist = st.session_state.get(draws.HIST)
    if hist is not None:
        st.session_state[draws.HIST] = {**hist, "seed": seed}


def _read_draws(ctx: Context) -> str | None:
    hist = st.session_state.get(draws.HIST)
    return None if hist is None else str(hist["n"])


def _apply_draws(ctx: Context, raw: str) -> None:
    n = _whole(raw, 1, max(draws.N_OPTIONS), "draw counts")
    if n not in draws.N_OPTIONS:
        raise Unusable(f"draw counts are {', '.join(f'{o:,}' for o in draws.N_OPTIONS)}")
    st.session_state[draws.HIST] = {"n": n, "seed": int(st.session_state.get(draws.SEED, 0))}


def _apply_position(ctx: Context, raw: str) -> None:
    state.choose(NEXT_TOKEN, POSITION, _position(ctx, raw))
    # The page starts a new text at its end; this position belongs to this text.
    st.session_state[state.kept_key(NEXT_TOKEN, POSITION_TEXT)] = ctx.text[:state.MAX_CHARS]


# --- every page: the text and the model ------------------------------------------------------------------------

def model_names() -> list[str]:
    """The values the sidebar's model picker offers this session: the built-in model, the server's models (by id,
    so a link names the same model on another server that has it), then the session's own."""
    return selector_names()


def _read_model(ctx: Context) -> str | None:
    try:
        ctx.choice  # the model in use loads (or the page says it could not)
        return selected_name()
    except (CheckpointError, RuntimeError, OSError):
        return None  # the page says the model could not be loaded


def _apply_model(ctx: Context, raw: str) -> None:
    if raw not in model_names():
        raise Unusable("no model of that name here: the built-in one is shown")
    st.session_state[SELECTED] = raw  # the values after it are checked against this model


def _apply_text(ctx: Context, raw: str) -> None:
    state.set_text(raw)
    ctx.text = raw  # the positions after it are checked against this text


COMMON: dict[str, Setting] = {
    "model": Setting(_read_model, _apply_model),
    "text": Setting(lambda ctx: ctx.text, _apply_text),
}

# Per page, in the order they are applied (a token is checked against the text and model already set).
PAGE_SETTINGS: dict[str, dict[str, Setting]] = {
    TOKENS: {"tab": _tab(TOKENS, TOKENS_TABS)},
    ATTENTION: {
        "tab": _tab(ATTENTION, ATTENTION_TABS),
        "layer": _kept(ATTENTION, "layer", _layer),
        "head": _kept(ATTENTION, "head", _head),
        "token": Setting(lambda ctx: _fmt_or_none(state.kept_value(ATTENTION, "query")), _apply_query),
        "pair": Setting(lambda ctx: _pair_word(state.kept_value(ATTENTION, "pair")), _apply_pair),
    },
    FEEDFORWARD: {
        "tab": _tab(FEEDFORWARD, FEEDFORWARD_TABS),
        "layer": _ff_setting(_FF_LAYER, _layer),
        "token": _ff_setting(_FF_TOKEN, _position),
        "neuron": _kept(FEEDFORWARD, "neuron", _neuron),
    },
    NEXT_TOKEN: {
        "token": Setting(lambda ctx: _fmt_or_none(state.kept_value(NEXT_TOKEN, POSITION)), _apply_position),
        "temp": _sampling("temperature"),
        "top_k": _sampling("top_k"),
        "top_p": _sampling("top_p"),
        "min_p": _sampling("min_p"),
        "seed": Setting(_read_seed, _apply_seed),
        "draws": Setting(_read_draws, _apply_draws),
        "stage": _kept(NEXT_TOKEN, STAGE, lambda ctx, raw: _label(raw, STAGES), slug),
    },
}


def settings_of(page: str) -> dict[str, Setting]:
    """Every setting a link to `page` may hold: the text and the model, then the page's own."""
    return {**COMMON, **PAGE_SETTINGS.get(page, {})}


@dataclass
class Applied:
    """What applying a view did: the values that could not be used, each with its reason."""
    unusable: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value as given, reason)

    def note(self) -> str | None:
        """One line for the page, or None when everything was used."""
        if not self.unusable:
            return None
        parts = "; ".join(f"{name}={_short(value)} ({reason})" for name, value, reason in self.unusable)
        return f"Part of this link could not be used here, so those settings show their defaults: {parts}."


def _short(value: str) -> str:
    value = value.replace("\n", " ")
    return repr(value if len(value) <= 24 else value[:23] + "…")


def apply_view(page: str, params: Mapping[str, str], applied: Applied | None = None) -> Applied:
    """Set the session to the view `params` describes on `page`. A name the page does not know is ignored;
    a value that does not fit is left out and reported. Settings not named keep their current values."""
    applied = applied or Applied()
    ctx = Context(page, state.get_text())
    for name, setting in settings_of(page).items():
        if name not in params:
            continue
        try:
            setting.apply(ctx, params[name])
        except Unusable as e:
            applied.unusable.append((name, params[name], str(e)))
    return applied


def read_view(page: str) -> dict[str, str]:
    """The session's view of `page` as link parameters: every setting that has a value."""
    ctx = Context(page, state.get_text())
    view = {}
    for name, setting in settings_of(page).items():
        value = setting.read(ctx)
        if value is not None:
            view[name] = value
    return view
