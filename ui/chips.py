"""Token chips: one coloured, bordered box per token, with a hover title giving position, id, display form
and raw bytes. Every piece of token text is escaped with `html.escape` before it goes into HTML.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from engine import EOT, token_bytes

from .cache import context_message, get_encoding
from .models import ModelChoice
from .state import widget_key
from .text import csv_text
from .terms import define

MAX_CHIPS = 3_000  # more chips than this make the page slow to draw; the rest are counted, not drawn

# Paul Tol's "light" scheme: distinguishable with the common colour-vision deficiencies, and dark text stays
# readable on every entry. Colour only helps: the border and gap mark each boundary on their own.
PALETTE = ("#77AADD", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00", "#EEDD88", "#EE8866", "#FFAABB", "#DDDDDD")

CSS = "\n".join([
    ".gb-chips { line-height: 2.3; font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace;"
    " font-size: 1.05rem; margin: 0.25rem 0 0.75rem 0; max-height: 24em; overflow-y: auto; }",
    ".gb-chip { display: inline-block; white-space: pre; color: #111; border: 1.5px solid #333;"
    " border-radius: 4px; padding: 0 0.3em; margin: 0 3px 3px 0; line-height: 1.6; cursor: default; }",
    ".gb-chip.gb-special { background: #fff; border-style: dashed; color: #555; }",
    ".gb-chip.gb-byte { font-style: italic; }",
    *(f".gb-chip.gb-c{i} {{ background: {c}; }}" for i, c in enumerate(PALETTE)),
])


def chip_title(position: int, token_id: int, shown: str, raw: bytes) -> str:
    """The hover text of one chip, escaped for an HTML attribute (lines joined by an entity newline)."""
    lines = (f"position {position}", f"id {token_id}", f"shown as {shown}",
             f"bytes {raw.hex(' ').upper() or '(none)'}")
    return "&#10;".join(html.escape(line, quote=True) for line in lines)


def chips_html(ids: Sequence[int], tokens: Sequence[str], tokenizer: Any, first_position: int = 0,
               limit: int = MAX_CHIPS) -> str:
    """HTML for up to `limit` chips. `tokens` are display strings (engine `Encoding.tokens` / `Trace.tokens`);
    positions are numbered from `first_position`. A newline token ends its line, as in the text.
    """
    parts = ['<div class="gb-chips">']
    for i, (token_id, shown) in enumerate(zip(ids[:limit], tokens[:limit])):
        raw = token_bytes(tokenizer, token_id)
        if shown == EOT:
            classes = ["gb-chip", "gb-special"]  # white and dashed: a marker, not text
        else:
            classes = ["gb-chip", f"gb-c{(first_position + i) % len(PALETTE)}"]
            if shown.startswith("<0x"):
                classes.append("gb-byte")  # a piece of a multi-byte character
        title = chip_title(first_position + i, token_id, shown, raw)
        parts.append(f'<span class="{" ".join(classes)}" title="{title}">{html.escape(shown)}</span>')
        if raw.endswith(b"\n") and shown != EOT:
            parts.append("<br>")
    parts.append("</div>")
    # One line, no blank lines: Markdown treats the whole thing as a single raw HTML block.
    return "".join(parts)


def chips_csv(ids: Sequence[int], tokens: Sequence[str], tokenizer: Any, first_position: int = 0) -> str:
    """The chips as CSV: position, id, the display form and the raw bytes in hex (cells safe for spreadsheets)."""
    rows = [{"position": first_position + i, "id": int(t), "token": csv_text(s),
             "bytes": token_bytes(tokenizer, int(t)).hex(" ")} for i, (t, s) in enumerate(zip(ids, tokens))]
    return pd.DataFrame(rows, columns=["position", "id", "token", "bytes"]).to_csv(index=False)


def show_token_chips(ids: Sequence[int], tokens: Sequence[str], tokenizer: Any, first_position: int = 0) -> None:
    """Draw the chips, with a CSV download of them (chips are HTML, not a figure: no PNG); past MAX_CHIPS, say
    how many are not drawn."""
    st.markdown(chips_html(ids, tokens, tokenizer, first_position), unsafe_allow_html=True)
    if len(ids) > MAX_CHIPS:
        st.caption(f"Showing the first {MAX_CHIPS:,} of {len(ids):,} tokens.")
    st.download_button("Download these tokens (CSV)", lambda: chips_csv(ids, tokens, tokenizer, first_position),
                       file_name="glassbox-tokens.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:", key=widget_key(f"chips_csv.{first_position}"))


def token_overview(text: str, choice: ModelChoice) -> None:
    """The home page's live view: counts, chips, and notes on anything surprising in them."""
    if not text:
        st.info("Type something in the box to see it split into tokens.", icon=":material/keyboard:")
        return
    enc = get_encoding(text, choice)
    tokens = len(enc)
    cols = st.columns(3)
    cols[0].metric("Characters", f"{len(text):,}")
    cols[1].metric("Tokens", f"{tokens:,}", help=define("token"))
    cols[2].metric("Characters per token", f"{len(text) / tokens:.2f}" if tokens else "–")
    message = context_message(tokens, choice.model.config.block_size)
    if message:
        st.info(message, icon=":material/straighten:")
    show_token_chips(enc.ids, enc.tokens, choice.tokenizer)
    notes = ["Each box is one token; hover it for its id and bytes. ␣ is a space, ↵ a line break, ⇥ a tab."]
    if not text.strip():
        notes.append("Your text is only whitespace, and whitespace is tokens too.")
    if any(t.startswith("<0x") for t in enc.tokens):
        notes.append("Boxes like <0xE6> are single bytes: the vocabulary has no token for that character, "
                     "so it is spelled out in its UTF-8 bytes.")
    if any("<U+" in t for t in enc.tokens):
        notes.append("Boxes like <U+0000> stand for invisible control characters.")
    st.caption("  \n".join(html.escape(n) for n in notes))
