"""The Workshop room page: its declaration, its session keys, the room store, and who this session is in a room.

A session is in at most one room, either as its presenter (it holds the presenter's token, which only this
session's memory ever has) or as an attendee (it holds its attendee id). Both live in this session's state,
which the browser cannot write. The link parameter `room` (`?room=FOX-42`) names a room to join; it never
grants the presenter's controls.

The store is one per process and database (`st.cache_resource`): a connection pool shared by every session.
What a session last loaded from it (`Live`) is kept with the version it had, so a poll that finds the same
version reads nothing more.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import streamlit as st

from engine import settings

from ..models import ROOT
from ..page import Page
from ..view import Context, Setting, Unusable
from .store import Live, RoomStore, normal_code

DEFAULT_DB = ROOT / ".cache" / "rooms.db"
POLL_S = 1.0  # how often a room's view asks the database whether anything changed
# action -> (how many, per how many seconds), per session
LIMITS = {"join": (10, 60.0), "guess": (30, 60.0), "open": (5, 3600.0), "present": (5, 300.0), "round": (60, 60.0)}


def _read_room(ctx: Context) -> str | None:
    me = member()
    return me.code if me is not None else st.session_state.get(WANTED)


def _apply_room(ctx: Context, raw: str) -> None:
    code = normal_code(raw)
    if code is None:
        raise Unusable("not a room code (they look like FOX-42)")
    st.session_state[WANTED] = code


PAGE = Page("room", "Workshop room", "pages/10_Room.py", ":material/groups:",
            "Guess the next token with the whole room, then see the model's own odds beside your guesses.",
            settings=(Setting("room", _read_room, _apply_room),), favicon="🙋")

# Session keys (S) and widget keys (W), all named by PAGE.
PRESENTER = PAGE.key("presenter")  # S: Member: the room this session presents (with its token)
ATTENDEE = PAGE.key("attendee")  # S: Member: the room this session attends
WANTED = PAGE.key("wanted")  # S: a room code from a link or the code box, not joined yet
LIVE = PAGE.key("live")  # S: the last Live loaded (its version says whether it is current)
TIMES = PAGE.key("times")  # S: {action: deque of times}, for the rate limits
TO_TOP = PAGE.key("to_top")  # S: a room just opened: bring its code to the top of the window once
WARMED = PAGE.key("warmed")  # S: the room whose prompts this session has pre-warmed
NOTICE = PAGE.key("notice")  # S: (kind, message) said once after a button's callback
CODE_BOX, NAME_BOX, JOIN = PAGE.key("code_box"), PAGE.key("name"), PAGE.key("join")  # W: the lobby
GUESS_BOX, GUESS_FORM = PAGE.key("guess"), PAGE.key("guess_form")  # W: an attendee's guess
PROMPT_FROM, PROMPT_TYPED = PAGE.key("prompt_from"), PAGE.key("prompt_typed")  # W: the presenter's prompt
TEMPERATURE = PAGE.key("temperature")  # W: the presenter's live draws
KEY_CODE, KEY_BOX = PAGE.key("key_code"), PAGE.key("key_box")  # W: taking a room back with its presenter key
LINK_BASE = PAGE.key("link_base")  # W: the address attendees use, when the presenter's own is not it


@dataclass(frozen=True)
class Member:
    room_id: int
    code: str
    label: str  # how the room shows this session: "Presenter", a chosen name, "Anonymous 7"
    attendee_id: int | None = None  # None for the presenter
    token: str | None = None  # the presenter's token; None for an attendee (repr hides nothing: never drawn)

    def __repr__(self) -> str:  # a stray st.write of the state must not show the token
        return f"Member(room={self.code}, {self.label})"


def database_url() -> str:
    return settings.current().room_db or f"sqlite:///{DEFAULT_DB}"


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RoomStore:
    return RoomStore(url)


def store() -> RoomStore:
    """This process's store for the configured database (opened, and its schema made, on first use)."""
    return _store(database_url())


def presenter() -> Member | None:
    return st.session_state.get(PRESENTER)


def attendee() -> Member | None:
    return st.session_state.get(ATTENDEE)


def member() -> Member | None:
    """The room this session is in, as its presenter first."""
    return presenter() or attendee()


def leave() -> None:
    for key in (PRESENTER, ATTENDEE, LIVE, WANTED):
        st.session_state.pop(key, None)


def current_live(me: Member) -> Live:
    """The room as it is now: the kept Live when the version has not moved (one primary-key read), else a
    fresh load."""
    kept: Live | None = st.session_state.get(LIVE)
    if kept is not None and kept.room.id == me.room_id and store().poll(me.room_id) == kept.version:
        return kept
    live = store().live(me.room_id, me.attendee_id)
    st.session_state[LIVE] = live
    return live


def allowed(action: str) -> bool:
    """Count one `action` against this session's limit; False (and nothing counted) when over it."""
    n, per = LIMITS[action]
    times = st.session_state.setdefault(TIMES, {}).setdefault(action, deque())
    now = time.monotonic()
    while times and now - times[0] > per:
        times.popleft()
    if len(times) >= n:
        return False
    times.append(now)
    return True


def notify(kind: str, message: str) -> None:
    """Say `message` once on the next run (from a button's callback, which draws nothing itself)."""
    st.session_state[NOTICE] = (kind, message)


def show_notice() -> None:
    kind, message = st.session_state.pop(NOTICE, (None, None))
    if message:
        {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)
