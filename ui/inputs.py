"""Input widgets that cannot be broken from outside.

A whole-number box is a float box shown without decimals. Streamlit reads an integer box's value back with
int() before a page runs, so a hand-made websocket message carrying a NaN into one would break every later run
of that session with no page code able to stop it. A float box reads a NaN back as a NaN, which ui.frame drops
(the box shows its default again), and the value the page gets is always a whole number within the bounds.
"""
from __future__ import annotations

import math
from typing import Any

import streamlit as st


def _whole(value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(min(hi, max(lo, round(value))))


def whole_number(label: str, lo: int, hi: int, default: int | None = None, *, key: str, where: Any = None,
                 step: int = 1, **kwargs: Any) -> int:
    """A number box for a whole number from `lo` to `hi` under `key` (`default`: else `lo`), drawn in `where`
    (a column; the page by default). Code may write an int to `key` (a link, a preset): it is shown as it is.
    `kwargs` go to st.number_input (help, on_change, label_visibility, disabled, ...)."""
    default = lo if default is None else default
    current = _whole(st.session_state[key], lo, hi) if key in st.session_state else None
    st.session_state[key] = float(default if current is None else current)  # the box's own type: float
    got = (where or st).number_input(label, min_value=float(lo), max_value=float(hi), step=float(step),
                                     format="%.0f", key=key, **kwargs)
    whole = _whole(got, lo, hi)
    return default if whole is None else whole
