"""A client for hosted models behind an OpenAI-compatible API (OpenAI's own, vLLM, llama.cpp's server, Ollama,
...): one completion, with the top candidate tokens and their log-probabilities at every step, parsed strictly.

Standard library only (urllib.request + json). A request has a timeout and a deadline for the whole answer,
reads at most `max_bytes`, and follows no redirect (urllib would carry the Authorization header to wherever the
redirect points). Every failure is one `HostedError` subclass whose message is a plain sentence: it never holds
the key, a request header, or text the server sent (an OpenAI 401 quotes part of the key back). The key is an
argument of `complete`, never stored, and nothing here logs headers or bodies.

The formats read:
- completions: POST {base}/completions with `logprobs: k` -> choices[0].text, choices[0].logprobs.tokens[i],
  .token_logprobs[i] and .top_logprobs[i] (a dict token -> logprob)
- chat: POST {base}/chat/completions with `logprobs: true, top_logprobs: k` -> choices[0].message.content,
  choices[0].logprobs.content[i].token / .logprob / .top_logprobs[] ({token, logprob})
- Anthropic's Messages API (POST {base}/messages) returns no log-probabilities: `complete` samples text from it
  and refuses a request for log-probabilities with NoLogprobs before sending anything.
"""
from __future__ import annotations

import http.client
import json
import logging
import math
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("glassbox.hosted")

API_KINDS = {  # api kind -> what the page calls it
    "chat": "OpenAI-compatible chat (/chat/completions)",
    "completions": "OpenAI-compatible completions (/completions)",
    "anthropic": "Anthropic Messages (/messages): no log-probabilities, samples only",
}
PATHS = {"chat": "/chat/completions", "completions": "/completions", "anthropic": "/messages"}
TIMEOUT_S = 8.0  # per request, the whole answer included
MAX_BYTES = 1_000_000  # an answer of 64 tokens x 20 candidates is ~100 KB; anything past this is refused
MAX_TOP = 20  # candidates per step: the most OpenAI's chat API gives (its completions API: 5)
MAX_TOKENS = 64  # tokens per answer: the page asks for short ones
ANTHROPIC_VERSION = "2023-06-01"
CONTINUE = "Continue the user's text. Reply with the continuation only: no preamble, no quotes."
_KEY = re.compile(r"[\x21-\x7e]{1,1000}")  # printable ASCII, no spaces: what every provider's keys are made of
_NO_CONTROL = re.compile(r"[^\x00-\x20\x7f]+")


class HostedError(Exception):
    """A hosted model could not answer. The message is one plain sentence for the user; no key, no server text."""


class InvalidEndpoint(HostedError):
    """The base URL, model id or API kind cannot be used (checked before anything is sent)."""


class BadKey(HostedError):
    """The server refused the key (HTTP 401 / 403), or the key cannot be a key."""


class Unreachable(HostedError):
    """No connection: nothing listens there, the name does not resolve, or there is no network."""


class TimedOut(HostedError):
    """The server did not answer in time."""


class RateLimited(HostedError):
    """HTTP 429: too many requests, or the account's quota is spent."""


class UnknownModel(HostedError):
    """HTTP 404 about the model: the server does not know this model id."""


class NotOffered(HostedError):
    """HTTP 404 about the path, or a redirect: the server has no such endpoint at this address."""


class Rejected(HostedError):
    """HTTP 400 / 413 / 422: the server refused the request itself."""


class ServerFailed(HostedError):
    """HTTP 5xx, or a status Glassbox does not know."""


class NoLogprobs(HostedError):
    """The API has no log-probabilities, or the server ignored the request for them."""


class Malformed(HostedError):
    """The answer is not the format asked for (the message names the field, never its content)."""


class TooLarge(HostedError):
    """The answer is bigger than `max_bytes`."""


@dataclass(frozen=True)
class Endpoint:
    """Where a hosted model is: the base URL up to its version (https://api.openai.com/v1), a model id the
    server knows, and which API it speaks. Holds no key, so it can be kept and shown."""
    base_url: str  # e.g. https://api.openai.com/v1, http://127.0.0.1:8000/v1
    model: str  # e.g. gpt-4o-mini, meta-llama/Llama-3.1-8B-Instruct, llama3.2:1b
    api: str = "chat"  # a key of API_KINDS

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + PATHS[self.api]

    @property
    def host(self) -> str:
        """scheme://host:port only: what messages name (a path or query could hold something private)."""
        parts = urllib.parse.urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")

    @property
    def has_logprobs(self) -> bool:
        return self.api != "anthropic"


@dataclass(frozen=True)
class Candidate:
    token: str  # as the server wrote it (its own tokenizer's piece, decoded)
    logprob: float  # natural log, <= 0

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True)
class HostedStep:
    """One generated token and the top candidates the server reported for its position, likeliest first."""
    token: str
    logprob: float | None  # None when the server gave the token but not its log-probability
    top: tuple[Candidate, ...]

    @property
    def reported(self) -> float:
        """Probability the listed candidates hold together; the rest the API does not report."""
        return min(1.0, sum(c.prob for c in self.top))


@dataclass(frozen=True)
class HostedCompletion:
    text: str  # the answer as text
    steps: tuple[HostedStep, ...]  # one per token; empty when the API returns no log-probabilities
    model: str  # the model the server says answered (often a dated version of the one asked for)
    finish_reason: str | None  # "length", "stop", ... as the server said


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


def request_body(endpoint: Endpoint, prompt: str, max_tokens: int, temperature: float, top: int,
                 instruction: str | None) -> dict[str, Any]:
    """The JSON body for one completion. `top` > 0 asks for that many candidates per step."""
    if endpoint.api == "completions":
        body: dict[str, Any] = {"model": endpoint.model, "prompt": prompt, "max_tokens": max_tokens,
                                "temperature": temperature, "n": 1}
        if top:
            body["logprobs"] = top
        return body
    messages = [{"role": "user", "content": prompt}]
    if endpoint.api == "anthropic":
        body = {"model": endpoint.model, "max_tokens": max_tokens, "temperature": temperature,
                "messages": messages}
        if instruction:
            body["system"] = instruction
        return body
    if instruction:
        messages.insert(0, {"role": "system", "content": instruction})
    body = {"model": endpoint.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
            "n": 1}
    if top:
        body.update(logprobs=True, top_logprobs=top)
    return body


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


def _constant(name: str) -> float:
    if name == "-Infinity":  # a log-probability of an impossible token; some servers send it
        return -math.inf
    raise ValueError(name)  # NaN and +Infinity are no probability


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


# --- strict parsing ---------------------------------------------------------------------------------------------

def _get(obj: Any, key: str, kind: type | tuple[type, ...], path: str, optional: bool = False) -> Any:
    if not isinstance(obj, dict):
        raise Malformed(f"The server's answer is not the format asked for: {path} is not an object.")
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise Malformed(f"The server's answer is not the format asked for: {path}.{key} is missing or of the "
                        "wrong type.")
    return value


def _logprob(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-3:
        raise Malformed(f"The server's answer is not the format asked for: {path} is not a log-probability.")
    return min(0.0, float(value))  # a rounding error can make a near-certain token's logprob a hair above 0


def _first_choice(data: Any) -> dict:
    choices = _get(data, "choices", list, "the answer")
    if not choices or not isinstance(choices[0], dict):
        raise Malformed("The server's answer is not the format asked for: it has no choices[0].")
    return choices[0]


def _step(token: str, logprob: float | None, top: list[Candidate], path: str, k: int) -> HostedStep:
    top = sorted(top, key=lambda c: -c.logprob)[:k] if k else []
    if sum(c.prob for c in top) > 1.001:
        raise Malformed(f"The server's answer does not add up: the candidates at {path} hold more than "
                        "probability 1.")
    return HostedStep(token, logprob, tuple(top))


def _parse_chat(data: Any, endpoint: Endpoint, max_tokens: int, k: int) -> HostedCompletion:
    choice = _first_choice(data)
    message = _get(choice, "message", dict, "choices[0]")
    text = _get(message, "content", str, "choices[0].message", optional=True) or ""
    steps = []
    logprobs = _get(choice, "logprobs", dict, "choices[0]", optional=True)
    content = _get(logprobs, "content", list, "choices[0].logprobs", optional=True) if logprobs else None
    for i, item in enumerate((content or [])[:max_tokens]):
        path = f"choices[0].logprobs.content[{i}]"
        top = []
        for j, cand in enumerate(_get(item, "top_logprobs", list, path, optional=True) or []):
            top.append(Candidate(_get(cand, "token", str, f"{path}.top_logprobs[{j}]"),
                                 _logprob(_get(cand, "logprob", (int, float), f"{path}.top_logprobs[{j}]"),
                                          f"{path}.top_logprobs[{j}].logprob")))
        steps.append(_step(_get(item, "token", str, path), _logprob(_get(item, "logprob", (int, float), path),
                                                                    f"{path}.logprob"), top, path, k))
    return HostedCompletion(text, tuple(steps), _model(data, endpoint), _finish(choice))


def _parse_completions(data: Any, endpoint: Endpoint, max_tokens: int, k: int) -> HostedCompletion:
    choice = _first_choice(data)
    text = _get(choice, "text", str, "choices[0]")
    steps = []
    logprobs = _get(choice, "logprobs", dict, "choices[0]", optional=True)
    if logprobs:
        path = "choices[0].logprobs"
        tokens = _get(logprobs, "tokens", list, path)
        tops = _get(logprobs, "top_logprobs", list, path, optional=True) or [None] * len(tokens)
        chosen = _get(logprobs, "token_logprobs", list, path, optional=True) or [None] * len(tokens)
        if len(tops) != len(tokens) or len(chosen) != len(tokens):
            raise Malformed(f"The server's answer is not the format asked for: {path} has lists of different "
                            "lengths.")
        for i, (token, top_i, lp) in enumerate(list(zip(tokens, tops, chosen))[:max_tokens]):
            if not isinstance(token, str) or not isinstance(top_i, (dict, type(None))):
                raise Malformed(f"The server's answer is not the format asked for: {path} entry {i} is of the "
                                "wrong type.")
            top = [Candidate(t, _logprob(v, f"{path}.top_logprobs[{i}]")) for t, v in (top_i or {}).items()]
            steps.append(_step(token, None if lp is None else _logprob(lp, f"{path}.token_logprobs[{i}]"), top,
                               f"{path}.top_logprobs[{i}]", k))
    return HostedCompletion(text, tuple(steps), _model(data, endpoint), _finish(choice))


def _parse_anthropic(data: Any, endpoint: Endpoint) -> HostedCompletion:
    blocks = _get(data, "content", list, "the answer")
    text = "".join(_get(b, "text", str, f"content[{i}]") for i, b in enumerate(blocks)
                   if isinstance(b, dict) and b.get("type") == "text")
    stop = data.get("stop_reason")
    return HostedCompletion(text, (), _model(data, endpoint), stop if isinstance(stop, str) else None)


def _model(data: dict, endpoint: Endpoint) -> str:
    model = data.get("model")
    return model[:200] if isinstance(model, str) and model else endpoint.model


def _finish(choice: dict) -> str | None:
    reason = choice.get("finish_reason")
    return reason[:40] if isinstance(reason, str) else None
