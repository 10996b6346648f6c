"""An NDIF-protocol server on 127.0.0.1 for the tests, built on nnsight's own request and response schema
(`nnsight.schema`) and executing each job on a small local model, as NDIF executes it on a hosted one.

What it speaks is what nnsight's non-blocking RemoteBackend sends and expects (nnsight 0.8):
- POST /request: a multipart form with `data` (the RequestModel's JSON: model_key, compress, env) and `blob`
  (the serialised trace), the key in the `ndif-api-key` header; answers a ResponseModel (RECEIVED) as JSON.
- GET /response/{id}: the job's latest ResponseModel as JSON (404 before it has one). On COMPLETED its `data`
  is the address of the answer; GET there gives the answer, torch.save of the saved values, zstd-compressed
  when the request was.
- GET /status: {"deployments": {...}} as NDIF lists its models.

A job is deserialised with RequestModel.deserialize, with an unpickler that refuses any module outside what an
NDIF server has installed (torch, nnsight, transformers, ...), as NDIF's sandbox does, so a request that
leans on Glassbox's own modules being importable fails here as it would there; then it runs on one worker
thread, one job at a time (so a second job is QUEUED while the first runs), on the model of its key.

`behaviour` makes it misbehave the ways NDIF can: "down" (503 on every request), "never" (jobs stay RUNNING),
"not_running" (an ERROR as NDIF says a model is not deployed), "huge" (answers padded past any cap),
"queued" (jobs never leave the queue), "echo" (a wrong key quoted back), "slow:<s>" (each job runs that long).
"""
from __future__ import annotations

import email.parser
import email.policy
import io
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

SERVER_MODULES = ("torch", "nnsight", "transformers", "numpy", "math", "builtins", "collections", "copyreg",
                  "cloudpickle", "typing", "_operator", "operator", "functools", "types", "einops")


def _unpickler():
    from nnsight.intervention.serialization import CustomCloudUnpickler

    class ServerUnpickler(CustomCloudUnpickler):
        """Only what an NDIF server has installed: Glassbox's own modules must have travelled by value."""

        def find_class(self, module: str, name: str):
            if module.split(".")[0] not in SERVER_MODULES:
                raise ModuleNotFoundError(f"No module named {module!r} on this server")
            return super().find_class(module, name)

    return ServerUnpickler


@dataclass
class Served:
    repo_id: str
    model: object  # an nnsight model with real weights


@dataclass
class FakeNdif:
    models: dict[str, Served]  # repo id -> model
    keys: set[str]
    behaviour: str = "normal"
    requests: list[dict] = field(default_factory=list)  # what came in: path, headers (the key as sent), sizes
    jobs: dict[str, dict] = field(default_factory=dict)  # id -> {"response": ResponseModel, "answer": bytes}
    base: str = ""

    def __post_init__(self) -> None:
        self._work: queue.Queue = queue.Queue()
        self._lock = threading.Lock()

    # -- the protocol ---------------------------------------------------------------------------------------

    def respond(self, jid: str, status: str, description: str = "", data: str | None = None) -> None:
        from nnsight.schema.response import ResponseModel, Status
        with self._lock:
            self.jobs.setdefault(jid, {})["response"] = ResponseModel(id=jid, status=Status(status),
                                                                      description=description, data=data)

    def submit(self, headers: dict, content_type: str, body: bytes) -> tuple[int, bytes]:
        from nnsight.schema.request import RequestModel
        key = headers.get("ndif-api-key", "")
        self.requests.append({"path": "/request", "key": key, "bytes": len(body),
                              "nnsight-version": headers.get("nnsight-version")})
        if self.behaviour == "down":
            return 503, json.dumps({"detail": "Service Unavailable"}).encode()
        if key not in self.keys:
            said = f"Invalid API key {key}." if self.behaviour == "echo" else "Missing or invalid API key."
            return 401, json.dumps({"detail": said}).encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        request = RequestModel.model_validate_json(parts["data"])
        jid = uuid.uuid4().hex
        self.respond(jid, "RECEIVED", "Your job has been received and is waiting to be queued.")
        received = self.jobs[jid]["response"].model_dump_json().encode()
        self.respond(jid, "QUEUED", "Your job has been queued.")
        if self.behaviour != "queued":  # "queued": it waits in line for ever
            self._work.put((jid, request, parts["blob"]))
        return 200, received

    def response(self, jid: str, key: str) -> tuple[int, bytes]:
        self.requests.append({"path": "/response", "key": key})
        if key not in self.keys:
            return 401, json.dumps({"detail": "Missing or invalid API key."}).encode()
        job = self.jobs.get(jid)
        if job is None:
            return 404, b"{}"
        return 200, job["response"].model_dump_json().encode()

    def status(self) -> dict:
        return {"deployments": {s.repo_id: {
            "model_key": f'nnsight.modeling.transformers.TransformersModel:{{"repo_id": "{s.repo_id}"}}',
            "repo_id": s.repo_id, "revision": "main", "deployment_level": "HOT", "application_state": "RUNNING"}
            for s in self.models.values()}}

    # -- running jobs ---------------------------------------------------------------------------------------

    def worker(self) -> None:
        while True:
            jid, request, blob = self._work.get()
            try:
                self.run(jid, request, blob)
            except Exception as e:  # noqa: BLE001 - the job failed: NDIF says so in its status
                self.respond(jid, "ERROR", f"{type(e).__name__}: {e}")

    def run(self, jid: str, request, blob: bytes) -> None:
        from nnsight.schema.request import RequestModel
        from nnsight.tracing.tracer import _saves, dec, inc
        repo = json.loads(request.model_key.split(":", 1)[1])["repo_id"]
        if self.behaviour == "not_running" or repo not in self.models:
            self.respond(jid, "ERROR", "Model is not dedicated and hotswapping is not supported for this API key.")
            return
        self.respond(jid, "RUNNING", "Your job has started running.")
        if self.behaviour == "never":
            return  # it stays RUNNING
        if self.behaviour.startswith("slow:"):
            time.sleep(float(self.behaviour.split(":")[1]))
        model = self.models[repo].model
        tracer = RequestModel.deserialize(blob, model._remoteable_persistent_objects(), compress=request.compress,
                                          unpickler=_unpickler())
        frame = tracer.info.frame
        inc()
        try:
            tracer.execute(tracer.info.code)
            saved = set(_saves())
        finally:
            dec()
        result = {k: v for k, v in frame.f_locals.items() if id(v) in saved}
        if self.behaviour == "huge":
            result["padding"] = torch.zeros(64 << 20, dtype=torch.uint8)
        buffer = io.BytesIO()
        torch.save(result, buffer, pickle_protocol=4)
        answer = buffer.getvalue()
        if request.compress:
            import zstandard
            answer = zstandard.ZstdCompressor(level=1).compress(answer)
        with self._lock:
            self.jobs[jid]["answer"] = answer
        self.respond(jid, "COMPLETED", "Your job has been completed.", data=f"{self.base}/answer/{jid}")


def _handler(fake: FakeNdif):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/request":
                return self._send(404, b"{}")
            self._send(*fake.submit({k.lower(): v for k, v in self.headers.items()},
                                    self.headers.get("Content-Type", ""), body))

        def do_GET(self) -> None:
            if self.path == "/status":
                if fake.behaviour == "down":
                    return self._send(503, b"{}")
                return self._send(200, json.dumps(fake.status()).encode())
            if self.path.startswith("/response/"):
                return self._send(*fake.response(self.path.rsplit("/", 1)[1], self.headers.get("ndif-api-key", "")))
            if self.path.startswith("/answer/"):
                job = fake.jobs.get(self.path.rsplit("/", 1)[1], {})
                fake.requests.append({"path": "/answer", "key": self.headers.get("ndif-api-key", "")})
                if "answer" not in job:
                    return self._send(404, b"")
                return self._send(200, job["answer"], "application/octet-stream")
            self._send(404, b"{}")

    return Handler


def start(fake: FakeNdif) -> ThreadingHTTPServer:
    """Serve `fake` on 127.0.0.1 (a free port) from daemon threads; fake.base is its address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=fake.worker, daemon=True).start()
    return server


def served_model(folder, dtype: torch.dtype = torch.bfloat16):
    """An nnsight model of a local folder with real weights, in `dtype` (NDIF runs its models in bf16)."""
    import transformers
    from nnsight.modeling.transformers import TransformersModel

    from engine.remote.model import read_tokenizer
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).eval()
    return TransformersModel(hf, tokenizer=read_tokenizer(folder), task="text-generation")


# Tiny random models of the families NDIF serves, shaped to exercise what differs: GPT-2's fused q, k, v;
# Llama-3.1's grouped-query heads and its rope scaling (rope_type llama3, whose frequencies are rescaled past
# the original context); GPT-J's partial rotary on neighbouring pairs and its parallel attention and MLP.
TINY = {
    "gpt2": ("GPT2Config", dict(n_positions=64, n_embd=32, n_layer=2, n_head=4)),
    "llama": ("LlamaConfig", dict(max_position_embeddings=64, hidden_size=32, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                                  initializer_range=0.3,  # sharp patterns: positions change them visibly
                                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    "gptj": ("GPTJConfig", dict(n_positions=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4)),
}


def write_tiny(folder, family: str, seed: int = 0):
    """Save a tiny random model of `family` (safetensors, the tiny tokenizer) in `folder`; returns its config."""
    import transformers

    from engine_fixtures import VOCAB, tokenizer
    config_cls, fields = TINY[family]
    config = getattr(transformers, config_cls)(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, **fields)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(str(folder))
    tokenizer().save_pretrained(str(folder))
    return config
