"""An attendee's view of a room: who they are in it, the open round's prompt and their guess (shown as the
tokens it is read as), then the reveal with their own score, and where they stand.

Nothing another attendee typed is shown here except aggregated (the reveal counts guesses by token) or under
the name its author chose (the leaderboard). Every guess is counted by the database before the page says so.
"""
from __future__ import annotations

import time

import streamlit as st

from engine.inspect.guessing import BadGuess

from ..errors import error_boundary
from ..text import md
from .game import read as read_guess
from .state import GUESS_BOX, GUESS_FORM, PAGE, Member, allowed, current_live, leave, notify, store
from .store import Live, RoomError, Round
from .views import guess_chips, leaderboard, live_strip, phase, prompt_block, results


def view(me: Member) -> None:
    live = current_live(me)
    room = live.room
    st.markdown(f"Room **{room.code}** · you are **{md(me.label)}**")
    if room.ended(time.time()):
        st.info("This room has ended. Thank you for playing!", icon=":material/celebration:")
    else:
        live_strip(me, phase(live))
    r = live.round
    if r is None:
        st.info("Waiting for the presenter to open the first round…", icon=":material/hourglass_top:")
    elif r.open and not room.ended(time.time()):
        with error_boundary("showing the round"):
            guess_panel(me, live, r)
    else:
        with error_boundary("showing the round's results"):
            results(r, live.mine)
        if not room.ended(time.time()):
            st.caption("The next round starts when the presenter opens it; this page follows by itself.")
    with error_boundary("showing the leaderboard"):
        leaderboard(me.room_id, me)
    st.button("Leave this room", icon=":material/logout:", on_click=leave, key=PAGE.key("leave"), type="tertiary")


def guess_panel(me: Member, live: Live, r: Round) -> None:
    st.subheader(f"Round {r.number}: what comes next?")
    prompt_block(r.prompt)
    key = f"{GUESS_BOX}.{r.number}"  # a fresh box each round
    with st.form(f"{GUESS_FORM}.{r.number}", border=False, enter_to_submit=True):
        st.text_input("Your guess: one word or token", key=key, max_chars=40, placeholder="e.g. girl",
                      help="Read the way the model's tokenizer would split it after the prompt: a word gets the "
                           "space before it.")
        st.form_submit_button("Send my guess" if live.mine is None else "Change my guess", type="primary",
                              icon=":material/send:", on_click=_send, args=(me, live.room.model, r, key))
    if live.mine is not None:
        st.markdown(f"**Counted.** Your guess: **{md(live.mine.text.strip())}**, read as these tokens:")
        guess_chips(live.room.model, live.mine)
        st.caption("You can change it until the presenter closes the round.")


def _send(me: Member, model: str, r: Round, key: str) -> None:
    if not allowed("guess"):
        notify("warning", "Too many guesses in a minute: wait a moment, then send it again.")
        return
    try:
        guess = read_guess(model, r.prompt, st.session_state.get(key) or "")
        store().guess(me.room_id, r.id, me.attendee_id, guess.text, guess.token_id, guess.token, len(guess.ids))
    except (BadGuess, RoomError) as e:
        notify("warning", str(e))
