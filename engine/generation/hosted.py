"""A client for hosted models behind an OpenAI-compatible API (OpenAI's own, vLLM, llama.cpp's server, Ollama,
...) or Anthropic's: one completion, with the top candidate tokens and their log-probabilities at every step.

This module is the client: it checks the endpoint and the key, sends the request and maps every failure to a
plain message; engine.generation.hosted_api holds the formats (the data types, the HostedError classes, the
request bodies and the strict parsers), and everything public there is importable from here too.

Standard library only. engine.generation.hosted_net sends the request: an endpoint a visitor typed reaches public
addresses only (checked, then connected to, unless `allow_private`), one deadline covers the whole request, at
most `max_bytes` are read, and no redirect is followed (it would carry the key to wherever it points). Every
failure is one `HostedError` subclass whose message is a plain sentence: it never holds the key, a request
header, or text the server sent (an OpenAI 401 quotes part of the key back). The key is an argument of
`complete`, never stored, and nothing here logs headers or bodies. Anthropic's Messages API returns no
log-probabilities: `complete` samples text from it and refuses a request for log-probabilities with NoLogprobs
before sending anything.
"""
from __future__ import annotations

import json
import logging
import re
import urllib.parse
from typing import Any

from .. import settings
from . import hosted_net
from .hosted_api import (API_KINDS, CONTINUE, MAX_TOP, PATHS, BadKey, Candidate, Endpoint, HostedCompletion,
                         HostedError, HostedStep, InvalidEndpoint, Malformed, NoLogprobs, NotAllowed, NotOffered,
                         RateLimited, Rejected, ServerFailed, TimedOut, TooLarge, UnknownModel, Unreachable,
                         _constant, _parse_anthropic, _parse_chat, _parse_completions, request_body)

__all__ = ["API_KINDS", "ANTHROPIC_VERSION", "CONTINUE", "LOG", "MAX_BYTES", "MAX_TOKENS", "MAX_TOP", "PATHS",
           "TIMEOUT_S", "BadKey", "Candidate", "Endpoint", "HostedCompletion", "HostedError", "HostedStep",
           "InvalidEndpoint", "Malformed", "NoLogprobs", "NotAllowed", "NotOffered", "RateLimited", "Rejected",
           "ServerFailed", "TimedOut", "TooLarge", "UnknownModel", "Unreachable", "check_endpoint", "check_key",
           "complete", "request_body"]

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


def complete(endpoint: Endpoint, key: str | None, prompt: str, *, max_tokens: int = 1, temperature: float = 1.0,
             top: int = 0, tokens: bool = False, need_logprobs: bool = True, instruction: str | None = None,
             allow_private: bool = False, timeout_s: float = TIMEOUT_S,
             max_bytes: int = MAX_BYTES) -> HostedCompletion:
    """One completion of `prompt`, at most `max_tokens` tokens at `temperature`, with the `top` most likely
    candidates at every step (0: none asked for; `tokens`: the generated tokens without candidates). Without
    them in the answer it raises NoLogprobs, unless `need_logprobs` is False (then `steps` may be empty).
    `instruction` is a system message for chat and Anthropic (completions continue the prompt as it is).
    `allow_private`: the endpoint may be a loopback or private address (the host's own endpoint, or a host
    that allows local servers); without it, an endpoint that resolves to one is refused with NotAllowed before
    anything is sent. Raises a HostedError subclass for every failure."""
    check_endpoint(endpoint)
    key = check_key(key)
    max_tokens, top = max(1, min(int(max_tokens), MAX_TOKENS)), max(0, min(int(top), MAX_TOP))
    if (top or tokens) and not endpoint.has_logprobs:
        if top and need_logprobs:
            raise NoLogprobs("Anthropic's Messages API does not return log-probabilities, so Glassbox cannot "
                             "show this model's probabilities. It can still sample its answers.")
        top, tokens = 0, False
    body = request_body(endpoint, prompt, max_tokens, float(temperature), top, instruction, tokens)
    data = _post(endpoint, key, body, timeout_s, max_bytes, top, allow_private)
    if endpoint.api == "anthropic":
        return _parse_anthropic(data, endpoint)
    parse = _parse_chat if endpoint.api == "chat" else _parse_completions
    done = parse(data, endpoint, max_tokens, top)
    if top and need_logprobs and not any(s.top for s in done.steps):
        raise NoLogprobs("The server answered but sent no log-probabilities: it ignores the request for them "
                         "(some servers and models do). Sampled answers still work.")
    return done


# --- the request --------------------------------------------------------------------------------------------

def _post(endpoint: Endpoint, key: str | None, body: dict, timeout_s: float, max_bytes: int, top: int,
          allow_private: bool) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "glassbox"}
    if endpoint.api == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    status, raw = hosted_net.post(endpoint.url, headers, json.dumps(body).encode(), where=endpoint.host,
                                  timeout_s=timeout_s, public_only=not allow_private, max_bytes=max_bytes)
    if not 200 <= status < 300:
        LOG.warning("Glassbox: hosted model at %s answered HTTP %s", endpoint.host, status)
        raise _http_error(endpoint, status, raw, key is not None, top)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[... nested past Python's stack
        raise Malformed("The server's answer is not JSON, so it is not the OpenAI format Glassbox reads.") from None


def _http_error(endpoint: Endpoint, status: int, detail: bytes, had_key: bool, top: int) -> HostedError:
    """One exception per status. The server's error text is read only to tell what it refused (a missing model,
    a missing path, a chat template, ...), and never shown."""
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
    said = _said(detail)
    if status in (400, 404, 422) and _about_model(said):
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
        for words, reason in _REFUSALS:
            if any(w in said for w in words):
                return Rejected(f"The server refused the request (HTTP {status}): {reason}.")
        fewer = ", or list fewer candidates" if top else ""
        return Rejected(f"The server refused the request (HTTP {status}) for a reason Glassbox does not recognise: "
                        f"check the model id and the API kind{fewer}.")
    if status >= 500:
        return ServerFailed(f"The server failed to answer (HTTP {status}); try again in a moment.")
    return ServerFailed(f"The server answered HTTP {status}, which Glassbox does not understand.")


# What a server's refusal (HTTP 400 or 422) is about, told by words in its error and said in Glassbox's own words:
# the server's text is never shown, since it can echo the request or the key. The first match wins.
_REFUSALS = (
    (("chat template", "chat_template"),
     "this model seems to have no chat template, so it cannot take chat messages; choose the completions API kind"),
    (("context length", "context_length", "context window", "maximum context", "max_model_len", "too long",
      "too many tokens"), "the text is longer than this model can read; try a shorter one"),
    (("top_logprobs", "logprobs"),
     "it gives no log-probabilities, or not for this many candidates a token (OpenAI's completions endpoint gives "
     "5 at most); list fewer candidates, or only sample answers"),
    (("max_tokens", "max_completion_tokens"),
     "this model does not take the max_tokens option Glassbox sends to keep answers short"),
    (("temperature",), "it does not take this temperature; try one between 0 and 1"),
    (("system message", "system role", "'system'", '"system"'),
     "this model takes no system message; turn off \"Ask it to continue the text\""),
)


def _said(detail: bytes) -> str:
    """The words of an error body, lower-cased, to classify it and never to show it: every string in its JSON
    (OpenAI's error code, type, param and message; FastAPI's detail), or else the text itself."""
    try:
        stack, words = [json.loads(detail.decode("utf-8"))], []
    except (UnicodeDecodeError, ValueError, RecursionError):
        return detail[:4000].decode("utf-8", "replace").lower()
    while stack and len(words) < 100:  # iterative: the body may be nested deeply
        node = stack.pop()
        if isinstance(node, str):
            words.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node[:20])
    return " ".join(words)[:4000].lower()


def _about_model(said: str) -> bool:
    """Whether an error says the model is unknown (OpenAI: code model_not_found; vLLM, Ollama: a message naming
    the model; transformers serve: "Server is pinned to X; requested Y")."""
    if "pinned to" in said and "requested" in said:
        return True
    return "model" in said and any(w in said for w in ("not found", "not_found", "does not exist", "unknown",
                                                        "no such"))
