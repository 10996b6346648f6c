"""The one bounded cache (ui/lru.py) behind the server models, their shared traces, a session's own traces and
its before/after comparisons: bytes and entries bounded, least recently used out first, safe across threads."""
from __future__ import annotations

import ast
import random
import threading
from pathlib import Path

from ui.lru import ByteLRU

ROOT = Path(__file__).resolve().parents[1]


def sized(max_bytes=None, max_entries=None) -> ByteLRU[str, bytes]:
    return ByteLRU(max_bytes, max_entries, size=len)


def test_the_byte_bound_lets_go_of_the_least_recently_used():
    c = sized(max_bytes=10)
    assert c.put("a", b"1234") == [] and c.put("b", b"1234") == []
    assert c.put("c", b"1234") == ["a"]  # 12 bytes > 10: the oldest goes
    assert list(c) == ["b", "c"] and c.nbytes == 8


def test_get_makes_an_entry_the_most_recently_used():
    c = sized(max_bytes=10)
    c.put("a", b"1234")
    c.put("b", b"1234")
    assert c.get("a") == b"1234"  # now b is the least recently used
    assert c.put("c", b"1234") == ["b"] and list(c) == ["a", "c"]
    assert c.get("missing") is None and c.get("missing", b"") == b""


def test_the_entry_bound():
    c = sized(max_entries=2)
    for key in "abcd":
        c.put(key, b"x")
    assert list(c) == ["c", "d"] and len(c) == 2 and "a" not in c and "d" in c


def test_the_newest_stays_even_alone_over_the_bound():
    c = sized(max_bytes=4)
    c.put("small", b"12")
    assert c.put("big", b"123456789") == ["small"]
    assert list(c) == ["big"] and c.nbytes == 9  # paid for and about to be used: not thrown away


def test_replacing_a_key_counts_its_bytes_once():
    c = sized(max_bytes=100)
    c.put("a", b"1" * 30)
    c.put("a", b"1" * 10)
    assert c.nbytes == 10 and len(c) == 1
    assert c.pop("a") == b"1" * 10 and c.nbytes == 0 and c.pop("a") is None


def test_given_sizes_and_making_room_before_a_load():
    c: ByteLRU[str, str] = ByteLRU(max_bytes=100, max_entries=2)
    c.put("gpt2", "model", nbytes=60)
    c.put("neo", "model", nbytes=30)
    assert c.make_room(20) == ["gpt2"]  # one more entry fits only once one goes; 30 + 20 bytes fit then
    assert list(c) == ["neo"] and c.make_room(50) == [] and c.make_room(80) == ["neo"] and len(c) == 0


def test_bounds_may_follow_a_setting():
    cap = [10]
    c = ByteLRU(lambda: cap[0], size=len)
    c.put("a", b"12345")
    c.put("b", b"12345")
    cap[0] = 6
    assert c.put("c", b"1") == ["a"] and c.nbytes == 6  # read at each insert


def test_values_and_clear():
    c = sized(max_entries=3)
    for key in "abc":
        c.put(key, key.encode())
    c.get("a")
    assert c.values() == [b"b", b"c", b"a"]
    c.clear()
    assert len(c) == 0 and c.nbytes == 0 and c.values() == []


def test_threads_never_break_the_bounds_or_the_byte_count():
    c = sized(max_bytes=1000, max_entries=20)
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            key = rng.randrange(50)
            if rng.random() < 0.5:
                c.put(key, b"x" * rng.randrange(1, 200))
            elif rng.random() < 0.9:
                c.get(key)
            else:
                c.pop(key)
            if len(c) > 20:
                errors.append(f"{len(c)} entries")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert c.nbytes == sum(len(v) for v in c.values()) <= 1000 and len(c) <= 20


def test_it_is_a_leaf_without_streamlit():
    tree = ast.parse((ROOT / "ui" / "lru.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.split(".")[0] in ("streamlit", "ui", "engine") for name in imported), imported
