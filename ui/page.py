"""A page is one declared object: `PAGE = Page(key, title, script, icon, blurb, settings)` in its wing.

Everything else is derived from it: the page's session keys (`PAGE.key("layer")` -> "attention.layer"), its
remembered widgets, the link parameters it understands (`settings`, in ui.view's vocabulary), the tour's and
the glossary's targets (by `id`), the sidebar and the home page's links (ui.registry lists the pages). A
page's title is a label, never an identifier.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .state import choose, kept_value, remembered
from .view import Fact, Setting


@dataclass(frozen=True)
class Page:
    id: str  # the identifier: session keys, tour steps and glossary entries name the page by it ("attention")
    title: str  # the label: page title, link text
    script: str  # the page's file relative to the repository root, e.g. "pages/2_Attention.py"
    icon: str  # a Material icon (":material/visibility:") for links: it renders everywhere, emoji need a font
    blurb: str  # one line: what the page shows
    settings: tuple[Setting, ...] = ()  # the view settings it owns, in the order a link applies them
    facts: dict[str, Fact] = field(default_factory=dict, compare=False, hash=False)  # what the page can measure
    #      for the tour to quote: filled by `@PAGE.fact(...)` in the wing's facts module (its face imports it)
    favicon: str = "🔬"  # the browser tab's icon: an emoji (a Material icon there is fetched from Google's CDN,
    #                     and the app works offline)
    remote: bool = False  # it draws a model that runs on NDIF too (asking for what it draws: ui.cache.reading)

    def __post_init__(self) -> None:
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names) or {"text", "model"} & set(names):
            raise ValueError(f"page {self.id!r}: settings must have distinct names other than text and model")

    def fact(self, name: str, keys: tuple[str, ...]) -> Callable[[Callable], Callable]:
        """Decorator: `compute(ctx) -> {key: value}` becomes this page's fact `name` (ui.view.Fact)."""
        def register(compute: Callable) -> Callable:
            if name in self.facts:
                raise ValueError(f"page {self.id!r} has a fact {name!r} already")
            self.facts[name] = Fact(name, keys, compute)
            return compute
        return register

    def key(self, name: str) -> str:
        """This page's session key (or widget key) `name`: "attention.layer"."""
        return f"{self.id}.{name}"

    def remembered(self, name: str, default: Any, options: Sequence[Any] | None = None,
                   then: Callable[[], None] | None = None) -> dict[str, Any]:
        """Keyword arguments for a widget of this page whose value survives page changes (ui.state)."""
        return remembered(self.key(name), default, options, then)

    def kept(self, name: str, default: Any = None) -> Any:
        """A remembered widget's value, drawn or not."""
        return kept_value(self.key(name), default)

    def choose(self, name: str, value: Any) -> None:
        """Set a remembered widget's value (a click on a figure, a link)."""
        choose(self.key(name), value)
