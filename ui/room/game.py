"""The model's side of the game, run only in the presenter's session (and, for reading a guess, the attendee's
tokenizer): prompts, pre-warming their traces, the reveal, live draws, and the export.

The model runs when the presenter acts (opens a room, opens a round, reveals, draws), never in a poll: every
number the room sees is computed once here and kept with the round in the database.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd
import streamlit as st
import torch

from engine import display_token
from engine.inspect.guessing import Guess, Odds, draw, read_guess

from ..cache import get_trace
from ..examples import texts
from ..models import ModelChoice, shared_model
from ..state import MAX_CHARS, get_text
from ..text import csv_text
from .store import Room, Round, Tally

CURRENT = "The text in the box"  # the first prompt source; then the named texts, then TYPED
TYPED = "Type a prompt"
FIRST_PROMPT = "prompt"  # the named text a room starts with ("Once upon a time, there was a little")
TOP_TOKENS = 10  # the model's top tokens every reveal shows


def prompt_sources() -> list[str]:
    return [CURRENT, *texts(), TYPED]


def source_label(source: str) -> str:
    return source if source in (CURRENT, TYPED) else f"The tour's text “{source}”"


def prompt_of(source: str, typed: str = "") -> str:
    """The prompt a source names (the session's text, a named text, or what the presenter typed)."""
    if source == CURRENT:
        return get_text()[:MAX_CHARS]
    if source == TYPED:
        return typed[:MAX_CHARS]
    return texts().get(source, "")


def odds(room: Room, prompt: str) -> tuple[ModelChoice, Odds, torch.Tensor]:
    """The room's model, its odds for the token after `prompt`, and the raw logits they came from."""
    choice = shared_model(room.model)
    logits = get_trace(prompt, choice).logits[-1]  # [vocab]: the prediction after the prompt's last token
    return choice, Odds.from_logits(logits), logits


def prewarm(room: Room, prompts: list[str]) -> None:
    """Run the room's model on each prompt now, so the rounds' reveals are cache hits (ui.cache keeps them)."""
    choice = shared_model(room.model)
    for prompt in prompts:
        if prompt.strip():
            get_trace(prompt, choice)


def reveal_round(room: Room, prompt: str) -> tuple[Odds, dict]:
    """What the model says about the round: its top tokens, its entropy, what a knows-nothing guess scores."""
    choice, o, _ = odds(room, prompt)
    top = [[i, t, p] for i, t, p in o.top(choice.tokenizer, TOP_TOKENS)]
    return o, {"top": top, "entropy_bits": o.entropy_bits, "miss_bits": o.miss_bits, "vocab": o.vocab_size,
               "model": choice.name}


def draw_token(room: Room, prompt: str, temperature: float) -> dict:
    """One live draw from the model after `prompt` at `temperature`."""
    choice, _, logits = odds(room, prompt)
    token_id = draw(logits, temperature)
    return {"id": token_id, "token": display_token(choice.tokenizer, token_id), "temperature": temperature}


def read(model: str, prompt: str, raw: str) -> Guess:
    """An attendee's guess read by the room model's tokenizer (no model run); raises BadGuess."""
    return read_guess(shared_model(model).tokenizer, prompt, raw)


@dataclass(frozen=True)
class Bar:
    """One token of a reveal's chart: the room's share beside the model's probability."""
    token_id: int
    token: str
    count: int
    share: float  # of the room's guesses
    prob: float  # under the model
    rank: int | None


def bars(rnd: Round, tally: list[Tally]) -> list[Bar]:
    """The model's top tokens and every guessed token, each once, ordered by the model's probability."""
    answers = sum(t.count for t in tally) or 1
    out: dict[int, Bar] = {}
    for i, (token_id, token, prob) in enumerate(rnd.reveal["top"]):
        out[token_id] = Bar(token_id, token, 0, 0.0, prob, i + 1)
    for t in tally:
        prob = 2.0 ** t.logprob if t.logprob is not None else 0.0
        out[t.token_id] = Bar(t.token_id, t.token, t.count, t.count / answers, prob, t.rank)
    return sorted(out.values(), key=lambda b: (-b.prob, -b.count, b.token_id))


@dataclass(frozen=True)
class Summary:
    answers: int
    top_token: str
    top_share: float  # of the room that picked the model's top token
    room_mean: float | None  # the room's average log2 p
    model_mean: float  # minus the model's entropy: what it averages guessing by its own odds


def summary(rnd: Round, tally: list[Tally]) -> Summary:
    answers = sum(t.count for t in tally)
    top_id, top_token, _ = rnd.reveal["top"][0]
    hits = sum(t.count for t in tally if t.token_id == top_id)
    scored = [(t.count, t.logprob) for t in tally if t.logprob is not None]
    mean = sum(c * lp for c, lp in scored) / answers if answers and scored else None
    return Summary(answers, top_token, hits / answers if answers else 0.0, mean, -rnd.reveal["entropy_bits"])


def rounds_csv(guesses: list[dict], rounds: list[Round]) -> str:
    """Every guess of every round, with the model's top token and entropy for that round (cells made safe)."""
    by_number = {r.number: r for r in rounds}
    rows = []
    for g in guesses:
        rev = by_number[g["round"]].reveal or {}
        top = rev.get("top") or [[None, "", None]]
        rows.append({"round": g["round"], "prompt": csv_text(g["prompt"]), "attendee": csv_text(g["attendee"]),
                     "guess": csv_text(g["guess"]), "token": csv_text(g["token"]), "token_id": g["token_id"],
                     "log2_p": g["log2_p"], "rank": g["rank"], "model_top_token": csv_text(top[0][1]),
                     "model_top_p": top[0][2], "model_entropy_bits": rev.get("entropy_bits")})
    columns = ["round", "prompt", "attendee", "guess", "token", "token_id", "log2_p", "rank", "model_top_token",
               "model_top_p", "model_entropy_bits"]
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(buffer, index=False)
    return buffer.getvalue()


@st.cache_data(max_entries=64, show_spinner=False)
def qr_svg(link: str) -> str:
    """The join link as a QR code, drawn offline (segno) as an SVG that scales to any size."""
    import segno

    return segno.make(link, error="m").svg_inline(scale=1, border=2, dark="#000", light="#fff", omitsize=True)
