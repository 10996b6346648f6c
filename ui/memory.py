"""What the visitors' sessions hold in memory, one server-wide budget over it, and giving it back when they end.

Every session's own models (trained, tuned, uploaded) and its traces of them live in its session state
(ui/models.py, ui/cache.py), each bounded per session. Sessions add up: four tabs each holding two traces of
an uploaded model at the caps held 2 GB (bench/bench_memory.py). So:

- One budget for all of them together, GLASSBOX_SESSIONS_MB. Before a session keeps a new model or trace,
  `make_room` lets go of other sessions' traces (sessions whose tab has closed first, then the longest idle;
  never a model, which may be someone's only copy of an hour's training), and refuses in one sentence when
  that is not enough. A trace let go is computed again if its session asks for it.
- Giving back. Streamlit keeps a closed tab's session for server.disconnectedSessionTTL (120 s), so that a
  dropped connection resumes it, and then forgets it without shutting it down: its stored-sessions cache only
  drops the entry at its next write (streamlit/runtime/memory_session_storage.py), so the last sessions to close
  keep their state until another tab closes, and their uploaded files and download files stay for good
  (`AppSession.shutdown` is what would remove them, and it is not called). The reaper, a daemon thread that
  looks every REAP_S, ends what Streamlit will no longer resume: it empties the session's state, removes its
  uploads and download files, collects garbage and hands the freed pages back to the system (`trim`: glibc's
  malloc_trim, which returns what PyTorch's freed tensors leave in glibc's arenas).

Each session's holdings are a `Visitor` kept in its own session state (so they go with it) and known here
through weak references only: a session that Streamlit frees is forgotten by itself.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit import config
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import settings
from engine.model.cost import size_text

from .errors import Refused
from .lru import ByteLRU

LOG = logging.getLogger("glassbox.memory")
KEY = "memory.visitor"  # session key: this session's Visitor
SESSIONS_ENV = settings.env_name("sessions_mb")
REAP_S = 5.0  # how often the reaper looks at the sessions
GRACE_S = 15.0  # past Streamlit's TTL before a session counts as ended: the reaper looks only every REAP_S


@dataclass(eq=False)
class Visitor:
    """One browser session's holdings: what the budget counts and the reaper frees."""
    session_id: str
    # Its st.session_state (a SafeSessionState), to empty when the session has ended; its fragments (they close
    # over what they draw: a trace, a model), likewise. Not in the repr: the state holds a typed key.
    state: Any = field(repr=False)
    fragments: Any = field(default=None, repr=False)
    last_run: float = field(default_factory=time.monotonic)  # its last script run (idle = long ago)
    last_active: float = field(default_factory=time.monotonic)  # the last time its tab was seen connected
    traces: ByteLRU | None = field(default=None, repr=False)  # its traces of its own models (ui/cache.py)
    models: dict | None = field(default=None, repr=False)  # its own models by name (ui/models.py)

    def model_bytes(self) -> int:
        return sum(weights_bytes(c.model) for c in list((self.models or {}).values()))

    def trace_bytes(self) -> int:
        return self.traces.nbytes if self.traces is not None else 0

    def held(self) -> int:
        return self.model_bytes() + self.trace_bytes()


_VISITORS: weakref.WeakSet[Visitor] = weakref.WeakSet()  # every session's, while its state lives
_LOCK = threading.RLock()
_REAPER: threading.Thread | None = None


def weights_bytes(model) -> int:
    """Bytes of a model's weights (a tied weight counted once, as `parameters()` lists it)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def budget_bytes() -> int:
    return settings.current().sessions_bytes


def visitor() -> Visitor | None:
    """This session's Visitor, made on its first run and marked as just used (None outside a page). ui.frame
    calls it on every run; it also starts the reaper, once per process."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    v = st.session_state.get(KEY)
    if not isinstance(v, Visitor):
        v = Visitor(ctx.session_id, ctx.session_state)
        st.session_state[KEY] = v
        with _LOCK:
            _VISITORS.add(v)
    v.state, v.fragments = ctx.session_state, getattr(ctx, "fragment_storage", None)  # this run's
    v.last_run = v.last_active = time.monotonic()
    _start_reaper()
    return v


def holdings() -> Visitor | None:
    """This session's Visitor as it is (visitor() made it on this run), or None outside a page."""
    v = st.session_state.get(KEY) if get_script_run_ctx() is not None else None
    return v if isinstance(v, Visitor) else visitor()


def visitors() -> list[Visitor]:
    with _LOCK:
        return list(_VISITORS)


def held_bytes() -> int:
    """What every session's own models and traces hold together."""
    return sum(v.held() for v in visitors())


def _connected(v: Visitor) -> bool:
    """Its tab is connected now. Where Streamlit cannot say, yes: a session is never ended on a guess."""
    try:
        return bool(Runtime.instance().is_active_session(v.session_id)) if Runtime.exists() else True
    except Exception:  # noqa: BLE001 - Streamlit's runtime API, which may change
        LOG.exception("Glassbox: could not ask Streamlit whether a session is connected")
        return True


def _quietly(what: str, do, *args) -> None:
    """One step of giving memory back, through Streamlit's internals (which may change between versions): a
    failure is logged and the other steps still run; it never reaches a page."""
    try:
        do(*args)
    except Exception:  # noqa: BLE001 - see the docstring
        LOG.exception("Glassbox: %s failed; the rest of the session's memory still goes back", what)


def make_room(need: int, me: Visitor | None, what: str, hint: str = "") -> None:
    """Room for `need` more bytes of `me`'s (a model or a trace, `what` in words) within GLASSBOX_SESSIONS_MB:
    its own trace cache lets go of what its own bound would, then other sessions' traces go (closed tabs' first,
    then the longest idle; never a model), then its own older traces. Refused (one sentence) when even that is
    not enough: models alone fill the budget, or the one trace is larger than it. `hint`: what else the visitor
    can try, a clause ("or with a shorter text")."""
    budget = budget_bytes()
    with _LOCK:
        if me is not None and me.traces is not None:
            me.traces.make_room(need)  # what its own cache would let go of anyway
        total = held_bytes()
        if total + need <= budget:
            return
        freed = 0
        for v in sorted((v for v in visitors() if v is not me), key=lambda v: (_connected(v), v.last_run)):
            if total - freed + need <= budget:
                break
            if v.traces is not None and len(v.traces):
                freed += v.trace_bytes()
                v.traces.clear()
                _quietly("letting go of an idle session's download buttons", _drop_deferred_downloads, v.session_id)
        if total - freed + need > budget and me is not None and me.traces is not None:
            for key, _ in me.traces.items():  # then its own older traces, oldest first: computed again if asked
                if total - freed + need <= budget:
                    break
                before = me.traces.nbytes
                me.traces.pop(key)
                freed += before - me.traces.nbytes
        if freed:
            LOG.info("let go of %s of sessions' traces to make room", size_text(freed))
            trim()
        if total - freed + need > budget:
            mine = me.held() if me is not None else 0
            raise Refused(
                f"This server's memory for visitors' own models and traces is full: {size_text(total - freed)} of "
                f"{size_text(budget)} ({SESSIONS_ENV}) is held now, {size_text(mine)} of it by you, and this {what} "
                f"needs {size_text(need)} more. Try again in a few minutes, when other sessions have ended"
                f"{', ' + hint if hint else ''}.")


def _drop_deferred_downloads(session_id: str) -> None:
    """Forget the callables of a session's download buttons that build their file on a click (`data=` a
    function): Streamlit keeps each for as long as the session shows its button, an idle session's for good,
    and one that closes over a trace (the Attention page's every-head CSV) keeps alive the trace the budget just
    let go of. The session's next run draws its buttons again; a click before that gets Streamlit's "file not
    found"."""
    if not Runtime.exists():
        return
    media = Runtime.instance().media_file_mgr
    lock, ids, drop = (getattr(media, name, None)
                       for name in ("_lock", "_deferred_ids_by_session", "_drop_deferred_id"))
    if lock is None or ids is None or drop is None:
        return  # a Streamlit without deferred downloads, or that keeps them otherwise: nothing held here
    with lock:
        for file_id in list(ids.get(session_id, ())):
            drop(file_id)


# --- giving memory back ----------------------------------------------------------------------------------------

def trim() -> bool:
    """Hand the heap's free pages back to the system: glibc's malloc_trim(0), in every arena. False where there
    is no glibc (macOS, musl): there, nothing to do."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


_LIBC: list = []


def _libc():
    if not _LIBC:
        try:
            lib = ctypes.CDLL("libc.so.6")
            lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
            _LIBC.append(lib)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]


def _start_reaper() -> None:
    global _REAPER
    if _REAPER is not None or not Runtime.exists():
        return
    with _LOCK:
        if _REAPER is None:
            _REAPER = threading.Thread(target=_reap_forever, name="glassbox-reaper", daemon=True)
            _REAPER.start()


def _reap_forever() -> None:
    while True:
        time.sleep(REAP_S)
        try:
            reap()
        except Exception:  # noqa: BLE001 - the reaper must outlive any one bad session
            LOG.exception("Glassbox: the session reaper failed once; it goes on")


def _ttl_s() -> float:
    try:
        return float(config.get_option("server.disconnectedSessionTTL"))
    except Exception:  # noqa: BLE001 - an option Streamlit may rename: its long-standing default
        LOG.exception("Glassbox: could not read server.disconnectedSessionTTL; taking 120 s")
        return 120.0


def reap(now: float | None = None) -> int:
    """End the sessions Streamlit will no longer resume (their tab closed over server.disconnectedSessionTTL
    + GRACE_S ago); the number ended. Also removes the download files that ended sessions left on the pass
    before (Streamlit keeps an unreferenced download one pass longer, see `end_session`)."""
    if not Runtime.exists():
        return 0
    now = time.monotonic() if now is None else now
    if _PENDING_MEDIA:
        _PENDING_MEDIA.clear()
        _quietly("removing ended sessions' download files", _remove_orphaned_media)
    ttl = _ttl_s()
    ended = []
    for v in visitors():
        if _connected(v):
            v.last_active = now
        elif now - v.last_active > ttl + GRACE_S:
            ended.append(v)
    for v in ended:
        end_session(v)
    if ended:
        gc.collect()
        trim()
        LOG.info("ended %d closed session(s); their memory went back", len(ended))
    return len(ended)


def end_session(v: Visitor) -> None:
    """Free what a session that has ended holds: every value in its state (models, traces, runs, zips) and its
    widgets' values and callbacks, its fragments, its uploaded files, its dataframes and its download files.
    Streamlit's own shutdown would remove the files; it is not called for a session that expires (see the
    module's docstring). Each step goes through Streamlit's internals: one that fails is logged, the rest run."""
    with _LOCK:
        _VISITORS.discard(v)
    state, fragments, sid = v.state, v.fragments, v.session_id
    v.state = v.fragments = v.traces = v.models = None
    if fragments is not None:  # a fragment's function closes over its arguments: a trace, a model
        _quietly("clearing a session's fragments", fragments.clear)
        if hasattr(fragments, "clear_outside_wrappers"):
            _quietly("clearing a session's fragment wrappers", fragments.clear_outside_wrappers)
    if state is not None:
        _quietly("emptying a session's state", _empty, state)
    if not Runtime.exists():
        return
    rt = Runtime.instance()
    _quietly("removing a session's uploaded files", lambda: rt.uploaded_file_mgr.remove_session_files(sid))
    if hasattr(rt, "dataframe_source_mgr"):  # Streamlit 1.5x on: dataframes kept for the browser to page through
        _quietly("removing a session's dataframes", lambda: rt.dataframe_source_mgr.clear_all_for_session(sid))
    _quietly("letting go of a session's download files", lambda: rt.media_file_mgr.clear_session_refs(sid))
    # A download file no session refers to is marked on one pass and removed on the next (Streamlit keeps it one
    # pass longer for a download under way); the reaper's next pass removes them (`reap`), REAP_S from now.
    _quietly("removing ended sessions' download files", _remove_orphaned_media)
    _PENDING_MEDIA.append(sid)


_PENDING_MEDIA: list[str] = []  # sessions ended since the reaper's last pass: their download files go on the next


def _remove_orphaned_media() -> None:
    Runtime.instance().media_file_mgr.remove_orphaned_files()


def _empty(state) -> None:
    """Every value a session's state holds: its keys through the public mapping, then (Streamlit's SessionState
    inside the SafeSessionState) the widgets' values and metadata, whose callbacks and format_funcs may close
    over a model or a trace."""
    for key in list(state.filtered_state):
        try:
            del state[key]
        except Exception:  # noqa: BLE001 - a value Streamlit manages itself; the rest still goes
            continue
    inner, lock = getattr(state, "_state", None), getattr(state, "_lock", None)
    if inner is None or lock is None:
        return
    with lock:
        inner.clear()
        widgets = getattr(inner, "_new_widget_state", None)
        if widgets is not None and hasattr(widgets, "widget_metadata"):
            widgets.widget_metadata.clear()
