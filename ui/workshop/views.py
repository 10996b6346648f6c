"""A view: a page plus the settings that make it, read from and applied to the session.

The settings are the text and the model on every page (ui.view.COMMON) and each page's own, declared in its Page
(`Page.settings`); this module knows no page's internals. Values arrive as text (a URL) and are checked against
the model and text in use; one that does not fit is left at its default and reported in one line, quoted as
literal text (a link's value is someone else's words: never Markdown in the app's own voice).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..page import Page
from ..state import get_text
from ..text import md
from ..view import COMMON, Context, Setting, Unusable

__all__ = ["Applied", "Unusable", "apply_view", "read_view", "settings_of"]


def settings_of(page: Page) -> dict[str, Setting]:
    """Every setting a link to `page` may hold, in the order they are applied: the model and the text, then
    the page's own (a token is checked against the text and model already set)."""
    return {s.name: s for s in (*COMMON, *page.settings)}


@dataclass
class Applied:
    """What applying a view did: the values that could not be used, each with its reason."""
    unusable: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value as given, reason)

    def note(self) -> str | None:
        """One line for the page (Markdown: the values quoted from the link escaped; names and reasons are ours),
        or None when everything was used."""
        if not self.unusable:
            return None
        parts = "; ".join(f"{name}={_short(value)} ({reason})" for name, value, reason in self.unusable)
        return f"Part of this link could not be used here, so those settings show their defaults: {parts}."


def _short(value: str) -> str:
    """A value as the note quotes it: cut, on one line, and as literal text."""
    value = value.replace("\n", " ")
    return md(repr(value if len(value) <= 24 else value[:23] + "…"))


def apply_view(page: Page, params: Mapping[str, str], applied: Applied | None = None) -> Applied:
    """Set the session to the view `params` describes on `page`. A name the page does not know is ignored;
    a value that does not fit is left out and reported. Settings not named keep their current values."""
    applied = applied or Applied()
    ctx = Context(page, get_text())
    for name, setting in settings_of(page).items():
        if name not in params:
            continue
        try:
            setting.apply(ctx, params[name])
        except Unusable as e:
            applied.unusable.append((name, params[name], str(e)))
    return applied


def read_view(page: Page) -> dict[str, str]:
    """The session's view of `page` as link parameters: every setting that has a value."""
    ctx = Context(page, get_text())
    view = {}
    for name, setting in settings_of(page).items():
        value = setting.read(ctx)
        if value is not None:
            view[name] = value
    return view
