"""engine.generation.hosted against a fake OpenAI-compatible server on 127.0.0.1 (tests/hosted_fake.py): both
OpenAI formats parsed to exactly what the server sent, Anthropic sampled without log-probabilities, and every
failure one exception with a plain message that never holds the key."""
from __future__ import annotations

import logging
import math
import socket

import pytest
from hosted_fake import KEY, MODEL, STEPS, FakeServer

from engine.generation import hosted
from engine.generation.hosted import Endpoint


def complete(*args, **kw):
    """The client, opted in to private addresses as a host with a local server would: the fake is on 127.0.0.1
    (tests/test_hosted_net.py checks the refusals without the opt-in)."""
    return hosted.complete(*args, allow_private=True, **kw)


@pytest.fixture(scope="module")
def server():
    s = FakeServer()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh(server):
    server.mode, server.requests = "ok", []


def _endpoint(server: FakeServer, api: str = "chat", model: str = MODEL) -> Endpoint:
    return Endpoint(server.base_url, model, api)


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_top_candidates_are_what_the_server_sent(server, api) -> None:
    done = complete(_endpoint(server, api), KEY, "Once upon a time", max_tokens=3, temperature=0.7, top=4)
    assert done.text == " She picked it" and done.model == MODEL and done.finish_reason == "length"
    assert len(done.steps) == 3
    for step, (token, top) in zip(done.steps, STEPS):
        assert step.token == token
        assert [c.token for c in step.top] == [t for t, _ in top[:4]]  # likeliest first, as many as asked
        assert [c.prob for c in step.top] == pytest.approx([math.exp(v) for _, v in top[:4]], abs=1e-12)
        assert step.reported == pytest.approx(sum(math.exp(v) for _, v in top[:4]))
    sent = server.requests[-1]
    assert sent["path"] == ("/v1/chat/completions" if api == "chat" else "/v1/completions")
    assert sent["key"] == KEY and sent["body"]["max_tokens"] == 3 and sent["body"]["temperature"] == 0.7
    if api == "chat":
        assert sent["body"]["logprobs"] is True and sent["body"]["top_logprobs"] == 4
        assert sent["body"]["messages"][-1] == {"role": "user", "content": "Once upon a time"}
    else:
        assert sent["body"]["logprobs"] == 4 and sent["body"]["prompt"] == "Once upon a time"


def test_chat_instruction_is_a_system_message(server) -> None:
    complete(_endpoint(server), KEY, "Hi", instruction=hosted.CONTINUE)
    assert server.requests[-1]["body"]["messages"][0] == {"role": "system", "content": hosted.CONTINUE}


def test_anthropic_samples_and_says_it_has_no_probabilities(server) -> None:
    ep = _endpoint(server, "anthropic")
    done = complete(ep, KEY, "Hi", max_tokens=2, instruction=hosted.CONTINUE)
    assert done.text == " She picked" and done.steps == ()
    sent = server.requests[-1]
    assert sent["path"] == "/v1/messages" and sent["key"] == KEY and sent["body"]["system"] == hosted.CONTINUE
    n = len(server.requests)
    with pytest.raises(hosted.NoLogprobs, match="Anthropic's Messages API does not return log-probabilities"):
        complete(ep, KEY, "Hi", top=5)
    assert len(server.requests) == n  # refused before sending anything


def test_no_key_sends_no_authorization(server) -> None:
    with pytest.raises(hosted.BadKey, match="wants an API key"):
        complete(_endpoint(server), None, "Hi")
    assert server.requests[-1]["key"] == ""


FAILURES = [  # mode, exception, words of its message
    ("401", hosted.BadKey, "refused the API key (HTTP 401)"),
    ("429", hosted.RateLimited, "quota is used up (HTTP 429)"),
    ("404", hosted.UnknownModel, "does not know the model 'fake-large-1' (HTTP 404)"),
    ("404path", hosted.NotOffered, "no /chat/completions at this address"),
    ("500", hosted.ServerFailed, "failed to answer (HTTP 500)"),
    ("nologprobs", hosted.NoLogprobs, "ignores the request for them"),
    ("malformed", hosted.Malformed, "is not JSON"),
    ("huge", hosted.TooLarge, "larger than 100,000 bytes"),
    ("hugestream", hosted.TooLarge, "larger than 100,000 bytes"),
    ("slow", hosted.TimedOut, "did not answer within 0.5 seconds"),
    ("drip", hosted.TimedOut, "did not answer within 0.5 seconds"),
    ("driphead", hosted.TimedOut, "did not answer within 0.5 seconds"),  # one deadline, headers included
]


@pytest.mark.parametrize("mode, error, words", FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_is_one_exception_with_a_plain_message(server, caplog, mode, error, words) -> None:
    caplog.set_level(logging.DEBUG)
    server.mode, server.slow_s = mode, 1.5
    with pytest.raises(error) as e:
        complete(_endpoint(server), KEY, "Hi", top=5, timeout_s=0.5, max_bytes=100_000)
    assert words in str(e.value)
    assert isinstance(e.value, hosted.HostedError)
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__)  # nothing
    # of urllib's (which holds the request) chained into a logged traceback
    assert KEY not in str(e.value) and KEY[-4:] not in str(e.value)  # the fake 401 quotes the key's end
    assert KEY not in caplog.text and "Authorization" not in caplog.text


def test_connection_refused_and_nothing_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(hosted.Unreachable, match=f"Could not reach http://127.0.0.1:{port}"):
        complete(Endpoint(f"http://127.0.0.1:{port}/v1", "m"), KEY, "Hi", timeout_s=2)


def test_redirects_are_not_followed(server) -> None:
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", server.base_url + "/chat/completions")
            self.end_headers()

        def log_message(self, *a):
            pass

    r = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=r.serve_forever, daemon=True).start()
    try:
        with pytest.raises(hosted.NotOffered, match="redirect"):
            complete(Endpoint(f"http://127.0.0.1:{r.server_address[1]}/v1", MODEL), KEY, "Hi")
        assert server.requests == []  # the key never reached the address the redirect named
    finally:
        r.shutdown()
        r.server_close()


@pytest.mark.parametrize("url, model, words", [
    ("file:///etc/passwd", "m", "http:// or https://"),
    ("ftp://example.org/v1", "m", "http:// or https://"),
    ("http://user:sk-secret@127.0.0.1/v1", "m", "must not hold a user name or key"),
    ("http://127.0.0.1/v1?key=sk-secret", "m", "must not have a ?query"),
    ("http://127.0.0.1/v1\r\nX: y", "m", "one line of plain ASCII"),
    ("http://127.0.0.1/vü", "m", "one line of plain ASCII"),
    ("http://127.0.0.1:port/v1", "m", "not a valid URL"),
    ("http://127.0.0.1/v1", "two words", "model id must be one word"),
    ("http://127.0.0.1/v1", "", "model id must be one word"),
])
def test_bad_endpoints_are_refused_before_sending(url, model, words) -> None:
    with pytest.raises(hosted.InvalidEndpoint, match=words.replace("?", r"\?")) as e:
        complete(Endpoint(url, model), KEY, "Hi")
    assert "sk-secret" not in str(e.value)


@pytest.mark.parametrize("key", ["sk-a b", "sk-ab\r\nX-Evil: 1", "sk-ключ"])
def test_keys_with_impossible_characters_are_refused_without_quoting_them(server, key) -> None:
    with pytest.raises(hosted.BadKey, match="characters no API key has") as e:
        complete(_endpoint(server), key, "Hi")
    assert key.strip() not in str(e.value) and server.requests == []


def test_a_pasted_key_with_a_line_break_still_works(server) -> None:
    assert complete(_endpoint(server), f"  {KEY}\n", "Hi").text == " She"
    assert server.requests[-1]["key"] == KEY


@pytest.mark.parametrize("bad", [
    {"choices": []},
    {"choices": [{"message": {"content": "x"}, "logprobs": {"content": [{"token": "x", "logprob": "high"}]}}]},
    {"choices": [{"message": {"content": "x"}, "logprobs": {"content": [
        {"token": "x", "logprob": -0.1, "top_logprobs": [{"token": "x", "logprob": -0.1},
                                                          {"token": "y", "logprob": -0.2}]}]}}]},  # adds up > 1
    {"choices": [{"message": {"content": "x"}, "logprobs": {"content": [
        {"token": "x", "logprob": 0.5, "top_logprobs": []}]}}]},  # a positive log-probability
    {"choices": [{"message": "x"}]},
])
def test_strict_parsing_refuses_wrong_shapes(bad) -> None:
    with pytest.raises(hosted.Malformed, match="not the format asked for|does not add up"):
        hosted._parse_chat(bad, Endpoint("http://x/v1", "m"), 5, 5)


def test_deeply_nested_json_is_malformed_not_a_crash(server, monkeypatch) -> None:
    server.mode = "nested"
    with pytest.raises(hosted.Malformed, match="is not JSON"):
        complete(_endpoint(server), KEY, "Hi")


def test_nan_is_refused_and_minus_infinity_is_probability_zero() -> None:
    assert hosted._constant("-Infinity") == -math.inf
    with pytest.raises(ValueError):
        hosted._constant("NaN")
    data = {"choices": [{"text": "a", "logprobs": {"tokens": ["a"], "token_logprobs": [-0.1],
                                                   "top_logprobs": [{"a": -0.1, "b": -math.inf}]}}]}
    step = hosted._parse_completions(data, Endpoint("http://x/v1", "m", "completions"), 5, 5).steps[0]
    assert [c.prob for c in step.top] == pytest.approx([math.exp(-0.1), 0.0])


@pytest.mark.parametrize("api, sent", [("chat", {"logprobs": True}), ("completions", {"logprobs": 0})])
def test_sampling_asks_for_the_tokens_and_no_candidates(server, api, sent) -> None:
    done = complete(_endpoint(server, api), KEY, "Hi", max_tokens=2, top=0, tokens=True, need_logprobs=False)
    body = server.requests[-1]["body"]
    assert "top_logprobs" not in body and {k: body[k] for k in sent} == sent
    assert [s.token for s in done.steps] == [" She", " picked"] and all(s.top == () for s in done.steps)


TEMPLATE = ("Cannot use chat template functions because tokenizer.chat_template is not set and no template "
            "argument was passed! sk-echoed-1234")  # what transformers serve says (HTTP 400), and a key echoed
REFUSALS = [  # the server's error body, words Glassbox says, words it must not say
    ({"detail": TEMPLATE}, "no chat template, so it cannot take chat messages; choose the completions API kind",
     "candidates"),
    ({"error": {"message": "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20.",
                "type": "invalid_request_error", "param": "top_logprobs", "code": "integer_above_max_value"}},
     "list fewer candidates", "chat template"),
    ({"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you requested "
                                    "4000 tokens.", "type": "BadRequestError", "code": 400},
     "the text is longer than this model can read", "candidates"),
    ({"detail": [{"loc": ["body", "temperature"], "msg": "Input should be less than or equal to 2"}]},
     "does not take this temperature", "candidates"),
    ({"error": "something else entirely"}, "for a reason Glassbox does not recognise", "chat template"),
]


@pytest.mark.parametrize("body, words, not_words", REFUSALS, ids=["template", "top", "context", "temperature",
                                                                  "unknown"])
def test_a_refusal_says_what_was_refused_in_glassboxs_words(server, body, words, not_words) -> None:
    server.mode, server.fixed = "fixed", (400, body)
    with pytest.raises(hosted.Rejected) as e:
        complete(_endpoint(server), KEY, "Hi", top=5)
    message = str(e.value)
    assert message.startswith("The server refused the request (HTTP 400)") and words in message
    assert not_words not in message and "sk-echoed" not in message and "Cannot use" not in message
    assert message.count(". ") == 0  # one sentence


def test_a_server_pinned_to_another_model_names_the_model(server) -> None:
    server.mode, server.fixed = "fixed", (400, {"detail": "Server is pinned to 'tiny'; requested 'other'."})
    with pytest.raises(hosted.UnknownModel, match="does not know the model 'fake-large-1'"):
        complete(_endpoint(server), KEY, "Hi", top=5)
