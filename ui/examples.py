"""The named example texts (the `[texts]` table of ui/workshop/tour.toml): the tour's steps, the glossary's
views and the workshop room's prompts name them, so each text is written once.

This module sits below the pages (a leaf of the shared level): any wing may read the texts, and the tour,
which owns the file, reads them through `named_texts` too.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

TEXTS_FILE = Path(__file__).with_name("workshop") / "tour.toml"


def named_texts(data: Mapping) -> dict[str, str]:
    """The `[texts]` table of a parsed tour file: name -> text."""
    return {str(k): str(v) for k, v in data.get("texts", {}).items()}


@cache
def texts() -> dict[str, str]:
    """The app's named texts, in the file's order."""
    return named_texts(tomllib.loads(TEXTS_FILE.read_text(encoding="utf-8")))
