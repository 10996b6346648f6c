"""The Next token page's hosted-model section run headless with AppTest against the fake OpenAI-compatible
server (tests/hosted_fake.py): off by default, the hosted bars are the probabilities the server sent, samples,
the step-through, the rate limit and the cap on N, a plain message for every failure with the rest of the page
still there, and a key that never leaks (session state, rendered elements, logs, the URL, files, other
sessions, another endpoint)."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest
from conftest import ROOT
from hosted_fake import KEY, MODEL, STEPS, FakeServer, prob
from streamlit.testing.v1 import AppTest

from ui.next_token import hosted
from ui.next_token.figures import reported_figure, spread_figure
from views_at import sent

PAGE = str(ROOT / "pages" / "4_Next_token.py")
TIMEOUT = 120
ENV = ["BASE_URL", "MODEL", "API", "API_KEY", "PER_MINUTE", "MAX_SAMPLES", "TIMEOUT_S", "USER_ENDPOINTS",
       "ALLOW_PRIVATE"]


@pytest.fixture(scope="module")
def server():
    s = FakeServer()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def clean(server, monkeypatch):
    server.mode, server.requests = "ok", []
    for name in ENV:
        monkeypatch.delenv(hosted.ENV + name, raising=False)


def host(monkeypatch, server: FakeServer, **more: str) -> None:
    """Configure the host's endpoint through the environment, as a host would."""
    for name, value in {"BASE_URL": server.base_url, "MODEL": MODEL, "API_KEY": KEY, **more}.items():
        monkeypatch.setenv(hosted.ENV + name, value)


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def chart(at: AppTest, key: str) -> dict:
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(key):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key}")


def bars(spec: dict) -> dict[str, list[float]]:
    """Each bar group's x values: {"reported": [...], "generated": [...], "not reported": [...]}."""
    return {t["name"]: t["x"] for t in spec["data"] if t["type"] == "bar"}


def errors(at: AppTest) -> list[str]:
    return [e.value.replace("\\", "") for e in at.error]  # messages are shown Markdown-escaped


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, errors(at)


def test_off_by_default_explains_and_sends_nothing(server) -> None:
    at = page()
    ok(at)
    assert any(i.value.startswith("**Off.**") and "GLASSBOX_HOSTED_BASE_URL" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "next_token.hosted_ask"]  # no button to send anything
    assert server.requests == []


def test_hosted_bars_are_the_probabilities_the_server_sent(server, monkeypatch) -> None:
    host(monkeypatch, server)
    at = page()
    ok(at)
    at.button(key="next_token.hosted_ask").click().run()
    ok(at)
    sent = server.requests[-1]["body"]
    assert sent["top_logprobs"] == 10 and sent["messages"][-1]["content"] == at.session_state["state.text"]
    theirs = bars(chart(at, "next_token.hosted_theirs"))
    expected = [math.exp(v) for _, v in STEPS[0][1]]
    assert theirs["reported"] == pytest.approx(expected, abs=1e-12)
    assert theirs["not reported"] == pytest.approx([1 - sum(expected)], abs=1e-12)  # the rest, not invented
    spec = chart(at, "next_token.hosted_theirs")
    ticks = spec["layout"]["yaxis"]["ticktext"]
    assert ticks[0] == "␣She" and ticks[-1] == "not reported" and "␣&lt;b&gt;x&lt;/b&gt;" in ticks  # escaped
    ours = bars(chart(at, "next_token.hosted_ours"))
    assert len(ours["can be drawn"]) == 10  # ours: the same figure as the page's, the same number of tokens
    # Step through: step 3 generated " it", highlighted, with the server's probabilities.
    at.slider(key=hosted.VIEW).set_value(3).run()
    ok(at)
    step = bars(chart(at, "next_token.hosted_step"))
    assert step["generated"] == pytest.approx([prob(" it", 2)]) and step["reported"] == pytest.approx(
        [prob(" the", 2)])
    assert any("gb-nt-drawn" in m.value and "picked" in m.value for m in at.markdown)
    assert len(server.requests) == 1  # moving the step slider sends nothing


def test_completions_endpoint_and_sampling_the_same_prompt(server, monkeypatch) -> None:
    host(monkeypatch, server, API="completions")
    at = page()
    at.button(key="next_token.hosted_ask").click().run()
    ok(at)
    assert server.requests[-1]["path"] == "/v1/completions"
    assert bars(chart(at, "next_token.hosted_theirs"))["reported"] == pytest.approx(
        [math.exp(v) for _, v in STEPS[0][1]])
    server.mode = "sample"
    at.number_input(key="next_token.hosted_n").set_value(8).run()
    at.button(key="next_token.hosted_sample").click().run()
    ok(at)
    assert len(server.requests) == 1 + 8
    spread = chart(at, "next_token.hosted_spread")
    shares = spread["data"][0]["x"]
    assert sum(shares) == pytest.approx(1.0)
    firsts = {"␣She", "␣It", "␣The", "␣Then", "␣&lt;b&gt;x&lt;/b&gt;"}  # what the fake draws from
    assert set(spread["layout"]["yaxis"]["ticktext"]) <= firsts
    assert any("samples of the same text at temperature 1" in m.value for m in at.markdown)


def test_rate_limit_and_cap_on_samples(server, monkeypatch) -> None:
    host(monkeypatch, server, PER_MINUTE="4", MAX_SAMPLES="3")
    at = page()
    assert at.number_input(key="next_token.hosted_n").max == 3  # N is capped
    at.number_input(key="next_token.hosted_n").set_value(3).run()
    at.button(key="next_token.hosted_sample").click().run()
    ok(at)
    assert len(server.requests) == 3
    at.button(key="next_token.hosted_sample").click().run()  # 3 more would make 6 of 4
    ok(at)
    assert len(server.requests) == 3
    assert any("may send 4 requests a minute" in w.value and "has 1 left" in w.value for w in at.warning)
    at.button(key="next_token.hosted_ask").click().run()  # the one left
    ok(at)
    assert len(server.requests) == 4 and not at.warning


def test_anthropic_samples_and_says_why_there_are_no_bars(server, monkeypatch) -> None:
    host(monkeypatch, server, API="anthropic")
    at = page()
    ok(at)
    assert at.button(key="next_token.hosted_ask").disabled
    assert any("does not return log-probabilities" in i.value for i in at.info)
    at.button(key="next_token.hosted_sample").click().run()
    ok(at)
    assert server.requests[-1]["path"] == "/v1/messages"
    assert any("spread is of first words" in c.value for c in at.caption)


FAILURES = [  # server mode, words of the message the page shows
    ("401", "The server refused the API key (HTTP 401)"),
    ("429", "too many requests, or the account's quota is used up (HTTP 429)"),
    ("404", f"does not know the model '{MODEL}' (HTTP 404)"),
    ("nologprobs", "sent no log-probabilities"),
    ("malformed", "is not JSON"),
    ("huge", "larger than 1,000,000 bytes"),
    ("slow", "did not answer within 1 seconds"),
]


def test_every_failure_has_a_plain_message_and_the_page_keeps_working(server, monkeypatch) -> None:
    host(monkeypatch, server, TIMEOUT_S="1", PER_MINUTE="100")
    server.slow_s = 2.5
    at = page()
    for mode, words in FAILURES:
        server.mode = mode
        at.button(key="next_token.hosted_ask").click().run()
        assert not at.exception, (mode, at.exception)
        shown = errors(at)
        assert len(shown) == 1 and words in shown[0], (mode, shown)
        assert KEY not in shown[0] and KEY[-4:] not in shown[0]
        assert sent(at, "next_token.lab")  # the rest of the page is still drawn
    server.mode = "ok"
    at.button(key="next_token.hosted_ask").click().run()
    ok(at)
    monkeypatch.setenv(hosted.ENV + "BASE_URL", "http://127.0.0.1:1/v1")  # nothing listens on port 1
    at.button(key="next_token.hosted_ask").click().run()
    assert "Could not reach http://127.0.0.1:1" in errors(at)[0]


def test_hosted_figures_are_valid_plotly_and_escape_tokens() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    for fig in (reported_figure([hostile, "␣b"], [0.5, 0.25], chosen=0, title="x"), reported_figure([], [], title="x"),
                spread_figure([hostile, "␣b"], [3, 1], "first token", "x")):
        spec = fig.to_dict()
        go.Figure(spec)  # raises on any invalid property
        assert "<img" not in json.dumps(spec)
    spec = reported_figure(["a"], [0.7], title="x").to_dict()
    assert {t["name"]: t["x"] for t in spec["data"]} == {"reported": [0.7], "not reported": [pytest.approx(0.3)]}


@pytest.mark.parametrize("name, value, words", [("BASE_URL", "ftp://example.org/v1", "http:// or https://"),
                                               ("MODEL", "", "model id must be one word"),
                                               ("API", "bogus", "API kind must be one of")])
def test_incomplete_host_settings_are_named(server, monkeypatch, name, value, words) -> None:
    host(monkeypatch, server, **{name: value})
    at = page()
    assert not at.exception
    assert "The host's settings (GLASSBOX_HOSTED_*) are incomplete" in errors(at)[0] and words in errors(at)[0]
    assert server.requests == []


# --- keys ---------------------------------------------------------------------------------------------------

TYPED = "sk-typed-" + "7c1e5a0b9d42" * 2  # a key a user types; the fake server accepts only KEY


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _holds(value, secret: str, depth: int = 0) -> bool:
    """Whether `value` holds `secret` anywhere inside (strings, containers, dataclasses, plain objects)."""
    if depth > 8:
        return False
    if isinstance(value, str):
        return secret in value
    if isinstance(value, bytes):
        return secret.encode() in value
    if isinstance(value, dict):
        return any(_holds(k, secret, depth + 1) or _holds(v, secret, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds(v, secret, depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_holds(getattr(value, f.name), secret, depth + 1) for f in dataclasses.fields(value))
    return secret in repr(value)[:100_000]


def assert_nowhere(at: AppTest, secret: str, caplog, since: float, allowed_key: str | None = None) -> None:
    for k, v in at._session_state.filtered_state.items():
        # memory.visitor is the session's own memory ledger (ui/memory.py): it points at this very session state
        if k not in (allowed_key, "memory.visitor"):
            assert not _holds(v, secret), f"the key is in session state under {k!r}"
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            assert secret not in str(proto), f"the key is rendered in {type(node).__name__}"
    assert not _holds(at.query_params, secret)
    assert secret not in caplog.text
    for folder in (ROOT, Path.home() / ".streamlit"):
        for path in folder.rglob("*") if folder.exists() else ():
            if ".git" in path.parts or not path.is_file() or path.stat().st_mtime < since:
                continue
            assert secret.encode() not in path.read_bytes(), f"the key was written to {path}"


def own_endpoint(at: AppTest, server: FakeServer, key: str | None) -> AppTest:
    at.text_input(key="next_token.hosted_url").input(server.base_url).run()
    at.text_input(key="next_token.hosted_model").input(MODEL).run()
    if key is not None:
        at.text_input(key=hosted.KEY).input(key).run()
    return at


def test_a_typed_key_is_used_and_never_leaks(server, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    since = time.time() - 1
    monkeypatch.setenv(hosted.ENV + "ALLOW_PRIVATE", "1")  # the fake server is on 127.0.0.1: a local server
    at = own_endpoint(page(), server, TYPED)
    server.mode = "ok"
    at.button(key="next_token.hosted_ask").click().run()
    assert server.requests[-1]["key"] == TYPED  # sent, and (this fake accepts only KEY) refused
    assert "refused the API key (HTTP 401)" in errors(at)[0]
    at.button(key="next_token.hosted_sample").click().run()
    assert at.session_state[hosted.KEY] == TYPED  # held in its own widget's state only
    assert at.text_input(key=hosted.KEY).proto.type == at.text_input(key=hosted.KEY).proto.PASSWORD
    assert_nowhere(at, TYPED, caplog, since, allowed_key=hosted.KEY)
    # The right key works, and still appears nowhere but its field.
    at.text_input(key=hosted.KEY).input(KEY).run()
    at.button(key="next_token.hosted_ask").click().run()
    ok(at)
    assert server.requests[-1]["key"] == KEY
    assert_nowhere(at, KEY, caplog, since, allowed_key=hosted.KEY)
    # "Forget my key" empties the field; another session never had it.
    at.button(key="next_token.hosted_forget").click().run()
    assert at.session_state[hosted.KEY] == ""
    other = own_endpoint(page(), server, None)
    other.button(key="next_token.hosted_ask").click().run()
    assert server.requests[-1]["key"] == "" and "wants an API key" in errors(other)[0]
    assert_nowhere(other, KEY, caplog, since)


def test_the_hosts_key_stays_on_the_server_and_with_the_hosts_endpoint(server, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    since = time.time() - 1
    host(monkeypatch, server)
    at = page()
    at.button(key="next_token.hosted_ask").click().run()
    at.button(key="next_token.hosted_sample").click().run()
    ok(at)
    assert server.requests[-1]["key"] == KEY
    assert_nowhere(at, KEY, caplog, since)  # not even in the session
    # A user's own endpoint (even the same URL) never gets the host's key.
    monkeypatch.setenv(hosted.ENV + "ALLOW_PRIVATE", "1")  # a host that allows local servers
    at.radio(key="next_token.hosted_source").set_value("own").run()
    own_endpoint(at, server, None)
    at.button(key="next_token.hosted_ask").click().run()
    assert server.requests[-1]["key"] == "" and "wants an API key" in errors(at)[0]
    # And a host can turn typed endpoints off.
    monkeypatch.setenv(hosted.ENV + "USER_ENDPOINTS", "0")
    at = page()
    assert not [r for r in at.radio if "hosted" in (r.key or "")] and not [t for t in at.text_input if t.key == hosted.KEY]


def test_a_typed_local_endpoint_is_refused_unless_the_host_allows_it(server, monkeypatch) -> None:
    """A visitor's endpoint at the server's own loopback is refused in one sentence and nothing is sent; the
    host's endpoint at the same address works; GLASSBOX_HOSTED_ALLOW_PRIVATE=1 lets typed ones through."""
    at = own_endpoint(page(), server, KEY)
    at.button(key="next_token.hosted_ask").click().run()
    at.button(key="next_token.hosted_sample").click().run()
    assert not at.exception and server.requests == []
    shown = errors(at)
    assert len(shown) == 2 and all("resolves to" not in m and "is a loopback address" in m for m in shown)
    assert "GLASSBOX_HOSTED_ALLOW_PRIVATE=1" in shown[0] and sent(at, "next_token.lab")
    monkeypatch.setenv(hosted.ENV + "ALLOW_PRIVATE", "1")
    at.button(key="next_token.hosted_ask").click().run()
    at.button(key="next_token.hosted_sample").click().run()
    ok(at)
    assert server.requests[-1]["key"] == KEY and len(server.requests) == 1 + 5
    assert server.requests[-1]["body"]["logprobs"] is True and "top_logprobs" not in server.requests[-1]["body"]
    monkeypatch.delenv(hosted.ENV + "ALLOW_PRIVATE")
    host(monkeypatch, server)  # the host's own endpoint is trusted as it is
    at = page()
    at.button(key="next_token.hosted_ask").click().run()
    ok(at)
    assert len(server.requests) == 1 + 5 + 1
