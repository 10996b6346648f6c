"""The Workshop room page run headless with Streamlit's AppTest: each AppTest is its own session, and they share
one room database (an SQLite file per test), as a presenter and attendees share a server.

A presenter opens a room and rounds; attendees join by the link (`?room=CODE`), guess, change their guess, and
see the reveal; the histogram's counts are the guesses; the presenter's controls never reach an attendee;
the key takes a room back; what attendees type is escaped and capped; the limits hold."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from ui.room.game import rounds_csv
from ui.room.state import LIMITS, store

TIMEOUT = 120
PROMPT = "Once upon a time, there was a little"


@pytest.fixture(autouse=True)
def room_db(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_ROOM_DB", f"sqlite:///{tmp_path / 'rooms.db'}")


def session(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/10_Room.py"), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in at.button]}"
    return found[0]


def submit(at: AppTest, label: str):
    found = [b for b in at.get("form_submit_button") if b.label == label]
    assert found, f"no form button {label!r}"
    return found[0]


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return found[0]


def open_room(**params: str) -> tuple[AppTest, str]:
    presenter = session(**params)
    button(presenter, "Open a room").click().run()
    clean(presenter)
    return presenter, presenter.session_state["room.presenter"].code


def join(code: str, name: str = "", check: bool = True) -> AppTest:
    at = session(room=code)
    at.text_input(key="room.name").input(name)
    submit(at, "Join").click().run()
    if check:
        clean(at)
    return at


def open_round(presenter: AppTest, prompt: str = PROMPT) -> None:
    presenter.selectbox(key="room.prompt_from").select("Type a prompt").run()
    presenter.text_area(key="room.prompt_typed").input(prompt).run()
    button(presenter, "Open round " + str(_next_round(presenter))).click().run()
    clean(presenter)


def _next_round(at: AppTest) -> int:
    labels = [b.label for b in at.button if b.label.startswith("Open round ")]
    return int(labels[0].rsplit(" ", 1)[1])


def guess(at: AppTest, text: str) -> AppTest:
    at.run()  # the round opened since this session last drew
    box = [t for t in at.text_input if t.key and t.key.startswith("room.guess.")]
    assert box, "no guess box: is a round open?"
    box[0].input(text)
    labels = [b.label for b in at.get("form_submit_button")]
    submit(at, "Change my guess" if "Change my guess" in labels else "Send my guess").click().run()
    clean(at)
    return at


def chart_counts(at: AppTest) -> dict[str, int]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    room = spec["data"][0]
    return {label: count for label, (count, _) in zip(room["x"], room["customdata"]) if count}


def test_a_three_round_game_end_to_end():
    presenter, code = open_room()
    links = [h.proto.body for h in presenter.get("html") if "gb-room-link" in h.proto.body]
    assert links and f"Room?room={code}" in links[0], "the join link names the room"
    assert presenter.get("image"), "the QR code is drawn"
    ann, bob, cat = join(code, "Ann"), join(code), join(code, "Cat")
    assert "you are **Anonymous 2**" in " ".join(m.value for m in bob.markdown)
    presenter.run()
    assert metric(presenter, "In the room") == "3"
    picks = [("girl", "boy", "girl"), ("dog", "dog", "cat"), ("ball", "tree", "ball")]
    for number, (a, b, c) in enumerate(picks, start=1):
        open_round(presenter)
        guess(ann, a), guess(bob, b), guess(cat, "zebra"), guess(cat, c)  # Cat changes her mind
        presenter.run()
        assert metric(presenter, f"Answers in round {number}") == "3"
        button(presenter, f"Close round {number} and reveal").click().run()
        clean(presenter)
        counts = chart_counts(presenter)
        want: dict[str, int] = {}
        for word in (a, b, c):
            want["␣" + word] = want.get("␣" + word, 0) + 1
        assert counts == want, "the histogram's counts are the guesses (Cat's first guess replaced)"
        button(presenter, "Draw from the model").click().run()
        clean(presenter)
        assert "The model drew" in " ".join(m.value for m in presenter.markdown)
        ann.run()
        clean(ann)
        said = " ".join(m.value for m in ann.markdown)
        assert f"Your guess ␣{a}" in said.replace("\\", "") and "rank" in said
        assert chart_counts(ann) == want, "attendees see the same reveal"
    board = [df for df in presenter.dataframe if "total (bits)" in df.value.columns]
    assert board and sorted(board[0].value["name"]) == ["Ann", "Anonymous 2", "Cat"]
    assert list(board[0].value["rounds answered"]) == [3, 3, 3]
    room_id = presenter.session_state["room.presenter"].room_id  # the export is built on click: its rows
    rows = rounds_csv(store().guesses_of(room_id), store().rounds(room_id)).splitlines()
    assert len(rows) == 1 + 9 and rows[0].startswith("round,prompt,attendee,guess,token")


def test_an_attendee_never_gets_the_presenters_controls():
    presenter, code = open_room()
    attendee = join(code, "Mallory")
    attendee_labels = {b.label for b in attendee.button} | {b.label for b in attendee.get("form_submit_button")}
    assert not any(label.startswith(("Open round", "Close round", "End the room", "Draw")) for label in
                   attendee_labels)
    assert "room.presenter" not in attendee.session_state
    again = session(room=code, present="1")  # a link with presenter mode is still only a join link
    assert "room.presenter" not in again.session_state and submit(again, "Join")
    open_round(presenter)
    taken = session()
    taken.text_input(key="room.key_code").input(code)
    taken.text_input(key="room.key_box").input("not-the-key")
    button(taken, "Present this room").click().run()
    assert "do not open a room" in " ".join(e.value for e in taken.error)
    assert "room.presenter" not in taken.session_state
    taken.text_input(key="room.key_box").input(presenter.session_state["room.presenter"].token)
    button(taken, "Present this room").click().run()
    clean(taken)
    assert taken.session_state["room.presenter"].code == code
    kept = taken.session_state["room.key_box"] if "room.key_box" in taken.session_state else ""
    assert kept == "", "the key leaves the box at once"
    assert button(taken, "Close round 1 and reveal"), "the key takes the room back, open round and all"


def test_what_attendees_type_is_escaped_and_capped():
    presenter, code = open_room()
    hostile = "<img src=x onerror=1>**b"  # as long as the box takes (the store cuts longer ones)
    mallory = join(code, hostile)
    assert mallory.session_state["room.attendee"].label == hostile
    said = " ".join(m.value for m in mallory.markdown)
    assert "\\<img" in said and not re.search(r"(?<!\\)<img", said), "the name is escaped in Markdown"
    open_round(presenter)
    guess(mallory, "<b>" + "x" * 37)  # as long as the box takes
    assert mallory.session_state["room.live"].mine.text == "<b>" + "x" * 37
    presenter.run()
    button(presenter, "Close round 1 and reveal").click().run()
    clean(presenter)
    spec = json.loads(presenter.get("plotly_chart")[0].proto.spec)
    assert "<b>" not in json.dumps(spec["data"][0]["x"]), "token text is escaped for Plotly"
    board = [df for df in presenter.dataframe if "total (bits)" in df.value.columns][0].value
    assert list(board["name"]) == [hostile], "a table cell shows the name as plain text"


def test_bad_guesses_links_and_codes_are_one_line_each():
    presenter, code = open_room()
    ann = join(code, "Ann")
    open_round(presenter)
    guess(ann, "   \u200b ")
    assert "Type a word or a token first." in " ".join(w.value for w in ann.warning)
    assert ann.session_state["room.live"].mine is None
    tampered = session(room="'; DROP TABLE rooms; --")
    clean(tampered)
    assert "not a room code" in " ".join(i.value for i in tampered.info)
    wrong = session(room="YAK-99" if code != "YAK-99" else "EMU-98")
    submit(wrong, "Join").click().run()
    assert "no open room with that code" in " ".join(e.value for e in wrong.error)


def test_limits_hold_per_session(monkeypatch):
    monkeypatch.setitem(LIMITS, "guess", (3, 60.0))
    monkeypatch.setenv("GLASSBOX_ROOM_MAX_ATTENDEES", "2")
    presenter, code = open_room()
    ann, _ = join(code, "Ann"), join(code, "Bob")
    late = join(code, "Late", check=False)
    assert "This room is full (2 attendees)." in " ".join(e.value for e in late.error)
    open_round(presenter)
    for word in ("a", "b", "c", "d"):
        guess(ann, word)
    assert "Too many guesses in a minute" in " ".join(w.value for w in ann.warning)
    assert ann.session_state["room.live"].mine.text == " c", "the guess over the limit was not sent"


def test_an_ended_room_takes_no_one_and_keeps_its_results():
    presenter, code = open_room()
    ann = join(code, "Ann")
    open_round(presenter)
    guess(ann, "girl")
    button(presenter, "End the room").click().run()
    clean(presenter)
    assert "has ended" in " ".join(i.value for i in presenter.info)
    ann.run()
    assert "This room has ended" in " ".join(i.value for i in ann.info)
    late = session(room=code)
    submit(late, "Join").click().run()
    assert "no open room with that code" in " ".join(e.value for e in late.error)


def _recording(monkeypatch, module) -> list[str]:
    """Every text `module` asks ui.cache for a trace of (the real trace is still made)."""
    asked: list[str] = []
    real = module.get_trace

    def get_trace(text, choice=None):
        asked.append(text)
        return real(text, choice)
    monkeypatch.setattr(module, "get_trace", get_trace)
    return asked


def test_opening_a_room_and_a_round_prewarms_their_traces(monkeypatch):
    from ui.examples import texts
    from ui.room import game
    from ui.state import DEFAULT_TEXT

    asked = _recording(monkeypatch, game)
    presenter, _ = open_room()
    assert set(asked) >= {*texts().values(), DEFAULT_TEXT}, "every prompt the room offers, before anyone joins"
    asked.clear()
    open_round(presenter, "A prompt no one has run yet")
    assert asked[0] == "A prompt no one has run yet", "the round's prompt runs when the round opens"


def test_starting_the_tour_in_presenter_mode_prewarms_every_step(monkeypatch):
    from ui.state import DEFAULT_TEXT
    from ui.workshop import tour

    asked = _recording(monkeypatch, tour)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    button(at, "Take the guided tour").click().run()
    assert asked == [], "outside presenter mode the tour starts at once"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["present"] = "1"
    at.run()
    button(at, "Take the guided tour").click().run()
    clean(at)
    step_texts = {dict(s.params)["text"] for s in tour.steps() if "text" in dict(s.params)}
    assert set(asked) == step_texts | {DEFAULT_TEXT}
