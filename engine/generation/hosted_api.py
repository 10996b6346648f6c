"""The formats of hosted models' APIs: what Glassbox sends and what it reads back, parsed strictly.

The data types (Endpoint, Candidate, HostedStep, HostedCompletion), the HostedError classes every failure is
one of, the request bodies, and the parsers of the answers. No network here: engine.generation.hosted posts the
bodies and hands the answers to these parsers. A parser refuses anything that is not the format asked for with
Malformed, whose message names the field, never its content (no text the server sent reaches the user).

The formats read:
- completions: POST {base}/completions with `logprobs: k` -> choices[0].text, choices[0].logprobs.tokens[i],
  .token_logprobs[i] and .top_logprobs[i] (a dict token -> logprob)
- chat: POST {base}/chat/completions with `logprobs: true, top_logprobs: k` -> choices[0].message.content,
  choices[0].logprobs.content[i].token / .logprob / .top_logprobs[] ({token, logprob})
- Anthropic's Messages API (POST {base}/messages) returns no log-probabilities: only its text is read.
"""
from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass
from typing import Any

API_KINDS = {  # api kind -> what the page calls it
    "chat": "OpenAI-compatible chat (/chat/completions)",
    "completions": "OpenAI-compatible completions (/completions)",
    "anthropic": "Anthropic Messages (/messages): no log-probabilities, samples only",
}
PATHS = {"chat": "/chat/completions", "completions": "/completions", "anthropic": "/messages"}
MAX_TOP = 20  # candidates per step: the most OpenAI's chat API gives (its completions API: 5)
CONTINUE = "Continue the user's text. Reply with the continuation only: no preamble, no quotes."


class HostedError(Exception):
    """A hosted model could not answer. The message is one plain sentence for the user; no key, no server text."""


class InvalidEndpoint(HostedError):
    """The base URL, model id or API kind cannot be used (checked before anything is sent)."""


class NotAllowed(InvalidEndpoint):
    """A visitor's endpoint resolves to an address only the server itself should reach (loopback, private, ...)."""


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
        name = parts.hostname or ""
        return f"{parts.scheme}://{f'[{name}]' if ':' in name else name}" + (f":{parts.port}" if parts.port else "")

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



def request_body(endpoint: Endpoint, prompt: str, max_tokens: int, temperature: float, top: int,
                 instruction: str | None, tokens: bool = False) -> dict[str, Any]:
    """The JSON body for one completion. `top` > 0 asks for that many candidates per step; `tokens` alone asks
    for the generated tokens and their log-probabilities, without candidates (what sampling needs)."""
    if endpoint.api == "completions":
        body: dict[str, Any] = {"model": endpoint.model, "prompt": prompt, "max_tokens": max_tokens,
                                "temperature": temperature, "n": 1}
        if top or tokens:
            body["logprobs"] = top  # 0: the generated tokens only (OpenAI, vLLM)
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
    if top or tokens:
        body["logprobs"] = True  # the generated tokens; top_logprobs adds the candidates at each
    if top:
        body["top_logprobs"] = top
    return body


# --- strict parsing ---------------------------------------------------------------------------------------------

def _constant(name: str) -> float:
    if name == "-Infinity":  # a log-probability of an impossible token; some servers send it
        return -math.inf
    raise ValueError(name)  # NaN and +Infinity are no probability


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
