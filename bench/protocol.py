"""A Streamlit client without a browser: Streamlit's own websocket messages (the protobufs in streamlit.proto),
spoken as the browser frontend speaks them, for load tests of the server alone (bench/bench_protocol.py) and a
test that the client still works (tests/test_protocol_client.py).

What the browser does, and this client the same (read from streamlit's frontend: WebsocketConnection,
App.sendRerunBackMsg, ForwardMessageCache; and checked against a real Chromium session's frames):
- connects to /_stcore/stream offering the subprotocols ["streamlit", <xsrf token or a placeholder>] and
  permessage-deflate (the server takes it only where `server.enableWebsocketCompression` is on);
- asks for every run with a BackMsg `rerun_script` (a ClientState): the first run names the page of the URL
  path (`page_name`), later runs its `page_script_hash` (from the `navigation` message); each carries the query
  string the app last set (`page_info_changed`), the browser's context and the hashes of the messages it keeps;
- a widget change is a rerun carrying the widget's WidgetState, with the `fragment_id` of the fragment that drew
  it, so only that fragment reruns;
- keeps the message cache: a ForwardMsg the server marks cacheable is kept by its hash, the hash goes back with
  the next rerun, and the server then sends a 60-byte `ref_hash` instead of the element; an entry not used for
  `max_cached_message_age` runs expires.
What it does differently: it sends only the widget that changes (a browser sends every widget's state; the server
keeps the others' values from the last run, so the run is the same), and it renders and downloads nothing else.

Widgets are found by the key the app gave them: an element id is `$$ID-<hash>-<key>`, the hash changes with the
widget's label and options, the key does not.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect

EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
COMPILE_ERROR = ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR
ID_PREFIX = "$$ID-"


class ProtocolError(RuntimeError):
    """The server did not answer as a browser expects (closed, timed out, no such page or widget)."""


def user_key(element_id: str) -> str | None:
    """The key an app gave a widget, from its element id `$$ID-<32 hex>-<key>` (None: no key)."""
    if not element_id.startswith(ID_PREFIX):
        return None
    _, _, rest = element_id.partition(ID_PREFIX)
    digest, sep, key = rest.partition("-")
    return key if sep and len(digest) == 32 and key != "None" else None


@dataclass
class Widget:
    key: str  # the app's key: "attention.head"
    id: str  # the element id the server knows it by
    kind: str  # the element's type in the Element proto: "selectbox", "slider", "text_area", ...
    fragment_id: str  # the fragment that drew it ("" outside one)
    proto: Any  # the widget's proto as last drawn (options, default, value)


@dataclass
class Run:
    """One request and the script run it caused, as the client saw it."""
    seconds: float  # from sending the BackMsg to the run's `script_finished`
    bytes: int  # ForwardMsg payloads received, as the app decodes them
    wire_bytes: int  # bytes that crossed the socket (frames, compressed where compression is on)
    messages: int
    status: int  # ForwardMsg.ScriptFinishedStatus of the last run
    references: int = 0  # elements sent as a reference to a message this client kept
    exceptions: list[str] = field(default_factory=list)  # exceptions the page showed


class _Counting(ClientConnection):
    """A websocket connection that counts the bytes it receives off the socket."""
    wire_in = 0

    def data_received(self, data: bytes) -> None:
        self.wire_in += len(data)
        super().data_received(data)


class Session:
    """One browser tab: a websocket session that opens pages, changes widgets and waits for each run.

        s = Session("http://127.0.0.1:8501")
        await s.open("/Attention")
        await s.set("attention.head", "2")
        await s.goto("Next token")
        await s.close()
    """

    def __init__(self, base: str, timeout_s: float = 120.0):
        self.base = base.rstrip("/")
        self.timeout_s = timeout_s
        self.widgets: dict[str, Widget] = {}  # the current page's keyed widgets
        self.query = ""  # the query string the app set last (the URL the browser shows)
        self.pages: dict[str, str] = {}  # page name and URL path -> page_script_hash
        self.page_hash = ""
        self.bytes = self.messages = self.references = 0
        self._ws: _Counting | None = None
        self._reader: asyncio.Task | None = None
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._exceptions: list[str] = []
        self._cache: dict[str, tuple[int, str]] = {}  # message hash -> (run count when last used, fragment id)
        self._runs = 0
        self._max_age = 2
        self._new_session = False  # a new_session arrived since the last rerun request
        self._fragments: list[str] = []  # fragment ids of the run in progress
        self._path = "/"
        self._broken = ""  # why the connection ended, once it has

    # --- the requests a browser makes ----------------------------------------------------------------------

    async def open(self, path: str = "/", query: str = "") -> Run:
        """Connect and run the page at `path` ("/" or "/Attention"), as a browser opening that URL does."""
        self._path, self.query = path, query.lstrip("?")
        host = urlsplit(self.base).netloc
        t0 = time.perf_counter()
        self._ws = await connect(
            f"ws://{host}/_stcore/stream", subprotocols=["streamlit", "PLACEHOLDER_AUTH_TOKEN"],
            origin=self.base, compression="deflate", max_size=None, proxy=None, open_timeout=self.timeout_s,
            create_connection=_Counting)
        self._reader = asyncio.create_task(self._read())
        return await self._rerun(ClientState(page_name=path.strip("/")), t0=t0)

    async def goto(self, page: str) -> Run:
        """Open another page in the same session, as a click on a link in the sidebar does."""
        if page not in self.pages:
            raise ProtocolError(f"no page {page!r}; the app has {sorted(self.pages)}")
        self._path = "/" + page
        self.widgets.clear()
        return await self._rerun(ClientState(page_script_hash=self.pages[page]), keep_query=False)

    async def set(self, key: str, value: Any) -> Run:
        """Change the widget with key `key` to `value`, as a user would: a selectbox or radio takes the option as
        shown ("2"), a select slider its shown option, a slider a number, a text box a string, a checkbox a bool.
        """
        w = self.widget(key)
        state = WidgetState(id=w.id)
        options = list(getattr(w.proto, "options", []))
        if w.kind in ("selectbox", "radio"):
            if options and str(value) not in options:
                raise ProtocolError(f"{key}: {value!r} is not among its options {options[:12]}")
            state.string_value = str(value)
        elif w.kind == "slider" and options:  # a select slider: the shown option(s)
            if str(value) not in options:
                raise ProtocolError(f"{key}: {value!r} is not among its options {options[:12]}")
            state.string_array_value.data.append(str(value))
        elif w.kind == "slider":
            state.double_array_value.data.extend(value if isinstance(value, (list, tuple)) else [value])
        elif w.kind in ("text_area", "text_input"):
            state.string_value = str(value)
        elif w.kind == "checkbox":
            state.bool_value = bool(value)
        elif w.kind == "number_input":
            if w.proto.data_type == w.proto.INT:
                state.int_value = int(value)
            else:
                state.double_value = float(value)
        else:
            raise ProtocolError(f"{key}: setting a {w.kind} is not supported by this client")
        return await self._widget_rerun(w, state)

    async def report(self, key: str, view: dict[str, Any]) -> Run:
        """A view drawn in the browser (ui/views, a Components v2 component under key `key`) reports `view`, as its
        JavaScript does after a click or a slider move: the state value `view`, sent as the component's JSON."""
        w = self.widget(key)
        if w.kind != "bidi_component":
            raise ProtocolError(f"{key}: a {w.kind}, not a view drawn in the browser")
        return await self._widget_rerun(w, WidgetState(id=w.id, json_value=json.dumps({"view": view})))

    def view_data(self, key: str) -> dict[str, Any]:
        """The data a view drawn in the browser was last sent (its payload and `sel`, the view the session holds)."""
        w = self.widget(key)
        return json.loads(w.proto.json) if w.kind == "bidi_component" and w.proto.json else {}

    async def click(self, key: str) -> Run:
        """Press the button with key `key`."""
        w = self.widget(key)
        return await self._widget_rerun(w, WidgetState(id=w.id, trigger_value=True))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # the reader itself catches the rest
                await self._reader

    # --- what the page shows -------------------------------------------------------------------------------

    def widget(self, key: str) -> Widget:
        if key not in self.widgets:
            raise ProtocolError(f"no widget with key {key!r} on this page; it has {sorted(self.widgets)}")
        return self.widgets[key]

    def url_param(self, name: str) -> str | None:
        """A parameter of the URL the app set (the view it holds), or None."""
        values = parse_qs(self.query).get(name)
        return values[0] if values else None

    # --- the protocol --------------------------------------------------------------------------------------

    async def _widget_rerun(self, w: Widget, state: WidgetState) -> Run:
        request = ClientState(page_script_hash=self.page_hash, fragment_id=w.fragment_id)
        request.widget_states.widgets.append(state)
        return await self._rerun(request)

    async def _rerun(self, request: ClientState, keep_query: bool = True, t0: float | None = None) -> Run:
        if self._ws is None:
            raise ProtocolError("not connected: open() first")
        if keep_query:
            request.query_string = self.query
        request.cached_message_hashes.extend(self._cache)
        ctx = request.context_info
        ctx.timezone, ctx.timezone_offset, ctx.locale = "UTC", 0, "en-US"
        ctx.url, ctx.is_embedded, ctx.color_scheme = self.base + self._path, False, "light"
        while not self._finished.empty():  # nothing left over from an earlier run
            self._finished.get_nowait()
        bytes0, messages0, refs0, wire0 = self.bytes, self.messages, self.references, self._ws.wire_in
        self._exceptions = []
        self._new_session = False
        t0 = time.perf_counter() if t0 is None else t0
        await self._ws.send(BackMsg(rerun_script=request).SerializeToString())
        deadline = t0 + self.timeout_s
        while True:  # a run ended early by st.rerun() is followed by the run that counts
            try:
                status = await asyncio.wait_for(self._finished.get(), max(0.0, deadline - time.perf_counter()))
            except TimeoutError:
                raise ProtocolError(f"no script_finished within {self.timeout_s:.0f} s") from None
            if status < 0:
                raise ProtocolError(self._broken or "the server closed the connection")
            if status != EARLY_FOR_RERUN:
                break
        return Run(time.perf_counter() - t0, self.bytes - bytes0, self._ws.wire_in - wire0,
                   self.messages - messages0, status, self.references - refs0, list(self._exceptions))

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    self._receive(raw)
        except Exception as e:  # noqa: BLE001 - a dropped connection or a broken message ends every wait
            self._broken = f"{type(e).__name__}: {e}"
        finally:
            self._finished.put_nowait(-1)

    def _receive(self, raw: bytes) -> None:
        self.bytes += len(raw)
        self.messages += 1
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        self._keep(msg, kind)
        if kind == "new_session":
            self._new_session = True
            self._max_age = msg.new_session.config.max_cached_message_age or self._max_age
            self._fragments = list(msg.metadata.run.fragment_ids)
        elif kind == "navigation":  # every full run: the pages, and the one this run draws
            if msg.navigation.page_script_hash != self.page_hash:
                self.widgets.clear()
                self.page_hash = msg.navigation.page_script_hash
            for page in msg.navigation.app_pages:
                self.pages[page.page_name] = self.pages[page.url_pathname] = page.page_script_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg)
        elif kind == "script_finished":
            status = msg.script_finished
            if status != EARLY_FOR_RERUN and self._new_session:
                self._expire()
            self._finished.put_nowait(status)

    def _element(self, msg: ForwardMsg) -> None:
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            self._exceptions.append(f"{element.exception.type}: {element.exception.message}"[:300])
            return
        proto = getattr(element, kind)
        key = user_key(getattr(proto, "id", ""))
        if key is not None:
            self.widgets[key] = Widget(key, proto.id, kind, msg.delta.fragment_id, proto)

    def _keep(self, msg: ForwardMsg, kind: str | None) -> None:
        """The browser's message cache (ForwardMessageCache): keep cacheable messages, refresh what is used."""
        if kind == "ref_hash":
            if msg.ref_hash not in self._cache:
                raise ProtocolError(f"the server referred to a message this client never kept ({msg.ref_hash})")
            self._cache[msg.ref_hash] = (self._runs, self._cache[msg.ref_hash][1])
            self.references += 1
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = (self._runs, msg.delta.fragment_id if kind == "delta" else "")

    def _expire(self) -> None:
        self._runs += 1
        for digest, (used, fragment) in list(self._cache.items()):
            if self._fragments and fragment not in self._fragments:
                continue  # a fragment's run ages only that fragment's messages
            if self._runs - used > self._max_age:
                del self._cache[digest]
