"""The Workshop room wing: a presenter opens a room, attendees join by its code, link or QR code, and each round
everyone guesses the next token of a prompt before the model's own odds are revealed beside their guesses.

- state: the page's declaration (PAGE, with the `room` link setting), session keys, the store, who this
  session is in a room, rate limits
- schema, store: the database (SQLite or PostgreSQL through SQLAlchemy Core) and every rule of the game; no
  Streamlit, so the tests and the benchmark use them directly
- game: the model's side (prompts, pre-warming, the reveal, live draws, the export, the QR code)
- figures: the room's guesses beside the model's probabilities
- views: the lobby, the live strip (the one part that polls), a revealed round, the leaderboard
- presenter, attendee: the two roles' views
"""
from __future__ import annotations

import streamlit as st

from ..errors import error_boundary
from ..state import presenting
from . import attendee, presenter
from .state import PAGE, WANTED, attendee as attending, presenter as presenting_room, show_notice
from .views import lobby, styles


def room_page(title: str) -> None:
    """The page: the role this session has in a room, or the lobby. A presenter's room on a projector leaves the
    title out: the room's code is the headline, and the code, the QR code and the link fit a 1280x720 screen."""
    me = presenting_room() or attending()
    wanted = st.session_state.get(WANTED)
    if not (me is not None and me.token is not None and presenting() and wanted in (None, me.code)):
        st.title(title)
    styles()
    show_notice()
    with error_boundary("showing the room"):
        if me is None or (wanted and wanted != me.code):
            lobby()
        elif me.token is not None:
            presenter.view(me)
        else:
            attendee.view(me)


__all__ = ["PAGE", "room_page"]
