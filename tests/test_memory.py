"""The server-wide budget over visitors' own models and traces (ui/memory.py `make_room`), with sessions made
here, and a model zip's download name (ui/runs.py `download_comment`). The reaper against a real Streamlit
server is in tests/test_memory_server.py."""
from __future__ import annotations

import gc
import io
import time
import types
import weakref
import zipfile

import pytest
import torch
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine import GPT, GPTConfig, Trace
from engine.train.bundle import check_zip, export_zip
from engine_fixtures import tiny_model, tokenizer
from ui import memory
from ui.errors import Refused
from ui.lru import ByteLRU
from ui.runs import DOWNLOAD_BITS, download_comment

MB = 2**20


class _Choice:
    def __init__(self, n_floats: int) -> None:
        self.model = torch.nn.Linear(n_floats, 1, bias=False)  # n_floats x 4 bytes of weights


def _visitor(sid: str, traces_mb: list[int], model_mb: float = 0, idle_s: float = 0) -> memory.Visitor:
    v = memory.Visitor(sid, state=None)
    v.traces = ByteLRU(None, 8, size=len)
    for i, mb in enumerate(traces_mb):
        v.traces.put(f"{sid}-{i}", bytearray(mb * MB))
    v.models = {"mine": _Choice(int(model_mb * MB) // 4)} if model_mb else {}
    v.last_run = time.monotonic() - idle_s
    return v


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    """A 10 MB budget, no other sessions but the test's, and a say over which tabs are connected."""
    monkeypatch.setenv(memory.SESSIONS_ENV, "10")
    monkeypatch.setattr(memory, "_VISITORS", weakref.WeakSet())
    monkeypatch.setattr(memory, "trim", lambda: False)
    closed: set[str] = set()
    monkeypatch.setattr(memory, "_connected", lambda v: v.session_id not in closed)

    def add(*visitors: memory.Visitor) -> None:
        memory._VISITORS.update(visitors)
    return add, closed


def test_a_fit_lets_go_of_nothing(world) -> None:
    add, _ = world
    me, other = _visitor("me", [2]), _visitor("other", [3], model_mb=2)
    add(me, other)
    assert memory.held_bytes() == 7 * MB
    memory.make_room(3 * MB, me, "trace")
    assert me.trace_bytes() == 2 * MB and other.trace_bytes() == 3 * MB


def test_closed_tabs_go_first_then_the_longest_idle_and_no_more(world) -> None:
    add, closed = world
    me = _visitor("me", [])
    recent_closed = _visitor("closed", [2], idle_s=1)  # closed a moment ago: still before any open tab
    long_idle = _visitor("idle", [2], idle_s=600)
    busy = _visitor("busy", [2], idle_s=0)
    other_busy = _visitor("busy2", [2], idle_s=5)
    add(me, recent_closed, long_idle, busy, other_busy)
    closed.add("closed")
    memory.make_room(5 * MB, me, "trace")  # 8 held + 5 > 10: two sessions' traces must go
    assert recent_closed.trace_bytes() == 0, "a closed tab's traces go first"
    assert long_idle.trace_bytes() == 0, "then the longest idle session's"
    assert busy.trace_bytes() == other_busy.trace_bytes() == 2 * MB, "and no more than needed"


def test_models_are_never_let_go_and_the_refusal_says_why(world) -> None:
    add, closed = world
    me = _visitor("me", [1], model_mb=2)
    other = _visitor("other", [1], model_mb=6)
    add(me, other)
    closed.add("other")
    with pytest.raises(Refused) as e:
        memory.make_room(4 * MB, me, "look inside your model", "or with a shorter text")
    said = str(e.value)
    assert "\n" not in said
    assert memory.SESSIONS_ENV in said and "8.0 MB of 10 MB" in said and "4.0 MB more" in said, said
    assert "2.0 MB of it by you" in said, "what the visitor holds, after letting go of their own trace"
    assert said.endswith("when other sessions have ended, or with a shorter text."), said
    assert other.model_bytes() == 6 * MB and me.model_bytes() == 2 * MB, "a model may be someone's only copy"
    assert other.trace_bytes() == 0 and me.trace_bytes() == 0, "every trace went before the refusal"


def test_its_own_cache_lets_go_of_its_overflow_first_and_its_older_traces_last(world) -> None:
    add, _ = world
    me = _visitor("me", [2, 2])
    me.traces.max_entries = 2  # its own bound: a third trace pushes out its oldest, whatever the budget
    other = _visitor("other", [3], idle_s=60)
    add(me, other)
    memory.make_room(1 * MB, me, "trace")
    assert list(me.traces) == ["me-1"] and other.trace_bytes() == 3 * MB, "its own overflow, nobody else's"
    memory.make_room(6 * MB, me, "trace")  # 5 held + 6 > 10: the other session's goes before its own
    assert other.trace_bytes() == 0 and list(me.traces) == ["me-1"]
    memory.make_room(9 * MB, me, "trace")  # only its own older trace is left to let go of
    assert len(me.traces) == 0


def test_an_idle_session_s_download_buttons_let_go_of_its_trace_too(world, monkeypatch) -> None:
    """A download button that builds its file on a click keeps its callable in Streamlit's media manager for as
    long as its session shows it: letting go of an idle session's traces forgets those callables too."""
    from streamlit.runtime import Runtime, media_file_manager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    add, _ = world
    media = MediaFileManager(MemoryMediaFileStorage("/media"))
    runtime = type("FakeRuntime", (), {"media_file_mgr": media, "is_active_session": lambda self, sid: True})()
    monkeypatch.setattr(Runtime, "_instance", runtime)
    me, idle, busy = _visitor("me", []), _visitor("idle", [6], idle_s=600), _visitor("busy", [1])
    add(me, idle, busy)
    trace = bytearray(6 * MB)
    for sid in ("idle", "busy"):
        monkeypatch.setattr(media_file_manager, "_get_session_id", lambda sid=sid: sid)
        media.add_deferred(lambda t=trace: bytes(t[:10]), "text/csv", f"{sid}.coords")
    memory.make_room(5 * MB, me, "trace")
    assert idle.trace_bytes() == 0 and busy.trace_bytes() == MB
    owners = [entry["session_id"] for entry in media._deferred_callables.values()]  # noqa: SLF001
    assert owners == ["busy"], "the idle session's download callable went with its traces, the busy one's stayed"


def test_a_visitor_counts_a_tied_weight_once() -> None:
    model = GPT(GPTConfig(block_size=16, vocab_size=64, n_layer=1, n_head=1, n_embd=8))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert memory.weights_bytes(model) == 4 * sum(p.numel() for p in model.parameters())


def test_a_visitor_repr_leaves_out_what_it_points_at() -> None:
    v = memory.Visitor("abc", state={"hosted.key": "sk-secret"})
    assert "sk-secret" not in repr(v) and "abc" in repr(v)


# --- what a session's widgets keep ---------------------------------------------------------------------------

def _reachable(root: object, limit: int = 50_000) -> tuple[list[Trace], list[types.FunctionType]]:
    """The traces `root` keeps alive, and the functions on the way. A function is followed through what it
    closes over and its defaults, not its module's globals (which reach everything, shared or not); a model is
    not looked inside."""
    seen, todo, held, funcs = set(), [root], [], []
    while todo and len(seen) < limit:
        o = todo.pop()
        if id(o) in seen or isinstance(o, (type, types.ModuleType, str, bytes, int, float)):
            continue
        seen.add(id(o))
        if isinstance(o, Trace):
            held.append(o)
        elif isinstance(o, torch.nn.Module):
            continue
        elif isinstance(o, types.FunctionType):
            funcs.append(o)
            todo += [c.cell_contents for c in o.__closure__ or () if c.cell_contents is not None]
            todo += [*(o.__defaults__ or ()), *(o.__kwdefaults__ or {}).values()]
        else:
            todo += gc.get_referents(o)
    return held, funcs


@pytest.mark.parametrize("script", ["2_Attention.py", "4_Next_token.py", "5_Train.py"])
def test_widgets_keep_no_trace(script: str) -> None:
    """Streamlit keeps a widget's metadata (its format_func, its callback's arguments) until a run no longer
    draws it: in an idle session, for good. The budget lets go of idle sessions' traces (`make_room`); a label
    function closing over one would keep it alive, uncounted. (A model there is no matter: the budget never
    lets go of one.)"""
    at = AppTest.from_file(str(ROOT / "pages" / script), default_timeout=120).run()
    assert not at.exception, at.exception
    metadata = list(at._session_state._state._new_widget_state.widget_metadata.values())  # noqa: SLF001
    held, funcs = _reachable(metadata)
    assert not held, [type(o).__name__ for o in held]
    assert any("/ui/" in f.__code__.co_filename for f in funcs), "the walk reached the pages' label functions"


# --- a model zip's download name ---------------------------------------------------------------------------------

def test_a_model_zip_gets_a_random_download_name_and_still_loads() -> None:
    model, tok = tiny_model(), tokenizer()
    plain = [export_zip(model, tok, "glassbox-my-model") for _ in range(2)]
    assert plain[0] == plain[1], "the same weights make the same zip: named after its bytes, a guessable name"
    offered = [export_zip(model, tok, "glassbox-my-model", comment=download_comment()) for _ in range(2)]
    # Streamlit's name for a download file, as st.download_button stores it (memory_media_file_storage).
    names = {_calculate_file_id(z, "application/zip", "glassbox-my-model.zip") for z in [*plain[:1], *offered]}
    assert len(names) == 3, "each offered zip's name differs from the plain zip's and from the other's"
    comment = zipfile.ZipFile(io.BytesIO(offered[0])).comment
    assert comment.startswith(b"Glassbox download ") and len(comment.split()[-1]) == DOWNLOAD_BITS // 4
    assert set(check_zip(offered[0])) == set(check_zip(plain[0])), "the upload check reads it as before"

