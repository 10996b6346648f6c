"""A small gallery of texts that tokenize in surprising ways, each split live by the current model's tokenizer."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from engine import encode

from ..chips import chips_html
from ..models import ModelChoice
from ..state import set_text
from .state import PAGE


@dataclass(frozen=True)
class Pitfall:
    title: str
    lesson: str  # one or two sentences: what to look for in the chips
    samples: tuple[str, ...]  # texts to split side by side


PITFALLS = (
    Pitfall("Numbers",
            "Numbers are cut into pieces that depend on the digits and the commas, so the model never sees "
            "1234567 as one quantity, and the same value written two ways looks different.",
            ("1234567", "1,234,567", "3.14159", "2024")),
    Pitfall("Leading spaces and capitals",
            "A word after a space is a different token from the same word at the start of a text, and "
            "capitals make yet another: these are unrelated ids to the model until training links them.",
            ("Hello", " hello", "hello", "HELLO")),
    Pitfall("Emoji and accented letters",
            "A character the vocabulary lacks is spelled out in its UTF-8 bytes: boxes like <0xF0> are "
            "fragments of one character, meaningless alone.",
            ("I love pizza 🍕", "👍🏽 thumbs up", "café naïve façade", "Ærøskøbing")),
    Pitfall("Another language",
            "A tokenizer learned mostly from English needs more tokens for the same sentence in another "
            "language, so other languages cost more and fit less in the context.",
            ("The cat sleeps on the warm windowsill.", "Le chat dort sur le rebord chaud de la fenêtre.",
             "Die Katze schläft auf der warmen Fensterbank.", "猫は暖かい窓辺で眠っています。")),
    Pitfall("Code",
            "Indentation, brackets and operators are tokens too; runs of spaces may or may not merge, "
            "depending on what the tokenizer saw in training.",
            ("def add(a, b):\n    return a + b", "for (int i = 0; i < n; i++) {}")),
)


def show_pitfalls(choice: ModelChoice) -> None:
    """Every pitfall, each sample with its chips, token count and a button to put it in the text box."""
    st.caption("Every sample is split live by the current model's tokenizer. Hover a box for its id and bytes.")
    for p, pitfall in enumerate(PITFALLS):
        with st.container(border=True):
            st.markdown(f"**{pitfall.title}**")
            st.caption(pitfall.lesson)
            cols = st.columns(2)
            for s, sample in enumerate(pitfall.samples):
                with cols[s % 2]:
                    _sample(choice, sample, PAGE.key(f"pitfall_{p}_{s}"))


def _sample(choice: ModelChoice, text: str, key: str) -> None:
    enc = encode(choice.tokenizer, text)
    st.markdown(chips_html(enc.ids, enc.tokens, choice.tokenizer), unsafe_allow_html=True)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f"{len(text):,} characters → **{len(enc):,} token{'' if len(enc) == 1 else 's'}**")
        st.button("Use this text", key=key, on_click=set_text, args=(text,), icon=":material/north:",
                  type="tertiary", help="Put this sample in the text box at the top of the page")
