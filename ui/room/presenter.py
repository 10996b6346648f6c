"""The presenter's view of a room: the join block (code, link, QR code) sized for the projector, the round's
controls (pick a prompt, open, close and reveal, draw), the reveal, the leaderboard, the export, and ending
the room.

Every control calls the store with the presenter's token, which only this session holds; the store checks it
(in constant time, against its hash) on every write, so a control drawn by mistake in another session would
still be refused. The model runs here only: pre-warming the prompts' traces when the room opens, the prompt's
trace when a round opens, the reveal and the draws (ui.room.game).
"""
from __future__ import annotations

import html
import time
from urllib.parse import urlencode, urlsplit

import streamlit as st

from engine.inspect.guessing import BadGuess

from ..errors import error_boundary
from ..state import presenting
from ..text import md
from .game import (CURRENT, FIRST_PROMPT, TYPED, draw_token, prewarm, prompt_of, prompt_sources, qr_svg, reveal_round,
                   rounds_csv, source_label)
from .state import (LINK_BASE, PAGE, PROMPT_FROM, PROMPT_TYPED, TEMPERATURE, TO_TOP, WARMED, Member, allowed,
                    current_live, leave, notify, store)
from .store import Live, RoomError
from .views import leaderboard, live_strip, phase, prompt_block, results

QR_PX = {True: 340, False: 230}  # the QR code's width, in presenter mode or not
LOCAL = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
TO_TOP_JS = """(() => { let n = 0; const t = setInterval(() => {
  const el = document.querySelector('.gb-room-code');
  if (el) { el.scrollIntoView({block: 'start'}); clearInterval(t); } else if (++n > 40) clearInterval(t);
}, 100); })();"""


def own_link_base() -> str:
    """This page's address as the presenter's browser has it (st.context.url), without the query."""
    parts = urlsplit(st.context.url or "http://localhost:8501/Room")
    scheme = parts.scheme if parts.scheme in ("http", "https") else "http"
    return f"{scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/Room"


def join_link(code: str) -> str:
    base = (st.session_state.get(LINK_BASE) or "").strip() or own_link_base()
    return f"{base}?{urlencode({'room': code})}"


def join_block(code: str) -> None:
    """The code, the QR code and the link, large in presenter mode."""
    if st.session_state.pop(TO_TOP, False):  # the button that opened the room sat lower on the page
        st.html(f"<script>{TO_TOP_JS}</script>", unsafe_allow_javascript=True)
    link = join_link(code)
    st.html(f'<div class="gb-room-code" aria-label="Room code">{html.escape(code)}</div>')
    st.image(qr_svg(link), width=QR_PX[presenting()], caption="Scan to join")
    st.html(f'<div class="gb-room-link">{html.escape(link)}</div>')
    if (urlsplit(link).hostname or "") in LOCAL:
        st.caption("This link names this computer (localhost), which attendees' devices cannot reach. Give the "
                   "address the room's network knows below (e.g. http://192.168.1.20:8501/Room).")
    with st.expander("The address attendees use"):
        st.text_input("Join page address", key=LINK_BASE, placeholder=own_link_base(), max_chars=300,
                      help="The QR code and the link use this address; empty: the one your browser shows.")


def view(me: Member) -> None:
    live = current_live(me)
    room = live.room
    if room.ended(time.time()):
        st.info(f"Room {room.code} has ended: no more joins or guesses. The results stay here for a day.",
                icon=":material/event_busy:")
        _final(me, live)
        return
    if st.session_state.get(WARMED) != room.id:
        with st.spinner("Getting the model ready for the rounds…"), error_boundary("pre-warming the prompts"):
            prewarm(room, [prompt_of(s) for s in prompt_sources()[:-1]])
        st.session_state[WARMED] = room.id
    left, right = st.columns([1, 1] if presenting() else [2, 3], gap="large")
    with left:
        join_block(room.code)
    with right:
        st.caption(f"Playing against **{md(room.model)}**. Attendees join at the link; each round they guess "
                   "the token that comes after your prompt.")
        live_strip(me, phase(live))
        with error_boundary("drawing the round's controls"):
            controls(me, live)
    r = live.round
    if r is not None and not r.open:
        with error_boundary("showing the round's results"):
            results(r)
            if r.reveal is not None:
                draw_controls(me, r.id, r.prompt)
    _final(me, live)


def controls(me: Member, live: Live) -> None:
    r = live.round
    if r is not None and r.open:
        st.markdown(f"**Round {r.number} is open.** The room sees:")
        prompt_block(r.prompt)
        st.button(f"Close round {r.number} and reveal", type="primary", icon=":material/how_to_vote:",
                  on_click=_close, args=(me, r.id, r.prompt), key=PAGE.key(f"close.{r.number}"))
        return
    number = (r.number if r else 0) + 1
    sources = prompt_sources()
    if st.session_state.get(PROMPT_FROM) not in sources:  # the tour's prompt: made for guessing a next word
        st.session_state[PROMPT_FROM] = FIRST_PROMPT if FIRST_PROMPT in sources else CURRENT
    st.selectbox("Prompt for the next round", sources, key=PROMPT_FROM, format_func=source_label,
                 help="The text in the box on every page, one of the tour's texts, or one you type. The room "
                      "guesses the token that comes right after it.")
    if st.session_state.get(PROMPT_FROM) == TYPED:
        st.text_area("Your prompt", key=PROMPT_TYPED, max_chars=2000, height=90)
    prompt = prompt_of(st.session_state.get(PROMPT_FROM) or CURRENT,
                            st.session_state.get(PROMPT_TYPED) or "")
    if prompt.strip():
        prompt_block(prompt)
    st.button(f"Open round {number}", type="primary", icon=":material/play_arrow:", disabled=not prompt.strip(),
              on_click=_open_round, args=(me, prompt), key=PAGE.key(f"open_round.{number}"))


def draw_controls(me: Member, round_id: int, prompt: str) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key=TEMPERATURE, width=260,
                  help="0 always draws the model's top token; 1 draws by its own odds; above 1 flattens them.")
        st.button("Draw from the model", icon=":material/casino:", on_click=_draw, args=(me, round_id, prompt),
                  key=PAGE.key("draw"))


def _final(me: Member, live: Live) -> None:
    leaderboard(me.room_id)
    with st.container(horizontal=True):
        st.download_button("Download every round (CSV)", lambda: rounds_csv(
            store().guesses_of(me.room_id), store().rounds(me.room_id)), file_name=f"glassbox-room-{me.code}.csv",
            mime="text/csv", on_click="ignore", icon=":material/download:", key=PAGE.key("csv"))
        st.download_button("Save the presenter key", lambda: me.token or "", file_name=f"glassbox-{me.code}-key.txt",
                           mime="text/plain", on_click="ignore", icon=":material/key:", key=PAGE.key("key"),
                           help="With the room's code, the key takes the room back from another tab or after a "
                                "restart. Keep it to yourself: it is never shown on screen.")
        if not live.room.ended(time.time()):
            st.button("End the room", icon=":material/stop_circle:", on_click=_end, args=(me,), key=PAGE.key("end"))
        st.button("Leave this room", icon=":material/logout:", on_click=leave, key=PAGE.key("leave"), type="tertiary")


# --- callbacks: each one write, with the token ----------------------------------------------------------------

def _open_round(me: Member, prompt: str) -> None:
    if not allowed("round"):
        notify("warning", "Too many clicks: wait a moment.")
        return
    try:
        prewarm(store().room_by_id(me.room_id), [prompt])  # the reveal will be a cache hit
        store().open_round(me.room_id, me.token, prompt)
    except RoomError as e:
        notify("error", str(e))


def _close(me: Member, round_id: int, prompt: str) -> None:
    try:
        odds, said = reveal_round(store().room_by_id(me.room_id), prompt)
        store().close_round(me.room_id, me.token, round_id, odds.score, said)
    except (RoomError, BadGuess) as e:
        notify("error", str(e))


def _draw(me: Member, round_id: int, prompt: str) -> None:
    if not allowed("round"):
        notify("warning", "Too many draws in a minute: wait a moment.")
        return
    try:
        temperature = float(st.session_state.get(TEMPERATURE, 1.0))
        store().add_draw(me.room_id, me.token, round_id, draw_token(store().room_by_id(me.room_id), prompt,
                                                                          temperature))
    except RoomError as e:
        notify("error", str(e))


def _end(me: Member) -> None:
    try:
        store().end_room(me.room_id, me.token)
    except RoomError as e:
        notify("error", str(e))

