"""The room store (ui/room/store.py) against real databases: an SQLite file and, where PostgreSQL is installed,
a throwaway PostgreSQL cluster (tests/room_db.py). Every rule of the game is held by the database: one guess
per attendee per round, a full room, a closed round, the presenter's token, expiry; and nothing committed is
lost when the store is opened again."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from room_db import fresh_database, postgres_cluster
from ui.room import schema
from ui.room.schema import SchemaError, guesses, meta
from ui.room.store import RETENTION_S, RoomError, RoomStore, normal_code


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pg_socket():
    """A throwaway PostgreSQL cluster; skipped without one, unless GLASSBOX_REQUIRE_POSTGRES=1 (CI) fails it."""
    try:
        with postgres_cluster() as socket_dir:
            yield socket_dir
    except RuntimeError as e:
        if os.environ.get("GLASSBOX_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GLASSBOX_REQUIRE_POSTGRES=1 but {e}")
        pytest.skip(str(e))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rooms.db'}"
    return fresh_database(request.getfixturevalue("pg_socket"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(url, clock) -> RoomStore:
    s = RoomStore(url, clock)
    yield s
    s.engine.dispose()


def scored(token_id: int) -> tuple[float, int]:
    return -float(token_id), token_id  # a fake model: token k has log2 p = -k and rank k


def test_a_room_has_a_code_and_only_its_token_presents(store):
    room, token = store.create_room("glassbox-stories", 30, 12)
    assert normal_code(room.code) == room.code and store.room(room.code.lower().replace("-", " ")) == room
    assert store.is_presenter(room.id, token) and not store.is_presenter(room.id, token[:-1] + "x")
    assert not store.is_presenter(room.id, None) and not store.is_presenter(room.id, "")
    with pytest.raises(RoomError, match="Only the room's presenter"):
        store.open_round(room.id, "not-the-token", "Once upon a time")
    with pytest.raises(RoomError, match="Only the room's presenter"):
        store.open_round(room.id, None, "Once upon a time")
    other, other_token = store.create_room("glassbox-stories", 30, 12)
    with pytest.raises(RoomError, match="Only the room's presenter"):
        store.open_round(room.id, other_token, "Once upon a time")  # another room's presenter is an outsider
    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.rooms.c.presenter_hash)).scalars().all()
    assert token not in stored and other_token not in stored, "the token itself is never stored"
    assert store.room("NOPE-1") is None and store.room("") is None


def test_codes_are_read_in_any_spelling():
    assert normal_code("fox 42") == normal_code("Fox-42") == normal_code(" FOX42 ") == "FOX-42"
    assert normal_code("FOX-4") is normal_code("'; DROP TABLE x") is normal_code("") is None


def test_one_guess_per_attendee_per_round_changeable_until_close(store):
    room, token = store.create_room("m", 30, 12)
    ann, ann_label = store.join(room.id, "Ann")
    bob, bob_label = store.join(room.id, "")
    assert (ann_label, bob_label) == ("Ann", "Anonymous 2")
    assert store.join(room.id, "x" * 100)[1] == "x" * 24, "a name is cut to its column"
    r = store.open_round(room.id, token, "Once upon a time, there was a little")
    store.guess(room.id, r.id, ann, " girl", 7, "␣girl", 1)
    store.guess(room.id, r.id, ann, " boy", 9, "␣boy", 1)  # changed her mind
    store.guess(room.id, r.id, bob, " girl", 7, "␣girl", 1)
    live = store.live(room.id, ann)
    assert (live.attendees, live.answers, live.round.number, live.round.open) == (3, 2, 1, True)
    assert (live.mine.text, live.mine.token_id, live.mine.logprob) == (" boy", 9, None)
    with store.engine.connect() as conn, pytest.raises(IntegrityError):  # the database itself refuses a second
        conn.execute(insert(guesses).values(round_id=r.id, attendee_id=ann, text="x", token_id=1, token="x",
                                            n_tokens=1, at=0.0))
    store.close_round(room.id, token, r.id, scored, {"miss_bits": -12.0, "top": [[7, "␣girl", 0.5]]})
    with pytest.raises(RoomError, match="round has closed"):
        store.guess(room.id, r.id, ann, " cat", 3, "␣cat", 1)
    assert store.live(room.id, ann).mine.token_id == 9, "a refused change leaves the guess as it was"
    assert [(t.token, t.count, t.logprob, t.rank) for t in store.tally(r.id)] == [("␣girl", 1, -7.0, 7),
                                                                                ("␣boy", 1, -9.0, 9)]


def test_rounds_need_the_presenter_and_come_one_at_a_time(store):
    room, token = store.create_room("m", 30, 12)
    with pytest.raises(RoomError, match="needs a prompt"):
        store.open_round(room.id, token, "   ")
    first = store.open_round(room.id, token, "A")
    with pytest.raises(RoomError, match="Round 1 is still open"):
        store.open_round(room.id, token, "B")
    with pytest.raises(RoomError, match="Only the room's presenter"):
        store.close_round(room.id, "guess", first.id, scored, {})
    store.close_round(room.id, token, first.id, scored, {"miss_bits": -12.0})
    with pytest.raises(RoomError, match="not open"):
        store.close_round(room.id, token, first.id, scored, {})
    second = store.open_round(room.id, token, "B" * 5000)
    assert second.number == 2 and len(second.prompt) == 2000
    store.add_draw(room.id, token, first.id, {"id": 3, "token": "␣a", "temperature": 1.0})
    assert store.rounds(room.id)[0].draws == [{"id": 3, "token": "␣a", "temperature": 1.0}]


def test_a_guess_only_counts_in_its_own_room(store):
    room, token = store.create_room("m", 30, 12)
    other, other_token = store.create_room("m", 30, 12)
    me, _ = store.join(room.id, None)
    r = store.open_round(room.id, token, "A")
    theirs = store.open_round(other.id, other_token, "B")
    with pytest.raises(RoomError, match="not in this room"):
        store.guess(other.id, theirs.id, me, "x", 1, "x", 1)
    with pytest.raises(RoomError, match="round has closed"):
        store.guess(room.id, theirs.id, me, "x", 1, "x", 1)  # a round id of another room is no round here
    assert store.live(other.id).answers == 0 and store.live(room.id).answers == 0 and r.open


def test_a_full_room_admits_no_one_more(store):
    room, _ = store.create_room("m", 3, 12)
    for _ in range(3):
        store.join(room.id, None)
    with pytest.raises(RoomError, match=r"full \(3 attendees\)"):
        store.join(room.id, "late")
    assert store.live(room.id).attendees == 3


def test_the_cap_and_the_guesses_hold_under_thirty_at_once(store):
    room, token = store.create_room("m", 30, 12)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: _try_join(store, room.id, f"p{i}"), range(40)))
    joined = [a for a in outcomes if a is not None]
    assert len(joined) == 30 and outcomes.count(None) == 10
    r = store.open_round(room.id, token, "Once upon a time")
    with ThreadPoolExecutor(16) as pool:  # each guesses twice, both at once: the second replaces the first
        list(pool.map(lambda a: store.guess(room.id, r.id, a, " x", a % 5, f"t{a % 5}", 1), joined * 2))
    assert store.live(room.id).answers == 30
    assert sum(t.count for t in store.tally(r.id)) == 30
    assert sorted(s.label for s in store.standings(room.id)) == []  # nothing revealed yet
    store.close_round(room.id, token, r.id, scored, {"miss_bits": -12.0})
    board = store.standings(room.id)
    assert len(board) == 30 and all(s.answered == 1 for s in board)
    assert [s.total for s in board] == sorted((s.total for s in board), reverse=True)


def _try_join(store: RoomStore, room_id: int, name: str) -> int | None:
    try:
        return store.join(room_id, name)[0]
    except RoomError:
        return None


def test_a_closed_round_refuses_guesses_racing_it(store):
    """Guesses sent while the presenter closes: each is either counted and scored, or refused; never lost."""
    room, token = store.create_room("m", 50, 12)
    people = [store.join(room.id, None)[0] for _ in range(20)]
    r = store.open_round(room.id, token, "A")
    accepted, barrier = [], threading.Barrier(21)

    def send(a: int) -> None:
        barrier.wait()
        try:
            store.guess(room.id, r.id, a, "x", 1, "x", 1)
            accepted.append(a)
        except RoomError:
            pass

    threads = [threading.Thread(target=send, args=(a,)) for a in people]
    for t in threads:
        t.start()
    barrier.wait()
    store.close_round(room.id, token, r.id, scored, {"miss_bits": -12.0})
    for t in threads:
        t.join()
    board = {s.attendee_id: s for s in store.standings(room.id)}
    assert sum(t.count for t in store.tally(r.id)) == len(accepted)
    assert all(board[a].answered == 1 and board[a].total == -1.0 for a in accepted), "every counted guess scored"


def test_the_leaderboard_adds_rounds_and_charges_a_missed_one(store):
    room, token = store.create_room("m", 30, 12)
    ann, _ = store.join(room.id, "Ann")
    bob, _ = store.join(room.id, "Bob")
    idle, _ = store.join(room.id, None)
    for tokens in ((1, 4), (2, None)):
        r = store.open_round(room.id, token, "A")
        store.guess(room.id, r.id, ann, "a", tokens[0], "a", 1)
        if tokens[1] is not None:
            store.guess(room.id, r.id, bob, "b", tokens[1], "b", 1)
        store.close_round(room.id, token, r.id, scored, {"miss_bits": -12.0})
    board = store.standings(room.id)
    assert [(s.label, s.answered, s.top_hits, s.total) for s in board] == [
        ("Ann", 2, 1, -3.0), ("Bob", 1, 0, -16.0), ("Anonymous 3", 0, 0, -24.0)]
    rows = store.guesses_of(room.id)
    assert [(r["round"], r["attendee"], r["log2_p"], r["rank"]) for r in rows] == [
        (1, "Ann", -1.0, 1), (1, "Bob", -4.0, 4), (2, "Ann", -2.0, 2)]


def test_a_room_ends_when_it_expires_or_its_presenter_ends_it(store, clock):
    room, token = store.create_room("m", 30, 2)
    me, _ = store.join(room.id, None)
    r = store.open_round(room.id, token, "A")
    clock.now += 2 * 3600
    assert store.room(room.code).ended(clock.now)
    for action in (lambda: store.join(room.id, None), lambda: store.guess(room.id, r.id, me, "x", 1, "x", 1),
                   lambda: store.open_round(room.id, token, "B")):
        with pytest.raises(RoomError, match="room has ended"):
            action()
    second, token2 = store.create_room("m", 30, 12)
    store.open_round(second.id, token2, "A")
    store.end_room(second.id, token2)
    live = store.live(second.id)
    assert live.room.closed_at is not None and not live.round.open
    with pytest.raises(RoomError, match="room has ended"):
        store.join(second.id, None)
    clock.now += RETENTION_S + 13 * 3600  # a day after both ended: the next new room clears them away
    store.create_room("m", 30, 12)
    assert store.room(room.code) is None and store.room(second.code) is None


def test_the_poll_is_the_version_and_every_write_moves_it(store):
    room, token = store.create_room("m", 30, 12)
    seen = [store.poll(room.id)]
    me, _ = store.join(room.id, None)
    seen.append(store.poll(room.id))
    r = store.open_round(room.id, token, "A")
    seen.append(store.poll(room.id))
    store.guess(room.id, r.id, me, "x", 1, "x", 1)
    seen.append(store.poll(room.id))
    with pytest.raises(RoomError):
        store.open_round(room.id, token, "B")  # refused: rolled back, version included
    seen.append(store.poll(room.id))
    assert seen == [0, 1, 2, 3, 3] and store.poll(10**9) is None


def test_nothing_committed_is_lost_when_the_store_opens_again(url, clock):
    first = RoomStore(url, clock)
    room, token = first.create_room("m", 30, 12)
    people = [first.join(room.id, f"p{i}")[0] for i in range(5)]
    r = first.open_round(room.id, token, "A")
    for a in people:
        first.guess(room.id, r.id, a, "x", a, "x", 1)
    first.engine.dispose()
    again = RoomStore(url, clock)  # a restarted server
    assert again.live(room.id).answers == 5 and again.is_presenter(room.id, token)
    again.close_round(room.id, token, r.id, scored, {"miss_bits": -12.0})
    assert len(again.standings(room.id)) == 5
    again.engine.dispose()


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path):
    path = tmp_path / "deep" / "rooms.db"
    store = RoomStore(f"sqlite:///{path}")  # the data folder is made on first use
    store.create_room("m", 30, 12)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.engine.dispose()
    with sqlite3.connect(path) as raw:  # an ordinary client reads the same file
        assert raw.execute("SELECT value FROM glassbox_meta WHERE key = 'schema'").fetchone() == ("1",)


def test_the_schema_is_versioned(url):
    store = RoomStore(url)
    with store.engine.begin() as conn:
        assert conn.execute(select(meta.c.value).where(meta.c.key == "schema")).scalar() == "1"
        conn.execute(meta.update().values(value=str(schema.SCHEMA_VERSION + 1)))
    store.engine.dispose()
    with pytest.raises(SchemaError, match="newer Glassbox"):
        RoomStore(url)


def test_a_reveal_is_kept_as_it_was_given(store):
    room, token = store.create_room("m", 30, 12)
    r = store.open_round(room.id, token, "A")
    reveal = {"top": [[5, "␣<b>", 0.25]], "entropy_bits": 3.5, "miss_bits": -12.0}
    store.close_round(room.id, token, r.id, scored, reveal)
    assert store.live(room.id).round.reveal == json.loads(json.dumps(reveal))
