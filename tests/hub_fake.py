"""A small Hugging Face Hub for the model-source tests, on 127.0.0.1 in a thread.

It answers the two calls Glassbox makes, as the Hub does: the file list
(GET /api/models/{owner}/{name}/revision/{revision}?blobs=true, with sizes, and SHA-256 for LFS files) and a
file (GET /{owner}/{name}/resolve/{revision}/{file}). A safetensors file is an LFS file: its resolve answers
302 to a second server, the "CDN", on another port (another origin, so a token must not follow). Errors carry
the Hub's X-Error-Code header: an unknown repo is 401 RepoNotFound (what the Hub tells anonymous callers), an
unknown revision 404 RevisionNotFound, a missing file 404 EntryNotFound.

A repo's `mode` makes it misbehave: "stall" sends half of each safetensors file and then nothing, "drip"
sends it a byte every 0.2 s, "gated"
answers 403 GatedRepo for every file, "longer" sends more bytes than the list says, "corrupt" flips a byte.
Every request is recorded (server, path, Authorization header) so a test can see what was asked for.

`SilentServer` accepts connections and never answers; `closed_port()` is a port where nothing listens.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Repo:
    files: dict[str, bytes]
    mode: str = "ok"
    lfs: set[str] = field(default_factory=set)  # names served through the CDN (default: every .safetensors)

    def is_lfs(self, name: str) -> bool:
        return name in self.lfs or name.endswith(".safetensors")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: FakeHub, role: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub, self.role = hub, role
        # A short poll, so that stopping (once per test) takes milliseconds, not serve_forever's default 0.5 s.
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # set at stop: a stalled answer ends
        self.hub = _Server(self, "hub")
        self.cdn = _Server(self, "cdn")

    @property
    def base_url(self) -> str:
        return self.hub.base_url

    def add(self, repo_id: str, files: dict[str, bytes], mode: str = "ok") -> Repo:
        self.repos[repo_id] = Repo(dict(files), mode)
        return self.repos[repo_id]

    def fetched(self, repo_id: str | None = None) -> list[str]:
        """The file names asked for through /resolve/, in order."""
        names = []
        for r in self.requests:
            parts = r["path"].split("/resolve/", 1)
            if r["server"] == "hub" and len(parts) == 2 and (repo_id is None or parts[0] == f"/{repo_id}"):
                names.append(urllib.parse.unquote(parts[1].split("/", 1)[1]))
        return names

    def stop(self) -> None:
        self.release.set()
        for s in (self.hub, self.cdn):
            s.shutdown()
            s.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        hub = self.server.hub
        with hub.lock:
            hub.requests.append({"server": self.server.role, "path": self.path,
                                 "auth": self.headers.get("Authorization")})
        path = urllib.parse.urlsplit(self.path).path
        if self.server.role == "cdn":
            return self._cdn(path)
        if path.startswith("/api/models/"):
            return self._info(path.removeprefix("/api/models/"))
        if "/resolve/" in path:
            repo_id, rest = path.lstrip("/").split("/resolve/", 1)
            revision, _, name = rest.partition("/")
            return self._resolve(repo_id, urllib.parse.unquote(revision), urllib.parse.unquote(name))
        return self._error(404, "EntryNotFound")

    def _info(self, rest: str) -> None:
        repo_id, _, revision = rest.partition("/revision/")
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound")
        if urllib.parse.unquote(revision) not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        siblings = []
        for name, data in repo.files.items():
            s = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
            if repo.is_lfs(name):
                s["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(s)
        self._send(200, json.dumps({"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                                    "gated": repo.mode == "gated", "siblings": siblings}).encode())

    def _resolve(self, repo_id: str, revision: str, name: str) -> None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound")
        if revision not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        if repo.mode == "gated":
            return self._error(403, "GatedRepo")
        if name not in repo.files:
            return self._error(404, "EntryNotFound")
        if repo.is_lfs(name):
            self.send_response(302)
            self.send_header("Location", f"{self.server.hub.cdn.base_url}/blobs/{urllib.parse.quote(repo_id, safe='')}/"
                                         f"{urllib.parse.quote(name, safe='')}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, repo.files[name])

    def _cdn(self, path: str) -> None:
        _, _, repo_id, name = path.split("/", 3)
        repo = self.server.hub.repos.get(urllib.parse.unquote(repo_id))
        data = repo.files.get(urllib.parse.unquote(name)) if repo else None
        if data is None:
            return self._error(404, "EntryNotFound")
        if repo.mode == "stall":  # headers and half the bytes, then silence until the test ends
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.server.hub.release.wait(30)
            return
        if repo.mode == "drip":  # alive, but far too slow to ever finish
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    if self.server.hub.release.wait(0.2):
                        return
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: what it should do
                return
            return
        if repo.mode == "longer":
            data = data + b"\0" * 1000
        if repo.mode == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 1])
        self._send(200, data, length=repo.mode != "longer")

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        body = json.dumps({"error": code}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, body: bytes, length: bool = True) -> None:
        self.send_response(status)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: what a cap does
            pass
        if not length:
            self.close_connection = True


class SilentServer:
    """Accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._held.append(conn)

    def stop(self) -> None:
        self._closed = True
        self._sock.close()
        for c in self._held:
            c.close()


def closed_port() -> str:
    """The base URL of a port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
