"""Talking to NDIF: sending a job, asking after it, fetching its answer, and what NDIF serves now. nnsight does
the talking (its RemoteBackend, non-blocking: one POST, then polls), so the bytes on the wire are nnsight's own;
this module bounds it and says every failure in one sentence.

- Bounds: every call has a deadline (nnsight's own read timeout is ten minutes); an answer is fetched with a
  cap (GLASSBOX_NDIF_MAX_MB), counted as it arrives and as it is decompressed, and loaded building tensors
  and plain containers only (`load_answer`). nnsight itself loads answers with torch.load(weights_only=False),
  which runs whatever the bytes say: that is why the NDIF address is the host's setting and never a user's.
- Keys: the key goes in the `ndif-api-key` header to the host's NDIF address and nowhere else; no message,
  log line or exception here quotes it, and NDIF's own words are logged, never shown (they may quote a request).
- Failures (`NdifError.kind`): no key, wrong key, NDIF down or unreachable, the model not running, NDIF's queue
  too long, an answer over the cap, the time limit, NDIF refusing this client, the job failing on NDIF.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass

import torch

from ..model.cost import size_text
from .lib import import_nnsight
from .record import record

LOG = logging.getLogger("glassbox.ndif")
CONNECT_S, READ_S = 5.0, 20.0  # per HTTP call to NDIF; a job's own limit is GLASSBOX_NDIF_TIMEOUT_S
STATUS_S = 4.0  # the list of models: the sidebar waits for it
_timeouts_set = False

# What nnsight's statuses mean to a reader: received, queued, running, completed.
STAGES = {"RECEIVED": "received", "QUEUED": "queued", "PROVISIONING": "queued", "DEPLOYING": "queued",
          "DISPATCHED": "running", "RUNNING": "running", "COMPLETED": "completed", "ERROR": "failed"}


class NdifError(RuntimeError):
    """One sentence for the page; `kind` for code and tests."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _bound_nnsight() -> None:
    """nnsight's HTTP timeouts are module constants (10 s to connect, 600 s to read): bound them, once."""
    global _timeouts_set
    if not _timeouts_set:
        import_nnsight()
        from nnsight.intervention.backends import remote
        remote._CONNECT_TIMEOUT, remote._READ_TIMEOUT = CONNECT_S, READ_S
        _timeouts_set = True


def _backend_class():
    import_nnsight()
    from nnsight.intervention.backends.display import StatusDisplay
    from nnsight.intervention.backends.remote import RemoteBackend

    class Backend(RemoteBackend):
        """nnsight's non-blocking backend, quiet (no status line on the server's stdout), its answer capped and
        loaded as tensors only."""

        def __init__(self, *args, cap: int, **kwargs):
            super().__init__(*args, blocking=False, **kwargs)
            self.display = StatusDisplay(enabled=False)
            self.cap = cap

        def download_result(self, url):
            if isinstance(url, (bytes, bytearray)):
                return self.finalize(bytes(url))
            if not url:
                return None
            import httpx
            buffer = io.BytesIO()
            with httpx.Client(timeout=httpx.Timeout(CONNECT_S, read=READ_S)) as client:
                with client.stream("GET", url) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes(chunk_size=1 << 16):
                        buffer.write(chunk)
                        if buffer.tell() > self.cap:
                            raise NdifError("too_big", _too_big(self.cap))
            return self.finalize(buffer.getvalue())

        def finalize(self, content: bytes):
            if self.compress:
                import zstandard
                out = io.BytesIO()
                with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(content)) as reader:
                    while chunk := reader.read(1 << 20):  # a small answer may not unpack into a huge one
                        out.write(chunk)
                        if out.tell() > self.cap:
                            raise NdifError("too_big", _too_big(self.cap))
                content = out.getvalue()
            return load_answer(content)

    return Backend


def load_answer(content: bytes):
    """torch.load of an answer, building tensors and plain containers only: torch's own allowlist of what
    `weights_only=True` may build, with Python's unpickler underneath (torch's weights-only unpickler stops at
    pickle protocol 4's frames, which NDIF's answers use). Anything else in the bytes is refused."""
    import pickle
    import types

    from torch import _weights_only_unpickler as weights_only
    allowed = weights_only._get_allowed_globals()  # {"torch.Tensor": ..., "collections.OrderedDict": ...}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            found = allowed.get(f"{module}.{name}")
            if found is None:
                raise pickle.UnpicklingError(f"an NDIF answer may not hold {module[:60]}.{name[:60]}")
            return found

    tensors_only = types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__="pickle")
    try:
        return torch.load(io.BytesIO(content), map_location="cpu", weights_only=False, pickle_module=tensors_only)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise NdifError("failed", f"NDIF's answer could not be read as tensors ({str(e)[:120]}).") from None


def _too_big(cap: int) -> str:
    return (f"NDIF's answer was over the {size_text(cap)} this server takes per request: ask for less (a shorter "
            "text, fewer positions).")


@dataclass
class Job:
    """A job sent to NDIF: its backend (which holds the key until the job ends), and what it was at last."""
    backend: object
    stage: str = "received"
    sent_at: float = 0.0

    def forget_key(self) -> None:
        self.backend.api_key = ""


_sending = threading.Lock()  # one trace is built at a time: they share the model's nnsight wrapper


def send(model, ids: list[int], spec: dict, parts: dict, host: str, key: str, cap: int) -> Job:
    """Send one job (the nnsight trace of engine/remote/record.py) to NDIF. Raises NdifError."""
    if not key:
        raise NdifError("no_key", "NDIF needs an API key: the host sets NDIF_API_KEY, or type yours in the sidebar "
                                  "(free at login.ndif.us).")
    _bound_nnsight()
    backend = _backend_class()(model.model_key(), host=host, api_key=key, env=model.env(), cap=cap)
    sent = time.monotonic()
    try:
        with _sending:
            record(model.nnsight, ids, spec, parts, backend=backend)
    except NdifError:
        raise
    except Exception as e:  # noqa: BLE001 - nnsight raises RemoteError, httpx errors, ValueError
        raise _failure(e, host, key) from None
    return Job(backend, STAGES.get(getattr(backend.status, "value", ""), "received"), sent)


def ask(job: Job) -> dict | None:
    """Ask after a job: its answer (the job's tensors) once completed, else None, with `job.stage` updated.
    Raises NdifError when it failed."""
    try:
        answer = job.backend.poll()
    except NdifError:
        raise
    except Exception as e:  # noqa: BLE001
        raise _failure(e, job.backend.host, job.backend.api_key) from None
    status = getattr(job.backend.status, "value", None)
    if status in STAGES:
        job.stage = STAGES[status]
    if answer is None:
        return None
    saved = answer.get("answer") if isinstance(answer, dict) else None
    if not isinstance(saved, dict):
        raise NdifError("failed", "NDIF's answer is not what Glassbox asked for.")
    return saved


def _failure(e: Exception, host: str, key: str = "") -> NdifError:
    """An exception from nnsight or httpx, as one sentence (NDIF's own words go to the log only, without the
    key, should a server ever quote it back)."""
    import httpx

    def logged(words: str) -> str:
        return words.replace(key, "[the key]") if key else words

    cause = e.__cause__ if e.__cause__ is not None else e
    if isinstance(cause, httpx.HTTPStatusError):
        code = cause.response.status_code
        LOG.warning("NDIF answered HTTP %s: %s", code, logged(cause.response.text[:300]))
        if code in (401, 403):
            return NdifError("wrong_key", "NDIF did not accept the API key: check it (keys are at login.ndif.us).")
        if code == 429:
            return NdifError("queue", "NDIF is taking too many requests right now: try again in a minute.")
        if code == 400 and "version" in cause.response.text.lower():
            return NdifError("refused", "NDIF refused this server's Python or nnsight version: it runs requests "
                                        "only from the versions its own servers use.")
        if code >= 500:
            return NdifError("down", f"NDIF is down or overloaded right now (it answered HTTP {code}); the local "
                                     "models still work.")
        return NdifError("refused", f"NDIF refused the request (HTTP {code}).")
    if isinstance(cause, (httpx.TimeoutException, httpx.TransportError)):
        return NdifError("down", f"NDIF could not be reached at {host} ({type(cause).__name__}); the local models "
                                 "still work.")
    text = str(e)
    LOG.warning("NDIF job failed: %s", logged(text[:500]))
    words = text.lower()
    if any(w in words for w in ("not dedicated", "hotswapping", "accomodated", "accommodated", "evicted",
                                "provisioning", "not running", "not deployed")):
        return NdifError("not_running", "NDIF is not running this model right now (its list of running models is "
                                        "in the sidebar): pick another, or try later.")
    if "timeout" in words or "took longer" in words:
        return NdifError("time_limit", "The job ran past NDIF's own time limit: shorten the text.")
    if "out of memory" in words:
        return NdifError("failed", "The job ran out of memory on NDIF: shorten the text.")
    return NdifError("failed", "The job failed on NDIF; the details are in this server's log.")


# --- what NDIF serves now ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deployment:
    repo_id: str
    revision: str | None
    state: str  # "RUNNING", "DEPLOYING", ... (NDIF's words); a model not listed is not running


def running(host: str, timeout: float = STATUS_S) -> dict[str, Deployment]:
    """NDIF's language models that are up (HOT or WARM), by repo id, from its /status call. NdifError("down") if it
    cannot be reached or answers nonsense."""
    import httpx
    try:
        response = httpx.get(f"{host}/status", timeout=httpx.Timeout(timeout))
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as e:
        raise NdifError("down", f"NDIF could not be reached at {host} ({type(e).__name__}).") from None
    deployments = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(deployments, dict):
        raise NdifError("down", "NDIF's list of models is not what Glassbox expects.")
    found: dict[str, Deployment] = {}
    for name, d in list(deployments.items())[:500]:
        if not isinstance(d, dict) or d.get("deployment_level") not in ("HOT", "WARM"):
            continue
        key = str(d.get("model_key") or "")
        if key and "TransformersModel" not in key and "LanguageModel" not in key:
            continue  # diffusion, vision: not a language model's key
        if d.get("trust_remote_code"):
            continue  # Glassbox never builds a model from its own code
        repo = str(d.get("repo_id") or name)[:200]
        state = str(d.get("application_state") or "UNHEALTHY")[:40]
        if repo not in found or found[repo].state != "RUNNING":
            found[repo] = Deployment(repo, d.get("revision") if isinstance(d.get("revision"), str) else None, state)
    return found
