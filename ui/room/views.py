"""What presenter and attendees both see: the lobby (join a room, open one, take one back), the live strip
that refreshes every second, a revealed round, and the leaderboard.

The live strip is the only part that polls: a fragment that reruns every POLL_S seconds, reads the room's
version (one primary-key read) and, when something the page draws has changed (a round opened, closed or drew,
the room ended), reruns the whole page once. Between changes it redraws two numbers from memory. No model
work is ever done in it.
"""
from __future__ import annotations

import html
import math
import time

import pandas as pd
import streamlit as st

from engine import settings
from engine.inspect.guessing import clean
from engine.model.tokenizer import encode

from ..chips import chips_html
from ..models import current_model, selected_name, shared_model
from ..plots import plot_config
from ..state import presenting
from ..terms import define
from ..text import md
from .game import bars as bars_of, summary as summary_of
from .figures import guesses_figure
from .state import (ATTENDEE, CODE_BOX, JOIN, KEY_BOX, KEY_CODE, LIVE, NAME_BOX, PAGE, POLL_S, PRESENTER, TO_TOP,
                    WANTED, Member, allowed, current_live, notify, store)
from .schema import MAX_NAME
from .store import Live, Mine, RoomError, Round, Standing, normal_code

LEADERS = 10  # rows of the leaderboard on screen (the export has everyone)
CSS = """
.gb-room-code { font: 700 2.4rem ui-monospace, Menlo, Consolas, monospace; letter-spacing: 0.08em; }
.gb-room-link { font: 1rem ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.gb-room-qr svg { width: 100%; height: auto; display: block; }
.gb-room-prompt { font-size: 1.35rem; line-height: 1.5; border-left: 4px solid #0072B2; padding: 0.3rem 0.8rem;
                  white-space: pre-wrap; max-height: 9em; overflow-y: auto; }
.gb-room-blank { border-bottom: 3px solid #D55E00; display: inline-block; width: 4em; }
"""
PRESENTER_CSS = """
.gb-room-code { font-size: 3.6rem; line-height: 1.1; }
.gb-room-link { font-size: 1.25rem; }
"""


def phase(live: Live) -> tuple:
    """What the page draws from a Live besides the numbers the strip shows: a change reruns the page."""
    r = live.round
    return (live.room.ended(time.time()), r.number if r else 0, r.state if r else "", len(r.draws) if r else 0,
            live.mine.text if live.mine else None)


def styles() -> None:
    st.html(f"<style>{CSS}{PRESENTER_CSS if presenting() else ''}</style>")


@st.fragment(run_every=POLL_S)
def live_strip(me: Member, drawn: tuple) -> None:
    """The numbers that move while a round is open, for everyone in the room; the page reruns when more moved."""
    try:
        live = current_live(me)
    except RoomError:
        st.session_state.pop(LIVE, None)
        st.rerun()
    if phase(live) != drawn:
        st.rerun()  # the whole page: a round opened or closed, a draw, the room ended
    r = live.round
    with st.container(key=PAGE.key("live_strip"), horizontal=True, gap="large"):
        st.metric("In the room", f"{live.attendees}")
        if r is not None and r.open:
            st.metric(f"Answers in round {r.number}", f"{live.answers}")


# --- the lobby ------------------------------------------------------------------------------------------------

def lobby() -> None:
    """Join a room (by its code, or the link's), or open one as its presenter."""
    wanted = st.session_state.get(WANTED)
    me = st.session_state.get(ATTENDEE) or st.session_state.get(PRESENTER)
    if me is not None and wanted and wanted != me.code:
        st.info(f"You are in room {me.code}; joining {wanted} leaves it.", icon=":material/swap_horiz:")
    st.subheader("Join a room")
    if wanted and CODE_BOX not in st.session_state:
        st.session_state[CODE_BOX] = wanted
    with st.form(JOIN, border=True, enter_to_submit=True):
        st.text_input("Room code", key=CODE_BOX, max_chars=8, placeholder="FOX-42")
        st.text_input("Your name on the leaderboard (optional)", key=NAME_BOX, max_chars=24,
                      placeholder="Leave empty to stay anonymous")
        st.form_submit_button("Join", type="primary", icon=":material/login:", on_click=_join)
    st.subheader("Present a room")
    st.markdown("Open a room for your audience: they join with a code, a link or a QR code, and each round "
                "everyone guesses the next token of a prompt you pick. Then the room's guesses appear beside the "
                "model's own probabilities.")
    st.button("Open a room", icon=":material/co_present:", on_click=_open_room, key=PAGE.key("open"))
    with st.expander("Take back a room you opened (another tab, or after a restart)"):
        st.text_input("Room code", key=KEY_CODE, max_chars=8)
        st.text_input("Presenter key (the file you saved)", key=KEY_BOX, type="password", max_chars=64)
        st.button("Present this room", on_click=_take_back, key=PAGE.key("take_back"))


def _join() -> None:
    if not allowed("join"):
        notify("warning", "Too many tries in a minute: wait a moment, then join again.")
        return
    code = normal_code(st.session_state.get(CODE_BOX) or "")
    room = store().room(code) if code else None
    if room is None or room.ended(time.time()):
        notify("error", "There is no open room with that code: check it on the presenter's screen.")
        return
    try:
        attendee_id, label = store().join(room.id, clean(st.session_state.get(NAME_BOX) or "", MAX_NAME))
    except RoomError as e:
        notify("error", str(e))
        return
    st.session_state.pop(PRESENTER, None)
    st.session_state[ATTENDEE] = Member(room.id, room.code, label, attendee_id=attendee_id)
    st.session_state.pop(WANTED, None)
    st.session_state.pop(LIVE, None)


def _open_room() -> None:
    if not allowed("open"):
        notify("warning", "This session has opened several rooms in the last hour: use one of them.")
        return
    choice = current_model()
    if not choice.shared:
        notify("error", "A room plays against a model every attendee's session can load: pick the built-in model "
                        "or a server model in the sidebar, then open the room.")
        return
    s = settings.current()
    try:
        room, token = store().create_room(selected_name(), s.room_max_attendees, s.room_hours)
    except RoomError as e:
        notify("error", str(e))
        return
    st.session_state.pop(ATTENDEE, None)
    st.session_state[PRESENTER] = Member(room.id, room.code, "Presenter", token=token)
    st.session_state.pop(WANTED, None)
    st.session_state.pop(LIVE, None)
    st.session_state[TO_TOP] = True


def _take_back() -> None:
    if not allowed("present"):
        notify("warning", "Too many tries: wait a few minutes.")
        return
    code = normal_code(st.session_state.get(KEY_CODE) or "")
    token = (st.session_state.get(KEY_BOX) or "").strip()
    st.session_state[KEY_BOX] = ""  # the key leaves the widget at once
    room = store().room(code) if code else None
    if room is None or not store().is_presenter(room.id, token):
        notify("error", "That code and key do not open a room.")
        return
    st.session_state.pop(ATTENDEE, None)
    st.session_state[PRESENTER] = Member(room.id, room.code, "Presenter", token=token)
    st.session_state.pop(WANTED, None)
    st.session_state.pop(LIVE, None)


# --- a round --------------------------------------------------------------------------------------------------

def prompt_block(prompt: str) -> None:
    """The round's prompt with a blank where the next token goes (the prompt's end, if it is long)."""
    shown = prompt if len(prompt) <= 400 else "…" + prompt[-400:]
    st.markdown(f'<div class="gb-room-prompt">{html.escape(shown)}<span class="gb-room-blank"></span></div>',
                unsafe_allow_html=True)


def guess_chips(room_model: str, mine: Mine) -> None:
    """An attendee's own guess as tokens (the first is what is scored)."""
    tokenizer = shared_model(room_model).tokenizer
    enc = encode(tokenizer, mine.text)
    st.markdown(chips_html(enc.ids, enc.tokens, tokenizer), unsafe_allow_html=True)
    if len(enc.ids) > 1:
        st.caption(f"Your guess is {len(enc.ids)} tokens; the model predicts one at a time, so its first, "
                   f"{md(mine.token)}, is what counts.")


def results(rnd: Round, mine: Mine | None = None) -> None:
    """A revealed round: the room beside the model, how the room did, the model's live draws."""
    if rnd.reveal is None:
        st.info(f"Round {rnd.number} closed without a reveal.")
        return
    tally = store().tally(rnd.id)
    s = summary_of(rnd, tally)
    st.subheader(f"Round {rnd.number}: the room and the model")
    prompt_block(rnd.prompt)
    with st.container(horizontal=True, gap="large", key=PAGE.key(f"summary.{rnd.number}")):
        st.metric("Picked the top token", f"{s.top_share:.0%}" if s.answers else "–", width="content",
                  help=f"The share of the room's {_plural(s.answers, 'guess')} that were the model's most likely "
                       f"token, {md(s.top_token)}.")
        st.metric("The room's average", f"{s.room_mean:.1f} bits" if s.room_mean is not None else "–",
                  width="content", help=define("log-probability", "The log-probability of the room's guesses "
                                               "under the model, averaged. Closer to 0 is better."))
        st.metric("The model's own average", f"{s.model_mean:.1f} bits", width="content", help=define(
            "entropy", "The average log-probability the model would score if it guessed by drawing from its own "
                       "distribution: minus its entropy."))
    if mine is not None and mine.logprob is not None:
        st.markdown(f"**Your guess {md(mine.token)}**: the model gives it {fmt_prob(2 ** mine.logprob)}, rank "
                    f"{mine.rank:,}; log-probability {mine.logprob:.2f} bits.")
    bars = bars_of(rnd, tally)
    st.plotly_chart(guesses_figure(bars, s.answers), config=plot_config("room-guesses"),
                    key=PAGE.key(f"chart.{rnd.number}"))
    table = pd.DataFrame([{"token": b.token, "guesses": b.count, "model probability": b.prob,
                           "rank under the model": b.rank, "log2 p (bits)": _log2(b.prob)} for b in bars])
    st.dataframe(table, hide_index=True, key=PAGE.key(f"table.{rnd.number}"),
                 column_config={"model probability": st.column_config.NumberColumn(format="percent")})
    if rnd.draws:
        tokens = ", ".join(f"{md(d['token'])} (T={d['temperature']:g})" for d in rnd.draws[-12:])
        st.markdown(f"**The model drew**: {tokens}")
        st.caption("The model guesses too: each draw is one token sampled from its distribution at that "
                   "temperature, so the same prompt gives different tokens.")


def fmt_prob(p: float) -> str:
    """A probability for people: '23.4%', '0.15%', '3.2e-05' (a tiny one keeps its digits)."""
    return f"{p:.1%}" if p >= 0.01 else f"{p:.2%}" if p >= 0.0001 else f"{p:.1e}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def _log2(p: float) -> float | None:
    return math.log2(p) if p > 0 else None


def leaderboard(room_id: int, me: Member | None = None) -> list[Standing]:
    board = store().standings(room_id)
    if not board:
        return board
    st.subheader("Leaderboard")
    st.caption("Each round scores the log-probability of your guess under the model (in bits, 0 is best); a "
               "round without a guess scores what a guess that knows nothing would. Highest total first.")
    rows = [{"place": i + 1, "name": s.label, "rounds answered": s.answered, "model's top token": s.top_hits,
             "total (bits)": round(s.total, 2)} for i, s in enumerate(board[:LEADERS])]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=PAGE.key("leaders"))
    if me is not None and me.attendee_id is not None:
        place = next((i for i, s in enumerate(board) if s.attendee_id == me.attendee_id), None)
        if place is not None:
            st.markdown(f"**You are {place + 1} of {len(board)}**, with {board[place].total:.2f} bits.")
    return board
