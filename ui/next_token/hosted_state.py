"""The hosted-model section's state: where this session's requests go, with whose key, how many a minute, and
the answers kept for drawing (ui.next_token.hosted draws them). The client is engine.generation.hosted (no
Streamlit). Where the endpoint and the key come from:

- the host: GLASSBOX_HOSTED_BASE_URL, GLASSBOX_HOSTED_MODEL, GLASSBOX_HOSTED_API (chat, completions or
  anthropic) and GLASSBOX_HOSTED_API_KEY, as environment variables or top-level entries of
  .streamlit/secrets.toml. The host's key is read for each request and never enters the session; it is sent
  only to the host's base URL with the host's model, so nobody can point it at another server.
- a user: an API kind, base URL and model id, and a key typed into a password field. The typed key lives only
  in that widget's session state (KEY): it is never copied to another session key, the URL, a log line, a
  message or a file, and Streamlit drops it when the user leaves the page. GLASSBOX_HOSTED_USER_ENDPOINTS=0
  turns typed endpoints off. A typed endpoint reaches public addresses only (engine.generation.hosted_net checks
  every address its name resolves to, then connects to a checked one), unless GLASSBOX_HOSTED_ALLOW_PRIVATE=1:
  for a laptop whose user runs a local server (Ollama, vLLM, llama.cpp) beside the app.

Limits per session: GLASSBOX_HOSTED_PER_MINUTE requests a minute (default 20; N samples are N requests), at most
GLASSBOX_HOSTED_MAX_SAMPLES samples per click (default 10), GLASSBOX_HOSTED_TIMEOUT_S seconds per request (8).
Nothing is sent until a button is pressed. Every one of these is a row of engine/settings.py, which reads and
checks them; this module passes it the secrets.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from engine import settings
from engine.generation import hosted as client
from engine.generation.hosted import API_KINDS, Endpoint, HostedCompletion, HostedError

from ..text import md
from .state import PAGE

ENV = settings.HOSTED_PREFIX  # every setting's prefix
KEY = PAGE.key("hosted_key")  # widget key: a typed API key, the only place it is held
CALLS = PAGE.key("hosted_calls")  # session key: times (monotonic) of this session's requests in the last minute
ANSWER = PAGE.key("hosted_answer")  # session key: the last answer with candidates, and what it was for
SAMPLES = PAGE.key("hosted_samples")  # session key: the last N samples, and what they were for
REFUSED = PAGE.key("hosted_refused")  # session key: why the last click sent nothing (the rate limit)
VIEW = PAGE.key("hosted_view")  # widget key: the step of the answer shown
ANSWER_TOKENS = 12  # tokens of the answer stepped through
SAMPLE_TOKENS = 12  # tokens per sampled answer


@dataclass(frozen=True)
class Limits:
    per_minute: int  # requests per session per minute
    max_samples: int  # samples per click
    timeout_s: float  # per request


@dataclass(frozen=True)
class Target:
    """Where this session's requests go, and whose key they carry (the key itself is looked up per request)."""
    endpoint: Endpoint
    host_key: bool  # True: the host's key from the environment or secrets; False: the key typed in KEY


def hosted_settings() -> settings.Settings:
    """The settings, with GLASSBOX_HOSTED_* from st.secrets where the environment leaves them unset."""
    try:
        secrets = {k: v for k, v in st.secrets.items() if k.startswith(ENV)}
    except Exception:  # no secrets file, or one that does not parse: there are no secrets
        secrets = {}
    return settings.current(secrets)


def limits() -> Limits:
    s = hosted_settings()
    return Limits(s.hosted_per_minute, max_samples=min(s.hosted_per_minute, s.hosted_max_samples),
                  timeout_s=s.hosted_timeout_s)


def allow_private() -> bool:
    """GLASSBOX_HOSTED_ALLOW_PRIVATE=1: typed endpoints may be loopback or private addresses (a local server).
    Off by default: on a shared server they would reach what only the server can reach (its other services,
    the cloud's metadata). The host's own endpoint is trusted either way."""
    return hosted_settings().hosted_allow_private


def host_endpoint() -> Endpoint | None:
    """The endpoint the host configured, or None."""
    s = hosted_settings()
    if not s.hosted_base_url:
        return None
    return Endpoint(s.hosted_base_url, s.hosted_model, s.hosted_api)  # check_endpoint says what is wrong


def _key(target: Target) -> str | None:
    if target.host_key:
        return hosted_settings().hosted_api_key or None
    return st.session_state.get(KEY) or None


def _spend(n: int, lim: Limits) -> bool:
    """Take n requests from this session's budget for the minute; False (and the reason kept) if it has not
    enough left, and then nothing is taken."""
    now = time.monotonic()
    calls = [t for t in st.session_state.get(CALLS, []) if now - t < 60]
    if len(calls) + n > lim.per_minute:
        free_at = calls[len(calls) + n - lim.per_minute - 1] if n <= lim.per_minute else now
        left = lim.per_minute - len(calls)
        st.session_state[REFUSED] = (
            f"This session may send {lim.per_minute} requests a minute to the hosted model and has {max(0, left)} "
            f"left; this needs {n}. Try again in {max(1, round(60 - (now - free_at)))} s.")
        st.session_state[CALLS] = calls
        return False
    st.session_state[CALLS] = calls + [now] * n
    return True


def _refund(n: int) -> None:
    """Give back n requests taken by `_spend` that were never sent."""
    if n > 0:
        st.session_state[CALLS] = st.session_state.get(CALLS, [])[:-n]


def _forget_results() -> None:
    """A new endpoint or key: the answers shown came from the old one."""
    st.session_state.pop(ANSWER, None)
    st.session_state.pop(SAMPLES, None)


def _forget_key() -> None:
    st.session_state[KEY] = ""
    _forget_results()


def endpoint_form() -> Target | None:
    """The host's endpoint, or the user's own (API kind, base URL, model, key); None until one is complete."""
    host, own_allowed = host_endpoint(), hosted_settings().hosted_user_endpoints
    if host is not None:
        source = "host"
        if own_allowed:
            source = st.radio("Hosted model", ("host", "own"), horizontal=True,
                              format_func={"host": f"{host.model} (set up by this app's host)",
                                           "own": "my own endpoint and key"}.get,
                              **PAGE.remembered("hosted_source", "host", ("host", "own"), _forget_results))
        if source == "host":
            st.caption(f"{md(host.model)} through the {md(API_KINDS.get(host.api, host.api))} API. The host's key "
                       "stays on the server: it is never sent to your browser, and goes only to the host's endpoint.")
            return Target(host, host_key=True)
    elif not own_allowed:
        return None
    c = st.columns([1.4, 1.4, 1])
    api = c[0].selectbox("API kind", tuple(API_KINDS), format_func=API_KINDS.get,
                         **PAGE.remembered("hosted_api", "chat", tuple(API_KINDS), _forget_results))
    url = c[1].text_input("Base URL", placeholder="https://api.openai.com/v1",
                          help="Up to and including the version: https://api.openai.com/v1, "
                               "http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM). A local or "
                               "private address works only where the app's host allows it "
                               "(GLASSBOX_HOSTED_ALLOW_PRIVATE=1).",
                          **PAGE.remembered("hosted_url", "", then=_forget_results))
    model = c[2].text_input("Model id", placeholder="gpt-4o-mini",
                            **PAGE.remembered("hosted_model", "", then=_forget_results))
    k = st.columns([2.8, 1])
    k[0].text_input("API key (held in this browser session's memory only)", type="password", key=KEY,
                    autocomplete="off", on_change=_forget_results,
                    placeholder="sk-…  (leave empty for a local server without keys)",
                    help="Sent only to the base URL above, with each request. Never written to disk, a log, "
                         "the URL or a message; forgotten when you leave this page or close the tab.")
    k[1].button("Forget my key", key=PAGE.key("hosted_forget"), on_click=_forget_key,
                disabled=not st.session_state.get(KEY), width="stretch")
    if not (url or "").strip() or not (model or "").strip():
        return None
    return Target(Endpoint(url.strip(), model.strip(), api), host_key=False)


def _send(target: Target, prompt: str, lim: Limits, **kw) -> HostedCompletion:
    return client.complete(target.endpoint, _key(target), prompt, timeout_s=lim.timeout_s,
                           allow_private=target.host_key or allow_private(), **kw)


def ask(target: Target, prompt: str, top: int, temperature: float, instruction: str | None, lim: Limits) -> None:
    """One request for an answer with its `top` candidates at every step, kept in ANSWER (or why it failed)."""
    if not _spend(1, lim):
        return
    answer = {"for": (target.endpoint, prompt), "top": top, "temperature": temperature}
    try:
        with st.spinner(f"Asking {md(target.endpoint.model)}…"):
            answer["done"] = _send(target, prompt, lim, max_tokens=ANSWER_TOKENS, temperature=temperature,
                                   top=top, instruction=instruction)
    except HostedError as e:
        answer["error"] = str(e)
    st.session_state[ANSWER] = answer
    st.session_state[VIEW] = 1


def sample_answers(target: Target, prompt: str, n: int, temperature: float, instruction: str | None,
                   lim: Limits) -> None:
    """n requests for the same prompt, kept in SAMPLES; the first failure stops them and is kept too."""
    if not _spend(n, lim):
        return
    done: list[HostedCompletion] = []
    error = None
    bar = st.progress(0.0, text=f"Sampling {n} answers…")
    for i in range(n):
        try:
            # The generated tokens (for the spread of first tokens), no candidates: sampling needs none.
            done.append(_send(target, prompt, lim, max_tokens=SAMPLE_TOKENS, temperature=temperature, top=0,
                              tokens=True, need_logprobs=False, instruction=instruction))
        except HostedError as e:  # stop at the first failure: the next would most likely fail the same way
            error = str(e)
            _refund(n - i - 1)
            break
        bar.progress((i + 1) / n, text=f"Sampled {i + 1} of {n}")
    bar.empty()
    st.session_state[SAMPLES] = {"for": (target.endpoint, prompt), "temperature": temperature, "done": done,
                                 "error": error, "asked": n}

