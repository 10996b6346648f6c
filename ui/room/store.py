"""The room store: rooms, attendees, rounds and guesses, kept in a real database (ui.room.schema), with every
rule of the game enforced where the data lives. No Streamlit here: the page, the tests and the benchmark all
go through this one API.

- Every write is one transaction; its first statement bumps the room's `version` (and so, on PostgreSQL,
  locks the room's row: writes to one room queue). A refused write rolls back whole and raises RoomError.
- One guess per attendee per round, changeable until the round closes: a unique constraint on (round,
  attendee), written as an upsert.
- A room admits at most its `max_attendees`, ends at `expires_at` or when its presenter ends it, and only the
  presenter's token (compared in constant time against its hash; the token itself is never stored) opens,
  closes and reveals rounds.
- `poll` is one primary-key read of the version, for a view that refreshes every second; `live` and
  `results` load what changed.

The model never runs here: a round's reveal is computed by the presenter's session and handed in as a scoring
function and a summary (ui.room.game).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from .schema import MAX_GUESS, MAX_MODEL, MAX_NAME, MAX_TOKEN, WRITE, attendees, guesses, open_engine, rooms, rounds

CODE_WORDS = ("ANT", "BAT", "BEE", "CAT", "COD", "COW", "DOG", "EEL", "ELK", "EMU", "FOX", "GNU", "HEN", "JAY",
              "KOI", "OWL", "PIG", "RAM", "RAT", "YAK", "BEAR", "CRAB", "CROW", "DEER", "DOVE", "DUCK", "FROG",
              "GOAT", "HARE", "LARK", "LION", "LYNX", "MOLE", "MOTH", "NEWT", "SEAL", "SWAN", "TOAD", "WOLF", "WREN")
CODE = re.compile(r"^([A-Z]{3,4})-?([0-9]{2})$")
RETENTION_S = 24 * 3600  # an ended room's data is deleted this long after it expired
MAX_PROMPT = 2_000  # characters of a round's prompt
MAX_DRAWS = 50  # live draws kept per round
TOKEN_BYTES = 24  # the presenter's token: 192 random bits


class RoomError(ValueError):
    """A refused action; the message is one plain sentence for the page (it quotes nothing a user typed)."""


@dataclass(frozen=True)
class Room:
    id: int
    code: str
    model: str
    created_at: float
    expires_at: float
    closed_at: float | None
    max_attendees: int

    def ended(self, now: float) -> bool:
        return self.closed_at is not None or now >= self.expires_at


@dataclass(frozen=True)
class Round:
    id: int
    number: int
    prompt: str
    state: str  # "open" or "closed"
    reveal: dict[str, Any] | None  # set when the presenter revealed it
    draws: list[dict[str, Any]]  # the model's live draws: {"id", "token", "temperature"}

    @property
    def open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True)
class Mine:
    """An attendee's own guess in a round."""
    text: str
    token_id: int
    token: str
    logprob: float | None
    rank: int | None


@dataclass(frozen=True)
class Live:
    """What a room's view shows every second: cheap to load, loaded only when the version moved."""
    version: int
    room: Room
    attendees: int
    round: Round | None  # the latest round
    answers: int  # guesses in it
    mine: Mine | None  # this attendee's guess in it


@dataclass(frozen=True)
class Tally:
    """One guessed token in a revealed round: how many picked it and what the model thinks of it."""
    token_id: int
    token: str
    count: int
    logprob: float | None
    rank: int | None


@dataclass(frozen=True)
class Standing:
    """One attendee on the leaderboard, over the room's revealed rounds."""
    attendee_id: int
    label: str  # chosen name, or "Anonymous 7"
    answered: int
    top_hits: int  # rounds where they picked the model's top token
    total: float  # sum of log2 p, a missed round scoring a knows-nothing guess (-log2 vocabulary)


def label(seq: int, name: str | None) -> str:
    return name or f"Anonymous {seq}"


def normal_code(raw: str) -> str | None:
    """A room code as typed ("fox 42", "Fox-42") in its one form ("FOX-42"), or None if it is not one."""
    m = CODE.match(re.sub(r"[^A-Z0-9-]", "", raw.strip().upper().replace(" ", "-"))[:8])
    return f"{m.group(1)}-{m.group(2)}" if m else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class RoomStore:
    """All reads and writes of rooms. Thread-safe: each call takes its own connection from the pool."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.engine: Engine = open_engine(url)
        self.clock = clock  # tests move time forward

    # -- transactions ----------------------------------------------------------------------------------------

    @contextmanager
    def _write(self, room_id: int | None = None) -> Iterator[Connection]:
        """A write transaction; with `room_id`, its first statement bumps that room's version (the row lock)."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            if room_id is not None:
                bumped = conn.execute(update(rooms).where(rooms.c.id == room_id)
                                      .values(version=rooms.c.version + 1)).rowcount
                if not bumped:
                    raise RoomError("There is no such room (it may have ended and been cleared away).")
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():  # one consistent snapshot
            yield conn

    # -- rooms -----------------------------------------------------------------------------------------------

    def create_room(self, model: str, max_attendees: int, hours: float) -> tuple[Room, str]:
        """A new room with a fresh code; returns it and the presenter's token (shown to no one else)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        with self._write() as conn:  # first, clear away rooms that ended more than a day ago
            old = select(rooms.c.id).where(rooms.c.expires_at < now - RETENTION_S).scalar_subquery()
            old_rounds = select(rounds.c.id).where(rounds.c.room_id.in_(old)).scalar_subquery()
            conn.execute(delete(guesses).where(guesses.c.round_id.in_(old_rounds)))
            conn.execute(delete(rounds).where(rounds.c.room_id.in_(old)))
            conn.execute(delete(attendees).where(attendees.c.room_id.in_(old)))
            conn.execute(delete(rooms).where(rooms.c.expires_at < now - RETENTION_S))
        for _ in range(50):
            code = f"{secrets.choice(CODE_WORDS)}-{10 + secrets.randbelow(90)}"
            try:
                with self._write() as conn:
                    room_id = conn.execute(insert(rooms).values(
                        code=code, presenter_hash=token_hash(token), model=model[:MAX_MODEL], created_at=now,
                        expires_at=now + hours * 3600, max_attendees=max_attendees, version=0)).inserted_primary_key[0]
            except IntegrityError:
                continue  # the code is taken: draw another
            return self.room_by_id(room_id), token
        raise RoomError("No free room code was found; try again in a moment.")

    def room(self, code: str) -> Room | None:
        """The room with this code (any spelling normal_code reads), ended or not; None if there is none."""
        code = normal_code(code) or ""
        with self._read() as conn:
            row = conn.execute(select(rooms).where(rooms.c.code == code)).first()
        return _room(row) if row else None

    def room_by_id(self, room_id: int) -> Room:
        with self._read() as conn:
            row = conn.execute(select(rooms).where(rooms.c.id == room_id)).first()
        if row is None:
            raise RoomError("There is no such room (it may have ended and been cleared away).")
        return _room(row)

    def is_presenter(self, room_id: int, token: str | None) -> bool:
        """Does `token` open this room's presenter controls? Compared in constant time."""
        with self._read() as conn:
            stored = conn.execute(select(rooms.c.presenter_hash).where(rooms.c.id == room_id)).scalar()
        return bool(stored and token) and hmac.compare_digest(stored, token_hash(token))

    def _presenter(self, conn: Connection, room_id: int, token: str | None) -> Room:
        row = conn.execute(select(rooms).where(rooms.c.id == room_id)).first()
        if not (row and token and hmac.compare_digest(row.presenter_hash, token_hash(token))):
            raise RoomError("Only the room's presenter can do that.")
        room = _room(row)
        if room.ended(self.clock()):
            raise RoomError("This room has ended.")
        return room

    def end_room(self, room_id: int, token: str | None) -> None:
        """The presenter ends the room: no more joins or guesses; an open round closes without a reveal."""
        with self._write(room_id) as conn:
            self._presenter(conn, room_id, token)
            now = self.clock()
            conn.execute(update(rounds).where(and_(rounds.c.room_id == room_id, rounds.c.state == "open"))
                         .values(state="closed", closed_at=now))
            conn.execute(update(rooms).where(rooms.c.id == room_id).values(closed_at=now))

    # -- attendees -------------------------------------------------------------------------------------------

    def join(self, room_id: int, name: str | None) -> tuple[int, str]:
        """A new attendee (anonymous when `name` is empty); returns their id and how the room shows them."""
        name = (name or "").strip()[:MAX_NAME] or None
        with self._write(room_id) as conn:
            room = _room(conn.execute(select(rooms).where(rooms.c.id == room_id)).first())
            if room.ended(self.clock()):
                raise RoomError("This room has ended.")
            count, top = conn.execute(select(func.count(), func.coalesce(func.max(attendees.c.seq), 0))
                                      .where(attendees.c.room_id == room_id)).one()
            if count >= room.max_attendees:
                raise RoomError(f"This room is full ({room.max_attendees} attendees).")
            attendee_id = conn.execute(insert(attendees).values(
                room_id=room_id, seq=top + 1, name=name, joined_at=self.clock())).inserted_primary_key[0]
        return attendee_id, label(top + 1, name)

    # -- rounds ----------------------------------------------------------------------------------------------

    def open_round(self, room_id: int, token: str | None, prompt: str) -> Round:
        """The presenter opens the next round on `prompt`; the previous one must be closed."""
        prompt = prompt[:MAX_PROMPT]
        if not prompt.strip():
            raise RoomError("A round needs a prompt: the text whose next token the room guesses.")
        with self._write(room_id) as conn:
            self._presenter(conn, room_id, token)
            last = conn.execute(select(rounds.c.number, rounds.c.state).where(rounds.c.room_id == room_id)
                                .order_by(rounds.c.number.desc()).limit(1)).first()
            if last is not None and last.state == "open":
                raise RoomError(f"Round {last.number} is still open: close it first.")
            number = (last.number if last else 0) + 1
            round_id = conn.execute(insert(rounds).values(
                room_id=room_id, number=number, prompt=prompt, state="open", opened_at=self.clock(),
                draws="[]")).inserted_primary_key[0]
        return Round(round_id, number, prompt, "open", None, [])

    def guess(self, room_id: int, round_id: int, attendee_id: int, text: str, token_id: int, token: str,
              n_tokens: int) -> None:
        """An attendee's guess in an open round: a new one, or a change to theirs."""
        with self._write(room_id) as conn:
            room = _room(conn.execute(select(rooms).where(rooms.c.id == room_id)).first())
            if room.ended(self.clock()):
                raise RoomError("This room has ended.")
            state = conn.execute(select(rounds.c.state).where(and_(rounds.c.id == round_id,
                                                                   rounds.c.room_id == room_id))).scalar()
            if state != "open":
                raise RoomError("This round has closed: your guess was not counted.")
            member = conn.execute(select(attendees.c.id).where(and_(attendees.c.id == attendee_id,
                                                                    attendees.c.room_id == room_id))).scalar()
            if member is None:
                raise RoomError("You are not in this room: join it first.")
            values = dict(text=text[:MAX_GUESS], token_id=token_id, token=token[:MAX_TOKEN], n_tokens=n_tokens,
                          at=self.clock())
            upsert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(guesses)
            conn.execute(upsert.values(round_id=round_id, attendee_id=attendee_id, **values).on_conflict_do_update(
                index_elements=[guesses.c.round_id, guesses.c.attendee_id], set_=values))

    def close_round(self, room_id: int, token: str | None, round_id: int,
                    score: Callable[[int], tuple[float, int]], reveal: dict[str, Any]) -> None:
        """The presenter closes the open round and reveals it: every guessed token scored by `score(token_id)
        -> (log2 p, rank)`, and `reveal` (the model's side: top tokens, entropy, ...) kept with the round.
        Guesses that arrive after this transaction are refused; none that came before is missed."""
        with self._write(room_id) as conn:
            self._presenter(conn, room_id, token)
            state = conn.execute(select(rounds.c.state).where(and_(rounds.c.id == round_id,
                                                                   rounds.c.room_id == room_id))).scalar()
            if state != "open":
                raise RoomError("That round is not open.")
            ids = conn.execute(select(guesses.c.token_id).where(guesses.c.round_id == round_id).distinct()).scalars()
            for token_id in list(ids):
                logprob, rank = score(token_id)
                conn.execute(update(guesses).where(and_(guesses.c.round_id == round_id, guesses.c.token_id == token_id))
                             .values(logprob=logprob, rank=rank))
            conn.execute(update(rounds).where(rounds.c.id == round_id).values(
                state="closed", closed_at=self.clock(), reveal=json.dumps(reveal)))

    def add_draw(self, room_id: int, token: str | None, round_id: int, draw: dict[str, Any]) -> None:
        """Keep one of the model's live draws with the round (the room sees it)."""
        with self._write(room_id) as conn:
            self._presenter(conn, room_id, token)
            raw = conn.execute(select(rounds.c.draws).where(and_(rounds.c.id == round_id,
                                                                 rounds.c.room_id == room_id))).scalar()
            if raw is None:
                raise RoomError("There is no such round.")
            draws = (json.loads(raw) + [draw])[-MAX_DRAWS:]
            conn.execute(update(rounds).where(rounds.c.id == round_id).values(draws=json.dumps(draws)))

    # -- reading ---------------------------------------------------------------------------------------------

    def poll(self, room_id: int) -> int | None:
        """The room's version: one primary-key read. None if the room is gone."""
        with self.engine.connect() as conn:
            return conn.execute(select(rooms.c.version).where(rooms.c.id == room_id)).scalar()

    def live(self, room_id: int, attendee_id: int | None = None) -> Live:
        with self._read() as conn:
            row = conn.execute(select(rooms).where(rooms.c.id == room_id)).first()
            if row is None:
                raise RoomError("There is no such room (it may have ended and been cleared away).")
            count = conn.execute(select(func.count()).where(attendees.c.room_id == room_id)).scalar()
            r = conn.execute(select(rounds).where(rounds.c.room_id == room_id)
                             .order_by(rounds.c.number.desc()).limit(1)).first()
            answers, mine = 0, None
            if r is not None:
                answers = conn.execute(select(func.count()).where(guesses.c.round_id == r.id)).scalar()
                if attendee_id is not None:
                    g = conn.execute(select(guesses).where(and_(guesses.c.round_id == r.id,
                                                                guesses.c.attendee_id == attendee_id))).first()
                    mine = Mine(g.text, g.token_id, g.token, g.logprob, g.rank) if g else None
        return Live(row.version, _room(row), count, _round(r) if r is not None else None, answers, mine)

    def tally(self, round_id: int) -> list[Tally]:
        """A round's guesses by token, most picked first."""
        with self._read() as conn:
            rows = conn.execute(select(guesses.c.token_id, func.min(guesses.c.token), func.count(),
                                       func.max(guesses.c.logprob), func.min(guesses.c.rank))
                                .where(guesses.c.round_id == round_id).group_by(guesses.c.token_id)
                                .order_by(func.count().desc(), guesses.c.token_id)).all()
        return [Tally(*row) for row in rows]

    def standings(self, room_id: int) -> list[Standing]:
        """The leaderboard over the room's revealed rounds, best first."""
        with self._read() as conn:
            revealed = conn.execute(select(rounds.c.id, rounds.c.reveal).where(and_(
                rounds.c.room_id == room_id, rounds.c.reveal.is_not(None)))).all()
            if not revealed:
                return []
            ids = [r.id for r in revealed]
            per = (select(guesses.c.attendee_id, func.count().label("n"), func.sum(guesses.c.logprob).label("total"),
                          func.sum(case((guesses.c.rank == 1, 1), else_=0)).label("hits"))
                   .where(guesses.c.round_id.in_(ids)).group_by(guesses.c.attendee_id).subquery())
            rows = conn.execute(select(attendees.c.id, attendees.c.seq, attendees.c.name, per.c.n, per.c.total,
                                       per.c.hits).select_from(attendees.outerjoin(per, per.c.attendee_id ==
                                                                                    attendees.c.id))
                                .where(attendees.c.room_id == room_id)).all()
        miss = min(json.loads(r.reveal).get("miss_bits", -20.0) for r in revealed)
        board = [Standing(r.id, label(r.seq, r.name), r.n or 0, r.hits or 0,
                          (r.total or 0.0) + (len(ids) - (r.n or 0)) * miss) for r in rows]
        return sorted(board, key=lambda s: (-s.total, -s.top_hits, s.attendee_id))

    def rounds(self, room_id: int) -> list[Round]:
        with self._read() as conn:
            rows = conn.execute(select(rounds).where(rounds.c.room_id == room_id).order_by(rounds.c.number)).all()
        return [_round(r) for r in rows]

    def guesses_of(self, room_id: int) -> list[dict[str, Any]]:
        """Every guess in the room, for the presenter's export: round, attendee, guess, token, score."""
        with self._read() as conn:
            rows = conn.execute(
                select(rounds.c.number, rounds.c.prompt, attendees.c.seq, attendees.c.name, guesses.c.text,
                       guesses.c.token, guesses.c.token_id, guesses.c.logprob, guesses.c.rank)
                .select_from(guesses.join(rounds, rounds.c.id == guesses.c.round_id)
                             .join(attendees, attendees.c.id == guesses.c.attendee_id))
                .where(rounds.c.room_id == room_id).order_by(rounds.c.number, attendees.c.seq)).all()
        return [dict(round=r.number, prompt=r.prompt, attendee=label(r.seq, r.name), guess=r.text, token=r.token,
                     token_id=r.token_id, log2_p=r.logprob, rank=r.rank) for r in rows]


def _room(row) -> Room:
    return Room(row.id, row.code, row.model, row.created_at, row.expires_at, row.closed_at, row.max_attendees)


def _round(row) -> Round:
    return Round(row.id, row.number, row.prompt, row.state, json.loads(row.reveal) if row.reveal else None,
                 json.loads(row.draws or "[]"))
