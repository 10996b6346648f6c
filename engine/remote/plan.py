"""From a text and a request to a selective trace: tokenize here, check the request and what its answer weighs,
send it (or run it locally through nnsight), and turn the answer into a `Selective`.

Tokenizing here, with the same function every local trace uses (`encode_for_model`: the start marker first,
the text's last tokens that fit the context), means NDIF receives token ids only, and a selective trace lines up
position by position with a local model's Trace of the same text.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..model.trace import encode_for_model
from .client import Job, send
from .model import RemoteModel
from .record import record
from .request import RequestError, TraceRequest, refusal
from .selective import Selective, from_answer


@dataclass(frozen=True)
class Plan:
    text: str
    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    n_dropped: int
    request: TraceRequest
    spec: dict  # what the job reads (kernels.job's `spec`)
    parts: dict  # where the model keeps its pieces (kernels.job's `parts`)


def plan(model: RemoteModel, text: str, request: TraceRequest, cap: int) -> Plan:
    """Tokenize `text` for `model` and check `request` against it and against `cap` bytes. RequestError (one
    sentence, with the length that fits when the answer is too big)."""
    cfg = model.config
    enc, dropped = encode_for_model(model.tokenizer, text, cfg.block_size)
    if len(enc.ids) - 1 + dropped == 0:
        raise RequestError("There is no text to run: type something first.")
    request.check(cfg.n_layer, len(enc.ids), cfg.vocab_size)
    why = refusal(request, len(enc.ids), cap, model.repo_id, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size)
    if why is not None:
        raise RequestError(why)
    return Plan(text, enc.ids, enc.tokens, enc.offsets, dropped, request, request.spec(),
                model.recipe.parts(cfg, request.layer, model.hf_config))


def send_plan(model: RemoteModel, p: Plan, host: str, key: str, cap: int) -> Job:
    """Send the plan's job to NDIF (engine/remote/client.py)."""
    return send(model, p.ids, p.spec, p.parts, host, key, cap)


def finish(model: RemoteModel, p: Plan, saved: dict, seconds: float, where: str = "NDIF") -> Selective:
    """The answer to a plan, checked against it, as a Selective."""
    return from_answer(saved, text=p.text, ids=p.ids, tokens=p.tokens, offsets=p.offsets, config=model.config,
                       request=p.request, seconds=seconds, where=where, n_dropped=p.n_dropped)


def run_here(model: RemoteModel, nn_model, text: str, request: TraceRequest, cap: int = 1 << 40) -> Selective:
    """The same job on a local nnsight model of the same architecture (nnsight's local execution): for tests,
    and for a server that holds the model itself."""
    p = plan(model, text, request, cap)
    t = time.perf_counter()
    saved = record(nn_model, p.ids, p.spec, p.parts)
    return finish(model, p, saved, time.perf_counter() - t, where="here")
