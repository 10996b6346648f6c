"""A client for hosted models behind an OpenAI-compatible API (OpenAI's own, vLLM, llama.cpp's server, Ollama,
...) or Anthropic's: one completion, with the top candidate tokens and their log-probabilities at every step.

This module is the transport: it checks the endpoint and the key, posts the request and maps every failure to a
plain message; engine.generation.hosted_api holds the formats (the data types, the HostedError classes, the
request bodies and the strict parsers), and everything public there is importable from here too.

Standard library only (urllib.request + json). A request has a timeout and a deadline for the whole answer,
reads at most `max_bytes`, and follows no redirect (urllib would carry the Authorization header to wherever the
redirect points). Every failure is one `HostedError` subclass whose message is a plain sentence: it never holds
the key, a request header, or text the server sent (an OpenAI 401 quotes part of the key back). The key is an
argument of `complete`, never stored, and nothing here logs headers or bodies. Anthropic's Messages API returns
no log-probabilities: `complete` samples text from it and refuses a request for log-probabilities with
NoLogprobs before sending anything.
"""
from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .. import settings
from .hosted_api import (API_KINDS, CONTINUE, MAX_TOP, PATHS, BadKey, Candidate, Endpoint, HostedCompletion,
                         HostedError, HostedStep, InvalidEndpoint, Malformed, NoLogprobs, NotOffered, RateLimited,
                         Rejected, ServerFailed, TimedOut, TooLarge, UnknownModel, Unreachable, _constant,
                         _parse_anthropic, _parse_chat, _parse_completions, request_body)

__all__ = ["API_KINDS", "ANTHROPIC_VERSION", "CONTINUE", "LOG", "MAX_BYTES", "MAX_TOKENS", "MAX_TOP", "PATHS",
           "TIMEOUT_S", "BadKey", "Candidate", "Endpoint", "HostedCompletion", "HostedError", "HostedStep",
           "InvalidEndpoint", "Malformed", "NoLogprobs", "NotOffered", "RateLimited", "Rejected", "ServerFailed",
           "TimedOut", "TooLarge", "UnknownModel", "Unreachable", "check_endpoint", "check_key", "complete",
           "request_body"]

LOG = logging.getLogger("glassbox.hosted")

TIMEOUT_S = settings.DEFAULTS.hosted_timeout_s  # per request, the whole answer included (8 s)
MAX_BYTES = 1_000_000  # an answer of 64 tokens x 20 candidates is ~100 KB; anything past this is refused
MAX_TOKENS = 64  # tokens per answer: the page asks for short ones
ANTHROPIC_VERSION = "2023-06-01"
_KEY = re.compile(r"[\x21-\x7e]{1,1000}")  # printable ASCII, no spaces: what every provider's keys are made of
_NO_CONTROL = re.compile(r"[^\x00-\x20\x7f]+")


def check_endpoint(endpoint: Endpoint) -> None:
    """Raise InvalidEndpoint unless the endpoint is an http(s) URL with a host, no credentials, query or
    fragment, and a model id without spaces or control characters."""
    if endpoint.api not in API_KINDS:
        raise InvalidEndpoint(f"The API kind must be one of: {', '.join(API_KINDS)}.")
    url = endpoint.base_url
    if not url or len(url) > 2000 or not _NO_CONTROL.fullmatch(url) or not url.isascii():
        raise InvalidEndpoint("The base URL must be one line of plain ASCII without spaces, e.g. "
                              "https://api.openai.com/v1 (write an international domain name as xn--...).")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidEndpoint("The base URL is not a valid URL, e.g. https://api.openai.com/v1.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidEndpoint("The base URL must start with http:// or https:// and name a host, "
                              "e.g. https://api.openai.com/v1.")
    if parts.username is not None or parts.password is not None:
        raise InvalidEndpoint("The base URL must not hold a user name or key: put the key in the key field.")
    if parts.query or parts.fragment:
        raise InvalidEndpoint("The base URL must not have a ?query or #fragment: a scheme, host and path only.")
    if not endpoint.model or len(endpoint.model) > 200 or not _NO_CONTROL.fullmatch(endpoint.model):
        raise InvalidEndpoint("The model id must be one word without spaces, e.g. gpt-4o-mini.")


def check_key(key: str | None) -> str | None:
    """The key without surrounding whitespace (a pasted key often ends in a line break), or None for no key.
    Raises BadKey for a key with spaces, line breaks or non-ASCII letters inside, which http.client would
    otherwise refuse with the whole header, key and all, in its message."""
    key = (key or "").strip()
    if not key:
        return None
    if not _KEY.fullmatch(key):
        raise BadKey("The API key holds characters no API key has (a space, a line break or a letter outside "
                     "ASCII): paste it again.")
    return key


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None  # urllib then raises HTTPError with the 3xx status


# Proxies still come from the environment (HTTPS_PROXY, NO_PROXY): that is the host's own choice.
_OPENER = urllib.request.build_opener(_NoRedirect())


def complete(endpoint: Endpoint, key: str | None, prompt: str, *, max_tokens: int = 1, temperature: float = 1.0,
             top: int = 0, need_logprobs: bool = True, instruction: str | None = None,
             timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> HostedCompletion:
    """One completion of `prompt`, at most `max_tokens` tokens at `temperature`, with the `top` most likely
    candidates at every step (0: none asked for). Without them in the answer it raises NoLogprobs, unless
    `need_logprobs` is False (then `steps` may be empty). `instruction` is a system message for chat and
    Anthropic (completions continue the prompt as it is). Raises a HostedError subclass for every failure."""
    check_endpoint(endpoint)
    key = check_key(key)
    max_tokens, top = max(1, min(int(max_tokens), MAX_TOKENS)), max(0, min(int(top), MAX_TOP))
    if top and not endpoint.has_logprobs:
        if need_logprobs:
            raise NoLogprobs("Anthropic's Messages API does not return log-probabilities, so Glassbox cannot "
                             "show this model's probabilities. It can still sample its answers.")
        top = 0
    body = request_body(endpoint, prompt, max_tokens, float(temperature), top, instruction)
    data = _post(endpoint, key, body, timeout_s, max_bytes, top)
    if endpoint.api == "anthropic":
        return _parse_anthropic(data, endpoint)
    parse = _parse_chat if endpoint.api == "chat" else _parse_completions
    done = parse(data, endpoint, max_tokens, top)
    if top and need_logprobs and not any(s.top for s in done.steps):
        raise NoLogprobs("The server answered but sent no log-probabilities: it ignores the request for them "
                         "(some servers and models do). Sampled answers still work.")
    return done


# --- the request --------------------------------------------------------------------------------------------

def _post(endpoint: Endpoint, key: str | None, body: dict, timeout_s: float, max_bytes: int, top: int) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "glassbox"}
    if endpoint.api == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(endpoint.url, data=json.dumps(body).encode(), headers=headers, method="POST")
    deadline = time.monotonic() + timeout_s
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            raw = _read(resp, max_bytes, deadline, endpoint, timeout_s)
    except urllib.error.HTTPError as e:
        try:
            detail = _read(e, 64_000, deadline, endpoint, timeout_s)
        except HostedError:
            detail = b""
        finally:
            e.close()
        LOG.warning("Glassbox: hosted model at %s answered HTTP %s", endpoint.host, e.code)
        raise _http_error(endpoint, e.code, detail, key is not None, top) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            raise _timed_out(endpoint, timeout_s) from None
        LOG.warning("Glassbox: hosted model at %s unreachable (%s)", endpoint.host, type(e.reason).__name__)
        raise Unreachable(f"Could not reach {endpoint.host}: nothing answers there, the name does not resolve, "
                          "or this server has no network.") from None
    except (TimeoutError, socket.timeout):
        raise _timed_out(endpoint, timeout_s) from None
    except (http.client.HTTPException, OSError) as e:  # the connection broke half way
        LOG.warning("Glassbox: hosted model at %s broke the connection (%s)", endpoint.host, type(e).__name__)
        raise Unreachable(f"The connection to {endpoint.host} broke before the answer was complete.") from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[... nested past Python's stack
        raise Malformed("The server's answer is not JSON, so it is not the OpenAI format Glassbox reads.") from None


def _timed_out(endpoint: Endpoint, timeout_s: float) -> TimedOut:
    LOG.warning("Glassbox: hosted model at %s timed out after %gs", endpoint.host, timeout_s)
    return TimedOut(f"{endpoint.host} did not answer within {timeout_s:g} seconds; try again, or a smaller model.")


def _read(resp, max_bytes: int, deadline: float, endpoint: Endpoint, timeout_s: float) -> bytes:
    """The body, at most max_bytes, by the deadline. read1 returns what has arrived, so a server that drips
    a byte at a time cannot hold the request past the deadline."""
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"The server's answer is larger than {max_bytes:,} bytes; Glassbox does not read it.")
    chunks, total = [], 0
    while True:
        chunk = resp.read1(65_536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"The server's answer is larger than {max_bytes:,} bytes; Glassbox stopped reading.")
        if time.monotonic() > deadline:
            raise _timed_out(endpoint, timeout_s)
        chunks.append(chunk)



def _http_error(endpoint: Endpoint, status: int, detail: bytes, had_key: bool, top: int) -> HostedError:
    """One exception per status. The server's error text is read only to tell a missing model from a missing
    path, and never shown."""
    if status == 401:
        if not had_key:
            return BadKey("The server wants an API key (HTTP 401): type yours in the key field.")
        return BadKey("The server refused the API key (HTTP 401). Check that it is right and belongs to this "
                      "server; Glassbox never shows or keeps it.")
    if status == 403:
        return BadKey("The key is not allowed to use this model or endpoint (HTTP 403).")
    if status == 429:
        return RateLimited("The server says too many requests, or the account's quota is used up (HTTP 429). "
                           "Wait a minute, or check the quota with the provider.")
    if status in (400, 404, 422) and _about_model(detail):
        return UnknownModel(f"The server does not know the model {endpoint.model!r} (HTTP {status}). "
                            "Check the model id.")
    if status == 404:
        return NotOffered(f"Not found (HTTP 404): the server has no {PATHS[endpoint.api]} at this address, or no "
                          f"model {endpoint.model!r}. Check the base URL (it usually ends in /v1) and the model id, "
                          "or try the other API kind.")
    if 300 <= status < 400:
        return NotOffered(f"The server answered with a redirect (HTTP {status}). Glassbox follows none, so a key "
                          "goes only to the address given: use the address it redirects to as the base URL.")
    if status in (408, 504):
        return TimedOut(f"{endpoint.host} gave up waiting for the model (HTTP {status}); try again.")
    if status == 413:
        return Rejected("The text is too long for this server (HTTP 413): try a shorter one.")
    if status in (400, 422):
        many = (f" it may allow fewer than {top} candidates per token (OpenAI's completions endpoint allows 5), or"
                if top else "")
        return Rejected(f"The server rejected the request (HTTP {status}):{many} the model may not offer this API "
                        "kind or one of the options Glassbox sends.")
    if status >= 500:
        return ServerFailed(f"The server failed to answer (HTTP {status}); try again in a moment.")
    return ServerFailed(f"The server answered HTTP {status}, which Glassbox does not understand.")


def _about_model(detail: bytes) -> bool:
    """Whether an error body says the model is unknown (OpenAI: code model_not_found; vLLM, Ollama: a message
    naming the model)."""
    try:
        err = json.loads(detail.decode("utf-8")).get("error")
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return False
    if isinstance(err, str):
        err = {"message": err}
    if not isinstance(err, dict):
        return False
    said = f"{err.get('code', '')} {err.get('type', '')} {err.get('message', '')}".lower()
    return "model" in said and any(w in said for w in ("not found", "not_found", "does not exist", "unknown",
                                                        "no such"))

