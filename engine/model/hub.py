"""The Hugging Face Hub's HTTP API, as much of it as fetching a model needs: a repo's file list and one file's
bytes. This module is the transport and knows nothing about models; engine.model.sources decides what to
fetch and refuses what it must. Standard library only (urllib), like engine/generation/hosted.py.

Every call is bounded in time. Opening a connection takes at most `timeout` seconds, the name lookup
included (it runs in a worker thread: getaddrinfo has no timeout of its own), and the file list must arrive
within the same `timeout`. A file may take as long as its size needs, but fails when fewer than STALL_BYTES
arrive in any `timeout` seconds, so a server that stalls or drips is given up on after at most two
timeouts. Every read is capped: a file never grows past the size the file list gave it, and an LFS file's
SHA-256 must match the list's. HF_TOKEN goes in an Authorization header to the Hub's own origin only, never
to a redirect elsewhere (the LFS CDN), and never into a message or the log.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ENDPOINT_ENV, TOKEN_ENV = "HF_ENDPOINT", "HF_TOKEN"
DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_INFO_BYTES = 16 << 20  # a repo's file list; gpt2's is 10 KB, repos with thousands of files a few MB
STALL_BYTES = 64 << 10  # fewer than this in `timeout` seconds (13 KB/s at 5 s) is a stalled download
CHUNK = 1 << 20
USER_AGENT = "glassbox"
_TOKEN = re.compile(r"[\x21-\x7e]{1,1000}")  # printable ASCII without spaces, as every Hub token is
_COMMIT = re.compile(r"[0-9a-f]{40}")
T = TypeVar("T")


class HubError(ValueError):
    """The Hub refused, failed or answered nonsense; the message is one plain sentence without the token."""


class Unreachable(HubError):
    """Nothing answered: no network, a name that does not resolve, a refused connection, or silence."""

    def __init__(self, reason: str):
        super().__init__(f"The Hugging Face Hub could not be reached ({reason}).")
        self.reason = reason


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path inside the repo, as the Hub lists it ("config.json", "onnx/model.onnx")
    size: int | None  # bytes, when the list says
    sha256: str | None  # for files stored in LFS (weights), the hex digest the bytes must have


@dataclass(frozen=True)
class RepoInfo:
    repo_id: str
    commit: str  # the revision resolved to a commit, so every file comes from the same one
    files: dict[str, RemoteFile]  # by name


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects (the Hub sends weights from a CDN), carrying the token only to the origin it was
    meant for. urllib never carries an unredirected header, so this adds it back for the same origin."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            return None  # urllib would follow ftp:// too; then it raises HTTPError with the 3xx status
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


# Proxies still come from the environment (HTTPS_PROXY, NO_PROXY): that is the host's own choice.
_OPENER = urllib.request.build_opener(_SameOriginAuth())


def check_endpoint(url: str) -> str:
    """The endpoint without a trailing slash; HubError unless it is an http(s) URL with a host and no
    credentials, query or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username
            or parts.password or parts.query or parts.fragment or not url.isascii() or any(c <= " " for c in url)):
        raise HubError(f"{ENDPOINT_ENV} must be an http(s) address such as {DEFAULT_ENDPOINT}, without a key, "
                       "query or spaces.")
    return url.rstrip("/")


def check_token(token: str | None) -> str | None:
    token = (token or "").strip()
    if not token:
        return None
    if not _TOKEN.fullmatch(token):
        raise HubError(f"{TOKEN_ENV} holds characters no token has (a space, a line break or a letter outside "
                       "ASCII): set it again.")
    return token


class Hub:
    """One endpoint, one token, one timeout; `model_info` and `download` raise HubError for every failure."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, token: str | None = None, timeout: float = 5.0):
        self.endpoint = check_endpoint(endpoint)
        self.host = urllib.parse.urlsplit(self.endpoint).netloc
        self._token = check_token(token)
        self.timeout = float(timeout)

    def model_info(self, repo_id: str, revision: str) -> RepoInfo:
        """The repo's files with sizes and hashes (the API's `blobs=true`), all within `timeout` seconds."""
        url = f"{self.endpoint}/api/models/{repo_id}/revision/{urllib.parse.quote(revision, safe='')}?blobs=true"

        def ask() -> bytes:
            with self._open(url, repo_id, revision=revision) as resp:
                return self._read_all(resp)

        raw = self._within(ask)
        try:
            data = json.loads(raw.decode("utf-8"))
            siblings = data["siblings"]
            files = {}
            for s in siblings:
                lfs = s.get("lfs") if isinstance(s.get("lfs"), dict) else {}
                size = lfs.get("size", s.get("size"))
                sha = lfs.get("sha256")
                files[str(s["rfilename"])] = RemoteFile(
                    name=str(s["rfilename"]), size=size if type(size) is int and size >= 0 else None,
                    sha256=sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None)
            commit = data.get("sha")
        except (UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
            raise HubError(f"The Hugging Face Hub's answer about {repo_id} is not the file list Glassbox "
                           "expects.") from None
        # A commit pins every download to the same files; without one (an odd server), the revision itself.
        return RepoInfo(repo_id, commit if isinstance(commit, str) and _COMMIT.fullmatch(commit) else revision,
                        files)

    def download(self, repo_id: str, commit: str, file: RemoteFile, dest: Path, cap: int,
                 on_bytes: Callable[[int], None] = lambda n: None) -> None:
        """Write `file` to `dest`, at most `cap` bytes (and exactly its listed size), calling on_bytes(n) as
        bytes arrive; a stalled transfer fails within two timeouts."""
        limit = cap if file.size is None else file.size
        if limit > cap:
            raise HubError(f"{file.name} in {repo_id} is {limit:,} bytes, more than the {cap:,} Glassbox allows.")
        url = (f"{self.endpoint}/{repo_id}/resolve/{urllib.parse.quote(commit, safe='')}/"
               f"{urllib.parse.quote(file.name)}")
        resp = self._within(lambda: self._open(url, repo_id, file=file.name))
        sha = hashlib.sha256() if file.sha256 else None
        done, window_t, window_done = 0, time.monotonic(), 0
        with resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise HubError(f"The Hub sent {file.name} larger than its file list says ({int(length):,} bytes, "
                               f"not {limit:,}); nothing was kept.")
            while True:
                try:
                    chunk = resp.read1(CHUNK)  # what has arrived, up to CHUNK: a drip cannot block past a timeout
                except TimeoutError:  # socket.timeout is TimeoutError
                    raise self._stalled(file.name) from None
                except (http.client.HTTPException, OSError):
                    raise HubError(f"The download of {file.name} broke off after {done:,} bytes; try again (nothing "
                                   "was kept).") from None
                if not chunk:
                    break
                done += len(chunk)
                if done > limit:
                    raise HubError(f"The Hub sent more of {file.name} than its file list says ({limit:,} bytes); "
                                   "nothing was kept.")
                out.write(chunk)
                if sha is not None:
                    sha.update(chunk)
                on_bytes(len(chunk))
                now = time.monotonic()
                if now - window_t >= self.timeout:
                    if done - window_done < min(STALL_BYTES, limit - window_done):
                        raise self._stalled(file.name)
                    window_t, window_done = now, done
        if file.size is not None and done != file.size:
            raise HubError(f"The download of {file.name} ended at {done:,} of {file.size:,} bytes; try again "
                           "(nothing was kept).")
        if sha is not None and sha.hexdigest() != file.sha256:
            raise HubError(f"{file.name} arrived corrupted (its SHA-256 does not match the Hub's); try again.")

    # --- the connection -------------------------------------------------------------------------------------

    def _stalled(self, name: str) -> HubError:
        return HubError(f"The download of {name} stalled (almost nothing arrived in {self.timeout:g} s); check "
                        "the network and try again (nothing was kept).")

    def _within(self, work: Callable[[], T]) -> T:
        """work() in a worker thread, waited for `timeout` seconds: a name lookup that hangs (getaddrinfo has no
        timeout) or a server that answers a byte at a time cannot hold the caller longer. A response that
        arrives after the caller gave up is closed by the worker."""
        box: dict[str, object] = {}
        lock, done = threading.Lock(), threading.Event()

        def run() -> None:
            try:
                result: tuple[str, object] = ("value", work())
            except BaseException as e:  # noqa: BLE001 - raised again in the caller
                result = ("error", e)
            with lock:
                if box.get("abandoned"):
                    if result[0] == "value" and hasattr(result[1], "close"):
                        result[1].close()
                    return
                box[result[0]] = result[1]
                done.set()

        threading.Thread(target=run, name="glassbox-hub", daemon=True).start()
        if not done.wait(self.timeout):
            with lock:
                if not done.is_set():
                    box["abandoned"] = True
                    raise Unreachable(f"no answer from {self.host} within {self.timeout:g} s")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    def _open(self, url: str, repo_id: str, revision: str | None = None,
              file: str | None = None) -> http.client.HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        if self._token:
            req.add_unredirected_header("Authorization", f"Bearer {self._token}")
        try:
            return _OPENER.open(req, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - every failure becomes one sentence
            raise self._failure(e, repo_id, revision, file) from None

    def _read_all(self, resp) -> bytes:
        """The file list's bytes, at most MAX_INFO_BYTES (the time bound is _within's)."""
        chunks, total = [], 0
        while True:
            try:
                chunk = resp.read1(65_536)
            except TimeoutError:  # socket.timeout is TimeoutError
                raise Unreachable(f"no answer from {self.host} within {self.timeout:g} s") from None
            except (http.client.HTTPException, OSError):
                raise Unreachable(f"the connection to {self.host} broke") from None
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > MAX_INFO_BYTES:
                raise HubError(f"The Hub's file list is larger than {MAX_INFO_BYTES >> 20} MB; Glassbox stopped "
                               "reading.")
            chunks.append(chunk)

    def _failure(self, e: BaseException, repo_id: str, revision: str | None, file: str | None) -> HubError:
        """One plain sentence for whatever urlopen raised."""
        if isinstance(e, urllib.error.HTTPError):
            code, status = e.headers.get("X-Error-Code", ""), e.code
            e.close()
            return self._http_error(status, code, repo_id, revision, file)
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(reason, socket.gaierror):
            why = f"the name {urllib.parse.urlsplit(self.endpoint).hostname} does not resolve"
        elif isinstance(reason, ConnectionRefusedError):
            why = f"{self.host} refused the connection"
        elif isinstance(reason, TimeoutError):
            why = f"no answer from {self.host} within {self.timeout:g} s"
        elif isinstance(reason, ssl.SSLError):
            why = f"a TLS error talking to {self.host}"
        elif isinstance(reason, http.client.HTTPException):
            why = f"{self.host} closed the connection without an answer"
        elif isinstance(reason, OSError):
            why = (reason.strerror or type(reason).__name__).lower()
        else:
            why = type(reason).__name__
        return Unreachable(why)

    def _http_error(self, status: int, code: str, repo_id: str, revision: str | None, file: str | None) -> HubError:
        if code == "RevisionNotFound":
            return HubError(f"{repo_id} has no revision {revision!r} on the Hugging Face Hub.")
        if code == "GatedRepo" or status == 403:
            return HubError(f"{repo_id} is gated on the Hugging Face Hub: accept its conditions on its Hub page, then "
                            f"set {TOKEN_ENV} to a token of that account.")
        if status in (401, 404) and (file is None or code == "RepoNotFound"):
            wrong = f"; {TOKEN_ENV} may also be wrong or expired" if self._token and status == 401 else ""
            return HubError(f"There is no model {repo_id} on the Hugging Face Hub, or it is private or gated: check "
                            f"the name (owner/name), or set {TOKEN_ENV} to a token that may read it{wrong}.")
        if status in (401, 404):
            return HubError(f"The Hub lists {file} in {repo_id} but did not serve it (HTTP {status}); try again later.")
        if status == 429:
            return HubError(f"The Hugging Face Hub is limiting requests (HTTP 429): wait a minute and try again, or "
                            f"set {TOKEN_ENV}.")
        if 300 <= status < 400:
            return HubError(f"The Hugging Face Hub redirected too often, or to an address that is not http(s) "
                            f"(HTTP {status}).")
        if status >= 500:
            return HubError(f"The Hugging Face Hub failed to answer (HTTP {status}); try again in a moment.")
        return HubError(f"The Hugging Face Hub answered HTTP {status} about {repo_id}.")
