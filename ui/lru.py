"""One bounded cache for the app's caches of big things: least recently used out first, within a byte bound and
an entry bound, safe to share between the threads of many sessions. No Streamlit: a leaf of ui/.

Its users: the server models' shared traces and the loaded server models themselves (ui/cache.py,
ui/models.py: process-wide, bounded by settings read at each insert), and one session's traces of its own
models and its before/after comparisons (kept in that session's state).

A bound may be a number or a function returning one, so a cache made at import time follows its settings.
The newest entry always stays, even alone over the byte bound: the caller refuses what is too big before it
computes it, and a result it has just paid for is not thrown away before it is used.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Bound = int | Callable[[], int] | None  # None: no bound of that kind


def _value(bound: Bound) -> int | None:
    return bound() if callable(bound) else bound


class ByteLRU(Generic[K, V]):
    """key -> value, each with its size in bytes (`size(value)`, or given to `put`), at most `max_bytes` together
    and at most `max_entries` of them; `get` makes an entry the most recently used."""

    def __init__(self, max_bytes: Bound = None, max_entries: Bound = None,
                 size: Callable[[V], int] = lambda _value: 0):
        self.max_bytes, self.max_entries, self.size = max_bytes, max_entries, size
        self._lock = threading.Lock()
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()  # oldest first
        self._bytes = 0

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return default
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: K, value: V, nbytes: int | None = None) -> list[K]:
        """Keep `value` as the most recently used; let go of the least recently used others until the bounds
        hold again. The keys let go of."""
        nbytes = self.size(value) if nbytes is None else nbytes
        with self._lock:
            self._drop(key)
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            return self._evict(0, 0, keep=1)

    def make_room(self, nbytes: int, entries: int = 1) -> list[K]:
        """Let go of the least recently used entries until `entries` more of `nbytes` together would fit (a
        model is let go before the next one loads, not after: both would be in memory at once). The keys."""
        with self._lock:
            return self._evict(nbytes, entries, keep=0)

    def pop(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            self._drop(key)
            return None if hit is None else hit[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by every entry together."""
        with self._lock:
            return self._bytes

    def values(self) -> list[V]:
        """The values, least recently used first (a copy: safe while other threads change the cache)."""
        with self._lock:
            return [v for v, _ in self._items.values()]

    def items(self) -> list[tuple[K, V]]:
        """(key, value) pairs, least recently used first, without using any (a copy, as `values`)."""
        with self._lock:
            return [(k, v) for k, (v, _) in self._items.items()]

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    # -- under the lock --------------------------------------------------------------------------------------

    def _drop(self, key: K) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old[1]

    def _evict(self, more_bytes: int, more_entries: int, keep: int) -> list[K]:
        """Pop the oldest while the bounds, with room for `more_*`, do not hold; the newest `keep` stay."""
        max_bytes, max_entries = _value(self.max_bytes), _value(self.max_entries)
        gone = []
        while len(self._items) > keep and (
                (max_entries is not None and len(self._items) + more_entries > max_entries)
                or (max_bytes is not None and self._bytes + more_bytes > max_bytes)):
            key, (_, nbytes) = self._items.popitem(last=False)
            self._bytes -= nbytes
            gone.append(key)
        return gone
