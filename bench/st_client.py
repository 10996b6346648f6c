"""A minimal Streamlit client that speaks the browser's websocket protocol, for load tests without browsers.

One `Client` is one browser tab: it connects to /_stcore/stream (subprotocol "streamlit"), asks for a page
run with a query string (a BackMsg `rerun_script` carrying a ClientState), and reads the ForwardMsgs back:
`new_session` starts a full run, each `delta` places an element at its path, `script_finished` ends a run,
`auto_rerun` asks it to rerun a fragment every N seconds (as the frontend does for `st.fragment(run_every=)`).
Widgets are found by their keys in the element ids the server sends; the client keeps their values and sends
them with every run, and a button press is a one-shot trigger. Enough to join a workshop room, guess and
watch it; not a general frontend (no media, no components, no message cache). Only for 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

Listener = Callable[[str, object, float], None]  # (element kind, its proto, time received)
EARLY = ("FINISHED_EARLY_FOR_RERUN",)


class Client:
    def __init__(self, base: str, page: str, query: str = "", listener: Listener | None = None) -> None:
        parts = urlsplit(base)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("this client only talks to a server on this machine")
        self.url = f"ws://{parts.netloc}/_stcore/stream"
        self.origin = f"http://{parts.netloc}"
        self.page, self.query, self.listener = page, query, listener
        self.elements: dict[tuple[int, ...], tuple[str, object]] = {}  # delta path -> (kind, proto)
        self.widgets: dict[str, WidgetState] = {}  # id -> the value this tab holds
        self.page_hash = ""
        self.fragments: dict[str, float] = {}  # fragment id -> its rerun interval (s)
        self.running = False
        self.errors: list[str] = []
        self._finished = asyncio.Event()
        self._ws = None
        self._tasks: list[asyncio.Task] = []

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=None,
                                            origin=self.origin, open_timeout=60)
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._auto_rerun())]
        await self.run()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()

    # -- runs ---------------------------------------------------------------------------------------------------

    async def run(self, fragment_id: str = "", timeout: float = 120.0) -> None:
        """Ask for a run (the page, or one fragment) with the widget values held, and wait until it ends."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:  # a fragment's timed run ends first
            await asyncio.sleep(0.01)
        self._finished.clear()
        self.running = True
        await self._send(fragment_id)
        self._drop_triggers()
        await asyncio.wait_for(self._finished.wait(), timeout)

    async def _send(self, fragment_id: str = "", auto: bool = False) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash  # the page the server last ran (empty at first)
        state.page_name = self.page  # and its URL path, as a tab opened at /Room asks for it
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.widget_states.widgets.extend(self.widgets.values())
        await self._ws.send(msg.SerializeToString())

    def _drop_triggers(self) -> None:
        for wid in [w for w, s in self.widgets.items() if s.WhichOneof("value") == "trigger_value"]:
            del self.widgets[wid]

    async def _auto_rerun(self) -> None:
        """The frontend's timer for `st.fragment(run_every=...)`: rerun each fragment when its time comes, unless a
        run is in progress (the browser waits too)."""
        due: dict[str, float] = {}
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for fid, every in list(self.fragments.items()):
                if now >= due.setdefault(fid, now + every) and not self.running:
                    due[fid] = now + every
                    self.running = True
                    await self._send(fid, auto=True)

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            now = time.monotonic()
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                if not msg.metadata.run.fragment_ids:  # a full run: the page is drawn afresh
                    self.elements.clear()
                    self.fragments.clear()
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                what = element.WhichOneof("type")
                inner = getattr(element, what)
                self.elements[tuple(msg.metadata.delta_path)] = (what, inner)
                if what == "exception":
                    self.errors.append(inner.message)
                if self.listener is not None:
                    self.listener(what, inner, now)
            elif kind == "navigation":  # the page the run resolved to (new_session holds the main script's)
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "auto_rerun":
                self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "script_finished":
                self.running = False
                if ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished) not in EARLY:
                    self._finished.set()

    # -- widgets and what the page shows ------------------------------------------------------------------------

    def widget_id(self, key: str) -> str:
        """The id of the widget with user key `key` (a form's submit button: "FormSubmitter:<form>-<label>")."""
        for what, inner in self.elements.values():
            wid = getattr(inner, "id", "")
            if isinstance(wid, str) and wid.endswith("-" + key):
                return wid
        raise KeyError(f"no widget {key!r} on the page")

    def has_widget(self, key: str) -> bool:
        try:
            self.widget_id(key)
        except KeyError:
            return False
        return True

    def set_text(self, key: str, value: str) -> None:
        wid = self.widget_id(key)
        self.widgets[wid] = WidgetState(id=wid, string_value=value)

    async def press(self, key: str, timeout: float = 120.0) -> None:
        wid = self.widget_id(key)
        self.widgets[wid] = WidgetState(id=wid, trigger_value=True)
        await self.run(timeout=timeout)

    def texts(self) -> str:
        """Every Markdown, HTML, caption and message body on the page, joined."""
        out = []
        for what, inner in self.elements.values():
            for field in ("body", "label"):
                value = getattr(inner, field, None)
                if isinstance(value, str):
                    out.append(value)
        return "\n".join(out)

    def metric(self, label: str) -> str | None:
        for what, inner in self.elements.values():
            if what == "metric" and inner.label == label:
                return inner.body
        return None
