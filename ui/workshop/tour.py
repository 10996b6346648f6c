"""The guided tour: steps read from tour.toml, the session's place in them, and the panel with Back and Next.

A step names a page and a view (ui.workshop.views' vocabulary). Entering a step sets only what it names, on
the keys the pages already keep, so every view stays live: the reader can change anything, and Next goes on
from the step they are on. Next and Back reach the step's page through a link like any other
(ui.workshop.links), so a step is also a link: `?tour=5` opens step 5.

A step never claims what the screen could contradict: its words quote the model (`{n_layer}`, the model's
shape, on every step) and its page's facts (`facts = "induction"`: ui.view.Fact, measured on the session's
text when the step is drawn), and a step's view may take its values from them (`layer = "{layer}"`). When the
model has no such thing (a fact's FOUND is false) the step says so in its `otherwise` words.
"""
from __future__ import annotations

import html
import logging
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import streamlit as st

from ..cache import get_trace
from ..examples import named_texts
from ..models import ModelChoice, current_model
from ..page import Page
from ..registry import BY_ID
from ..state import MAX_CHARS, get_text, presenting, widget_key
from ..text import md
from ..view import FOUND, Context
from .presenter import focus
from .views import Applied, Unusable, apply_view, settings_of

TOUR_FILE = Path(__file__).with_name("tour.toml")
LOG = logging.getLogger("glassbox.ui")
PLACE = "workshop.tour"  # session key: {"step": index into steps(), "on": bool}
PENDING = "workshop.tour_pending"  # session key: set by Back / Next / Start; the next run opens the step
FOCUS = "workshop.focus"  # session key: changes each time a step is entered (focus scrolls once)
_STEP_KEYS = {"chapter", "title", "body", "otherwise", "page", "text", "view", "figure", "facts"}
# What every step may quote of the model in use (model_facts).
MODEL_KEYS = ("params", "n_layer", "n_head", "width", "neurons", "vocab", "context", "steps")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as the progress line and `?tour=` say it
    chapter: str
    title: str
    body: str  # Markdown, with {placeholders} for what the model and the page's facts say
    page: Page
    params: tuple[tuple[str, str], ...]  # the view, as link parameters (the text resolved; may hold {placeholders})
    figure: str  # CSS selector of the step's main figure
    facts: str | None = None  # the page's fact the step quotes
    otherwise: str = ""  # Markdown: the words when the model has no such thing (the fact's FOUND is false)

    @property
    def view(self) -> dict[str, str]:
        return dict(self.params)

    @property
    def fixed_view(self) -> dict[str, str]:
        """The view's values that need no fact (a link to the step carries these; the rest follow on arrival)."""
        return {k: v for k, v in self.params if not _PLACEHOLDER.search(v)}


def figure_selector(page: Page, figure: str) -> str:
    """A step's `figure` as a CSS selector: a selector as it is, or the name of one of the page's widget keys
    (Streamlit gives an element with key K the class `st-key-K`, every other character made a hyphen)."""
    if figure[:1] in ".#[":
        return figure
    return ".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", page.key(figure))


def param_text(value: object) -> str:
    """A TOML value as link text: 2 -> "2", 0.5 -> "0.5"."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_placeholders(where: str, page: Page, fact: str | None, *templates: str) -> None:
    known = set(MODEL_KEYS) | (set(page.facts[fact].keys) if fact else set())
    used = {name for t in templates for name in _PLACEHOLDER.findall(t)}
    if used - known:
        raise ValueError(f"{where}: nothing gives {sorted(used - known)} (the model gives {list(MODEL_KEYS)}"
                         + (f", fact {fact!r} gives {list(page.facts[fact].keys)}" if fact else "") + ")")


def load(path: Path = TOUR_FILE) -> tuple[dict[str, str], tuple[Step, ...]]:
    """The named texts and the steps of a tour file. Raises ValueError naming the step and the problem."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    texts = named_texts(data)
    steps = []
    for i, raw in enumerate(data.get("step", []), start=1):
        where = f"{path.name}, step {i}"
        unknown = set(raw) - _STEP_KEYS
        missing = {"chapter", "title", "body", "page", "figure"} - set(raw)
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        page = BY_ID.get(raw["page"])
        if page is None:
            raise ValueError(f"{where}: no page {raw['page']!r} (ui/registry.py has {', '.join(BY_ID)})")
        view = {k: param_text(v) for k, v in raw.get("view", {}).items()}
        allowed = set(settings_of(page)) - {"text"}
        if set(view) - allowed:
            raise ValueError(f"{where}: {page.title} has no setting {sorted(set(view) - allowed)}")
        if "text" in raw:
            if raw["text"] not in texts:
                raise ValueError(f"{where}: no text named {raw['text']!r} in [texts]")
            view = {"text": texts[raw["text"]], **view}
        fact = raw.get("facts")
        if fact is not None and fact not in page.facts:
            raise ValueError(f"{where}: {page.title} has no fact {fact!r} (it has {sorted(page.facts)})")
        if fact is not None and "otherwise" not in raw:
            raise ValueError(f"{where}: a step that quotes a fact says `otherwise` what the model lacks")
        body, otherwise = str(raw["body"]).strip(), str(raw.get("otherwise", "")).strip()
        _check_placeholders(where, page, fact, body, otherwise, *view.values())
        steps.append(Step(i, str(raw["chapter"]), str(raw["title"]), body, page, tuple(view.items()),
                          figure_selector(page, str(raw["figure"])), fact, otherwise))
    if not steps:
        raise ValueError(f"{path.name} has no [[step]]")
    return texts, tuple(steps)


@cache
def _tour() -> tuple[dict[str, str], tuple[Step, ...]]:
    return load()


def steps() -> tuple[Step, ...]:
    return _tour()[1]


def texts() -> dict[str, str]:
    """The tour file's named texts (the glossary's views name them too)."""
    return _tour()[0]


def chapters() -> list[str]:
    return list(dict.fromkeys(s.chapter for s in steps()))


# --- the session's place ---------------------------------------------------------------------------------------

def _place() -> dict:
    return st.session_state.setdefault(PLACE, {"step": 0, "on": False})


def touring() -> bool:
    return bool(_place()["on"])


def current() -> Step:
    return steps()[min(_place()["step"], len(steps()) - 1)]


def current_step_number() -> int | None:
    """The step the tour is on (1-based), or None when the tour is off."""
    return current().number if touring() else None


def go(index: int) -> None:
    """Open step `index` (0-based) on the next run: Start, Back and Next call this."""
    st.session_state[PLACE] = {"step": max(0, min(index, len(steps()) - 1)), "on": True}
    st.session_state[PENDING] = True


def start(index: int) -> None:
    """Start (or resume) the tour at step `index`; in presenter mode, first run the model on every step's text,
    so the room's first clicks on each step are cache hits."""
    if presenting():
        prewarm()
    go(index)


def prewarm() -> None:
    """Traces of every text the tour's steps show (and the session's own), computed now and cached."""
    wanted = {dict(s.params).get("text") for s in steps()} | {get_text()}
    for text in sorted(t[:MAX_CHARS] for t in wanted if t):
        try:
            get_trace(text)
        except Exception:  # a text this model refuses (over its budget) is simply not pre-warmed
            LOG.warning("Glassbox: the tour could not pre-warm a text", exc_info=True)


def leave() -> None:
    """Exit the tour; the place is kept, so it resumes where it was left."""
    _place()["on"] = False


def take_pending() -> Step | None:
    """The step Back / Next / Start asked for, once."""
    return current() if st.session_state.pop(PENDING, False) else None


def step_of_param(raw: str) -> Step:
    """The step a link's `tour=` names. Raises Unusable."""
    try:
        number = int(raw)
    except ValueError:
        raise Unusable("not a step number") from None
    if not 1 <= number <= len(steps()):
        raise Unusable(f"the tour has steps 1 to {len(steps())}")
    return steps()[number - 1]


def words(n: int) -> str:
    """A parameter count as a talk says it: "1.35 million", "124 million", "8.0 billion"."""
    if n >= 10**9:
        return f"{n / 10**9:.1f} billion"
    return f"{n / 10**6:.3g} million" if n >= 10**6 else f"{n:,}"


def model_facts(choice: ModelChoice) -> dict[str, object]:
    """What every step may quote of the model in use (MODEL_KEYS)."""
    cfg = choice.model.config
    return {"params": words(choice.n_params), "n_layer": cfg.n_layer, "n_head": cfg.n_head, "width": cfg.n_embd,
            "neurons": f"{cfg.d_mlp:,}", "vocab": f"{cfg.vocab_size:,}", "context": f"{cfg.block_size:,}",
            "steps": len(steps())}


def measure(step: Step) -> dict[str, object]:
    """The values the step quotes, measured now on the session's model and text. Raises Unusable when its
    fact cannot be measured here."""
    choice = current_model()
    values = model_facts(choice)
    if step.facts:
        values.update(step.page.facts[step.facts].compute(Context(step.page, get_text())))
    return values


def _markdown(value: object) -> str:
    """A value as the step's Markdown shows it: literal text (a token may be `*` or `_`); a list as italics."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"*{md(str(v))}*" for v in value)
    return md(str(value))


def words_of(step: Step, values: dict[str, object]) -> str:
    """The step's words with the model's values in them (its `otherwise` words if the model lacks the thing)."""
    template = step.body if values.get(FOUND, True) else step.otherwise
    return template.format_map({k: _markdown(v) for k, v in values.items()})


def enter(step: Step, applied: Applied | None = None) -> Applied:
    """Put the session on `step`: the tour on, the step's view applied (what needs no fact, then what its
    facts say), its figure to be brought into view."""
    st.session_state[PLACE] = {"step": step.number - 1, "on": True}
    st.session_state[FOCUS] = st.session_state.get(FOCUS, 0) + 1
    applied = apply_view(step.page, step.fixed_view, applied)
    measured = {k: v for k, v in step.params if k not in step.fixed_view}
    if measured:
        try:
            values = {k: str(v) for k, v in measure(step).items()}
        except Unusable:
            return applied  # the panel says why the step's numbers are missing
        applied = apply_view(step.page, {k: v.format_map(values) for k, v in measured.items()}, applied)
    return applied


# --- drawing ---------------------------------------------------------------------------------------------------

def start_button(where: str) -> None:
    """Start the tour, resume it where it was left, or leave it (`where`: a name for the button's place)."""
    if touring():
        st.button("Leave the tour", icon=":material/close:", key=widget_key(f"tour_leave_{where}"), on_click=leave,
                  help="Back to exploring freely; the tour waits where you left it.")
        return
    place = _place()["step"]
    label = f"Resume the tour (step {place + 1})" if place else "Take the guided tour"
    st.button(label, icon=":material/tour:", key=widget_key(f"tour_start_{where}"), on_click=start, args=(place,),
              type="primary", help=f"{len(steps())} short steps through the model, from text to the next "
                                   "token. Every view stays live: change anything, then press Next.")
    if place:
        st.button("Start the tour again", icon=":material/restart_alt:", key=widget_key(f"tour_restart_{where}"),
                  on_click=go, args=(0,), help="From the first step.")


def panel(page: Page) -> None:
    """The tour's step at the top of the page: progress, the step's words, Back, Next and Leave."""
    step, total = current(), len(steps())
    names = chapters()
    last = step.number == total
    with st.container(key="gb_tour", border=True, gap="small"):
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.progress(step.number / total,
                        text=f"Step {step.number} of {total} · chapter {names.index(step.chapter) + 1} of "
                             f"{len(names)}: {step.chapter}")
            st.button("Back", icon=":material/arrow_back:", key=widget_key("tour_back"), shortcut="PageUp",
                      on_click=go, args=(step.number - 2,), disabled=step.number == 1)
            st.button("Finish" if last else "Next", type="primary", icon=":material/arrow_forward:",
                      key=widget_key("tour_next"), shortcut="PageDown",
                      on_click=leave if last else go, args=() if last else (step.number,))
            st.button("Leave", type="tertiary", icon=":material/close:", key=widget_key("tour_exit"), on_click=leave,
                      help="Leave the tour; it waits where you left it (the sidebar resumes it).")
        st.markdown(f'<div class="gb-tour-title">{html.escape(step.title)}</div>', unsafe_allow_html=True)
        try:
            st.markdown(words_of(step, measure(step)))
        except Unusable as e:
            st.markdown(f"This step reads its numbers from the model on its own text, and here {md(str(e))}. "
                        "*Back to this step's view* puts its text back.")
            if step.page.id == page.id:
                st.button("Back to this step's view", icon=":material/undo:", key=widget_key("tour_redo"),
                          on_click=go, args=(step.number - 1,))
        if step.page.id != page.id:
            st.button(f"Back to this step's view ({step.page.title})", icon=":material/undo:",
                      key=widget_key("tour_here"), on_click=go, args=(step.number - 1,))
    if step.page.id == page.id:
        focus(step.figure, st.session_state.get(FOCUS, 0))
