"""A small OpenAI-compatible server for the hosted-model tests, on 127.0.0.1 in a thread.

It answers /v1/chat/completions, /v1/completions and /v1/messages (Anthropic) with fixed log-probabilities
(STEPS), honouring max_tokens and the number of candidates asked for. `mode` makes it misbehave:
ok, slow, fixed (answers server.fixed), 401 (any key but KEY is wrong), 429, 404 (unknown model), 404path, 500, nologprobs, malformed, huge
(with a Content-Length), hugestream (without), nested (JSON too deep to parse), drip (the body a byte at a time),
driphead (the status line and headers a byte at a time for about 5 s, then a good answer), sample (each answer
drawn from STEPS). As OpenAI does, chat sends the generated tokens for `logprobs: true` and candidates for
`top_logprobs: k`; completions send the tokens for `logprobs: 0` and k candidates for `logprobs: k`.
Every request is recorded (path, Authorization or x-api-key header, body) so a test can see what was sent.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-3f9a1c77e2b84d05"  # the key the fake server accepts
MODEL = "fake-large-1"
# The answer, token by token: (token, [(candidate, logprob), ...]); the first candidate is the one chosen.
STEPS = [
    (" She", [(" She", -0.6931), (" It", -1.2040), (" The", -2.3026), (" Then", -2.9957), (" <b>x</b>", -4.6052)]),
    (" picked", [(" picked", -0.3567), (" kicked", -1.6094), (" rolled", -2.3026)]),
    (" it", [(" it", -0.1054), (" the", -2.5257)]),
    (" up", [(" up", -0.0513), (".", -3.2189)]),
    (".", [(".", -0.2231), (" and", -1.7148)]),
]


def prob(token: str, step: int = 0) -> float:
    """The probability the server reports for `token` at `step`."""
    return math.exp(dict(STEPS[step][1])[token])


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.slow_s = 2.0
        self.fixed: tuple[int, object] = (400, {})  # mode "fixed": this status and JSON body, whatever was asked
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        key = self.headers.get("x-api-key") or (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.server.lock:
            self.server.requests.append({"path": self.path, "key": key, "body": body})
        mode = self.server.mode
        if mode == "slow":
            time.sleep(self.server.slow_s)
        if mode == "401" or key != KEY:
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {key[:3]}***{key[-4:]}",
                                              "code": "invalid_api_key"}})
        if mode == "fixed":
            return self._send(*self.server.fixed)
        if mode == "429":
            return self._send(429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}})
        if mode == "404":
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist",
                                              "code": "model_not_found"}})
        if mode == "404path":
            return self._send(404, {"detail": "Not Found"})
        if mode == "500":
            return self._send(500, {"error": {"message": "boom"}})
        if mode == "malformed":
            return self._raw(200, b'{"choices": [{"message": {"content": "x"}, "logprobs": {"content": [{"tok')
        if mode == "huge":
            return self._raw(200, b'{"choices": [' + b" " * 3_000_000 + b"]}")
        if mode == "hugestream":  # no Content-Length: the body ends when the connection closes
            return self._raw(200, b'{"choices": [' + b" " * 3_000_000 + b"]}", length=False)
        if mode == "nested":  # valid JSON nested deeper than Python's parser can follow
            return self._raw(200, b"[" * 200_000 + b"]" * 200_000)
        if mode == "drip":
            return self._drip()
        if mode == "driphead":
            return self._drip_head()
        if self.path.endswith("/messages"):
            return self._send(200, {"type": "message", "model": MODEL, "stop_reason": "max_tokens",
                                    "content": [{"type": "text", "text": self._answer(body)[0]}]})
        text, steps = self._answer(body)
        chat = self.path.endswith("/chat/completions")
        asked = body.get("logprobs") is True if chat else type(body.get("logprobs")) is int
        k = (body.get("top_logprobs") if chat else body.get("logprobs")) or 0
        logprobs = None if mode == "nologprobs" or not asked else steps
        if self.path.endswith("/chat/completions"):
            content = None if logprobs is None else [
                {"token": t, "logprob": lp, "bytes": list(t.encode()),
                 "top_logprobs": [{"token": c, "logprob": v, "bytes": list(c.encode())} for c, v in top[:k]]}
                for t, lp, top in logprobs]
            return self._send(200, {"object": "chat.completion", "model": MODEL, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text},
                 "logprobs": None if content is None else {"content": content}, "finish_reason": "length"}]})
        if self.path.endswith("/completions"):
            lp = None if logprobs is None else {
                "tokens": [t for t, _, _ in logprobs], "token_logprobs": [v for _, v, _ in logprobs],
                "top_logprobs": [dict(top[:k]) for _, _, top in logprobs], "text_offset": [0] * len(logprobs)}
            return self._send(200, {"object": "text_completion", "model": MODEL, "choices": [
                {"index": 0, "text": text, "logprobs": lp, "finish_reason": "length"}]})
        return self._send(404, {"detail": "Not Found"})

    def _answer(self, body: dict) -> tuple[str, list[tuple[str, float, list]]]:
        """The answer's text and steps (token, logprob, candidates): fixed, or drawn in mode 'sample'."""
        n = max(1, min(int(body.get("max_tokens") or 1), len(STEPS)))
        steps = []
        for _, top in STEPS[:n]:
            if self.server.mode == "sample":
                token, lp = random.choices(top, weights=[math.exp(v) for _, v in top])[0]
            else:
                token, lp = top[0]
            steps.append((token, lp, top))
        return "".join(t for t, _, _ in steps), steps

    def _send(self, status: int, data: object) -> None:
        self._raw(status, json.dumps(data).encode())

    def _raw(self, status: int, raw: bytes, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        try:
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: what a cap does
            pass

    def _drip_head(self) -> None:
        raw = json.dumps({"model": MODEL, "choices": [{"message": {"content": " She"}}]}).encode()
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slowly: " + b"x" * 40 +
                b"\r\nContent-Length: %d\r\n\r\n" % len(raw))
        self.close_connection = True
        try:
            for i in range(len(head)):  # about 5 s in all: a timeout per read never fires
                self.wfile.write(head[i:i + 1])
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
