"""The glossary's words and the key takeaways, read from glossary.toml: one definition per term, written once.

This module knows no other part of the UI, so every page and wing can take a term's definition for a widget's
help (`define`); the Glossary page's drawing, with each entry linked to its view, is ui.workshop.glossary.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

GLOSSARY_FILE = Path(__file__).with_name("glossary.toml")


@dataclass(frozen=True)
class Entry:
    key: str  # how code names it: define("temperature")
    name: str  # how the page shows it
    text: str  # plain words
    see: tuple[tuple[str, object], ...]  # the view that shows it: page, then link parameters, as in the file


def load(path: Path = GLOSSARY_FILE) -> tuple[dict[str, Entry], tuple[Entry, ...]]:
    """The terms (by key) and the takeaways, in the file's order."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    terms = {raw["key"]: Entry(raw["key"], raw["name"], raw["text"].strip(), tuple(raw.get("see", {}).items()))
             for raw in data.get("term", [])}
    takeaways = tuple(Entry(f"takeaway-{i}", raw["title"], raw["text"].strip(), tuple(raw.get("see", {}).items()))
                      for i, raw in enumerate(data.get("takeaway", []), start=1))
    return terms, takeaways


@cache
def _glossary() -> tuple[dict[str, Entry], tuple[Entry, ...]]:
    return load()


def terms() -> dict[str, Entry]:
    return _glossary()[0]


def takeaways() -> tuple[Entry, ...]:
    return _glossary()[1]


def define(key: str, then: str = "") -> str:
    """A term's definition for a widget's help (Markdown), optionally followed by the widget's own words.
    Raises KeyError for a term glossary.toml does not define (a test reads every call in the code)."""
    term = terms()[key]
    return f"**{term.name}**: {term.text}" + (f"\n\n{then}" if then else "")
