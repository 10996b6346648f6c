"""The "Tokens and vectors" page's live token view: counts, a context meter, chips, a token table, and the
same text under other tokenizers. Nothing here runs the model: tokenizing is all it takes.
"""
from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from engine import Encoding, encode, settings, token_bytes
from engine.inspect.compare_tokenizers import (GPT2_REPO, ContextFit, Gpt2Tokenizer, chars_per_token, compare,
                                               dropped_text, load_gpt2_tokenizer)

from ..cache import context_message
from ..chips import MAX_CHIPS, chips_html, show_token_chips
from ..models import ROOT, ModelChoice, default_model, offered_loaded
from .state import PAGE
from ..terms import define

GPT2_ENV = settings.env_name("gpt2_tokenizer")  # optional: a folder holding GPT-2's tokenizer (tokenizer.json)
GPT2_FOLDER = ROOT / "models" / "gpt2-tokenizer"  # looked at when the variable is not set
PANEL_CHIPS = 400  # chips per comparison panel; four panels of a long text would make a slow page

# Okabe-Ito blue and vermillion: told apart with every common colour-vision deficiency, and the meter also
# says in words when the text does not fit.
FITS, OVERFLOWS = "#0072B2", "#D55E00"
METER_CSS = (
    ".gb-meter { height: 0.9rem; border: 1.5px solid #333; border-radius: 4px; background: #fff;"
    " overflow: hidden; margin: 0.2rem 0 0.3rem 0; }"
    ".gb-meter-fill { height: 100%; }"
    ".gb-left-out .gb-chip { opacity: 0.45; border-style: dotted; }"  # faded and dotted: not only colour
)


def show_whitespace_toggle() -> bool:
    return st.toggle("Show whitespace", **PAGE.remembered("show_whitespace", True),
                     help="Spaces show as ␣, line breaks as ↵, tabs as ⇥. Off: they show as they are.")


def live_tokens(text: str, choice: ModelChoice, show_whitespace: bool) -> Encoding | None:
    """Counts, context meter, chips and notes for `text` under the model's tokenizer."""
    if not text:
        st.info("Type something in the box to see it split into tokens.", icon=":material/keyboard:")
        return None
    enc = encode(choice.tokenizer, text, show_whitespace)
    fit = ContextFit(len(enc), choice.model.config.block_size)
    cols = st.columns(4)
    cols[0].metric("Characters", f"{len(text):,}")
    cols[1].metric("Tokens", f"{len(enc):,}", help=define("token"))
    ratio = chars_per_token(text, len(enc))
    cols[2].metric("Characters per token", f"{ratio:.2f}" if ratio else "–")
    cols[3].metric("Context used", context_used(fit),
                   help=define("context window",
                               f"The model reads {fit.block_size:,} tokens at once; the first is a start marker."))
    context_meter(fit)
    if fit.dropped:
        split_chips(text, enc, fit, choice.tokenizer)
    else:
        show_token_chips(enc.ids, enc.tokens, choice.tokenizer)
    st.caption("  \n".join(html.escape(n) for n in token_notes(text, enc, show_whitespace)))
    return enc


def context_used(fit: ContextFit) -> str:
    """The share of the context a text fills, or, for a longer text, what is read and what is cut, in words
    (a share above 100% says neither)."""
    if not fit.room:
        return "–"
    if fit.dropped:
        return f"all {fit.room:,}; {fit.dropped:,} cut"
    return f"{fit.fraction:.0%}"


def context_meter(fit: ContextFit) -> None:
    """A bar: how much of the context the text fills; vermillion and full once it does not fit."""
    over = fit.dropped > 0
    width = 100 if over else round(100 * fit.fraction, 1)
    colour = OVERFLOWS if over else FITS
    st.html(f'<style>{METER_CSS}</style><div class="gb-meter" role="meter" aria-label="context used" '
            f'aria-valuemin="0" aria-valuemax="{fit.room}" aria-valuenow="{min(fit.n_tokens, fit.room)}">'
            f'<div class="gb-meter-fill" style="width: {width}%; background: {colour};"></div></div>')
    if not over:
        st.caption(f"{fit.n_tokens:,} of the {fit.room:,} tokens the model can read after its start marker.")


def split_chips(text: str, enc: Encoding, fit: ContextFit, tokenizer) -> None:
    """A text longer than the context: say so, then the left-out tokens (faded) apart from the ones it sees."""
    st.warning(context_message(fit.n_tokens, fit.block_size), icon=":material/content_cut:")
    gone = dropped_text(text, enc, fit.dropped)
    st.caption(f"**Left out:** the model will not see these {fit.dropped:,} tokens, the first "
               f"{len(gone):,} characters of your text.")
    st.markdown(f'<div class="gb-left-out">{chips_html(enc.ids[:fit.dropped], enc.tokens[:fit.dropped], tokenizer)}'
                "</div>", unsafe_allow_html=True)
    if fit.dropped > MAX_CHIPS:
        st.caption(f"Showing the first {MAX_CHIPS:,} of {fit.dropped:,} left-out tokens.")
    st.caption(f"**Seen:** the last {fit.room:,} tokens, which the model reads after its start marker.")
    show_token_chips(enc.ids[fit.dropped:], enc.tokens[fit.dropped:], tokenizer, first_position=fit.dropped)


def token_notes(text: str, enc: Encoding, show_whitespace: bool) -> list[str]:
    """Plain-language notes on anything surprising in the chips."""
    notes = ["Each box is one token; hover it for its position, id and bytes."]
    if show_whitespace:
        notes[0] += " ␣ is a space, ↵ a line break, ⇥ a tab."
    if not text.strip():
        notes.append("Your text is only whitespace, and whitespace is tokens too.")
    if any("<0x" in t for t in enc.tokens):
        notes.append("Boxes like <0xF0> are single bytes: the vocabulary has no token for that character, "
                     "so it is spelled out in its UTF-8 bytes.")
    if any("<U+" in t for t in enc.tokens):
        notes.append("Boxes like <U+0000> stand for invisible control characters.")
    return notes


def token_table(text: str, enc: Encoding, tokenizer) -> pd.DataFrame:
    """One row per token: position, id, display form, raw bytes (hex) and the characters it covers."""
    return pd.DataFrame({
        "position": range(len(enc)),
        "id": enc.ids,
        "token": enc.tokens,
        "bytes": [token_bytes(tokenizer, i).hex(" ").upper() for i in enc.ids],
        "start": [s for s, _ in enc.offsets],
        "end": [e for _, e in enc.offsets],
        "text": [text[s:e] for s, e in enc.offsets],
    })


def show_token_table(text: str, enc: Encoding, tokenizer) -> None:
    with st.expander(f"All {len(enc):,} tokens as a table"):
        st.dataframe(token_table(text, enc, tokenizer), hide_index=True, height=320)
        st.caption("The table's toolbar (top right, on hover) downloads it as CSV.")


def gpt2_howto() -> str:
    """How to add GPT-2's tokenizer to a server that has none (Markdown): a folder, or the variable."""
    folder = GPT2_FOLDER.relative_to(ROOT)
    return (f"To add it, put its `tokenizer.json` (or `vocab.json` and `merges.txt`) in `{folder}/`, for "
            f"example with `hf download {GPT2_REPO} tokenizer.json --local-dir {folder}` on a machine that is "
            f"online, or set `{GPT2_ENV}` to a folder that holds it; then restart the app.")


@st.cache_resource(show_spinner="Looking for GPT-2's tokenizer…")
def gpt2_tokenizer() -> Gpt2Tokenizer:
    """Process-wide and read-only: tried once per server, so an offline server answers instantly after."""
    folder = settings.current().gpt2_tokenizer
    folders = [folder] if folder is not None else []
    return load_gpt2_tokenizer([*folders, GPT2_FOLDER])


def other_tokenizers(choice: ModelChoice) -> list[tuple[str, object]]:
    """The tokenizers of the other models loaded on this server (the built-in one, server models), by model,
    each vocabulary once: the same text under GPT-2's, Pythia's, SmolLM2's ... tokenizer side by side."""
    out = []
    for other in [default_model(), *offered_loaded()]:
        if other.key == choice.key or other.tokenizer is choice.tokenizer:
            continue
        out.append((f"{other.name}'s BPE", other.tokenizer))
    return out


def compare_tokenizers(text: str, choice: ModelChoice, show_whitespace: bool) -> None:
    """The text under characters, bytes, the model's BPE and GPT-2's BPE: counts, then chips side by side."""
    if not text:
        st.info("Type something in the box above to compare tokenizers.", icon=":material/keyboard:")
        return
    gpt2 = gpt2_tokenizer()
    views = compare(text, choice.tokenizer, gpt2.tokenizer, show_whitespace, other_tokenizers(choice))
    table = pd.DataFrame({
        "tokenizer": [v.name for v in views],
        "tokens": [len(v.encoding) for v in views],
        "characters per token": [round(chars_per_token(text, len(v.encoding)) or 0.0, 2) for v in views],
        "vocabulary size": [v.vocab_size for v in views],
    })
    st.dataframe(table, hide_index=True, column_config={
        "characters per token": st.column_config.NumberColumn(format="%.2f"),
        "vocabulary size": st.column_config.NumberColumn(format="localized"),
        "tokens": st.column_config.NumberColumn(format="localized")})
    if gpt2.tokenizer is None:
        st.caption(f":material/cloud_off: {gpt2.note} {gpt2_howto()}")
    else:
        st.caption(f"GPT-2's tokenizer comes from {gpt2.source}. It has a 50,257-token vocabulary, "
                   "learned from web text, so it needs fewer tokens for most English.")
    for row in range(0, len(views), 2):
        cols = st.columns(2)
        for col, view in zip(cols, views[row:row + 2]):
            with col:
                st.markdown(f"**{view.name}** · {len(view.encoding):,} tokens")
                enc = view.encoding
                st.markdown(chips_html(enc.ids, enc.tokens, view.tokenizer, limit=PANEL_CHIPS),
                            unsafe_allow_html=True)
                if len(enc) > PANEL_CHIPS:
                    st.caption(f"Showing the first {PANEL_CHIPS:,} of {len(enc):,} tokens.")
    st.caption("Characters: one token per Unicode character (its id is the code point). Bytes: one per UTF-8 "
               "byte (id = the byte's value), so an accented letter is 2 tokens and most emoji are 4. "
               "BPE starts from bytes and merges frequent pairs into longer tokens.")
