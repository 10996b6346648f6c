"""The rungs of the scale ladder and each one's answer to the same prompt: the next token's top candidates and the
distribution's entropy at the last position, and the logit lens there (each layer's favourite token, and how
likely the model's final answer already is after each layer), with the model's size and a measured time.

Local rungs (yours, the built-in model, the server's) answer from their Trace, here; the time is one forward
pass on this server, measured now. NDIF rungs answer from one selective trace each (the lens at the last
position and the top N), shared by every session; their time is the job's, NDIF's queue and the network
included. Every number comes from the model that gave it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine import display_token
from engine.inspect.lens import stage_residuals, unembed
from engine.model.trace import encode_for_model
from engine.remote import Selective, TraceRequest

from ..cache import get_trace, reading
from ..models import ModelChoice, default_model, open_choice, selector_names, session_models
from ..ndif import PREFIX as NDIF
from ..ndif import offered
from ..server import model_work

TOP = 5  # next-token candidates shown per rung


@dataclass(frozen=True)
class Answer:
    name: str
    where: str  # "yours", "built in", "this server", "NDIF"
    n_params: int
    n_layer: int
    n_head: int
    n_kv_head: int
    seconds: float
    timed: str  # what `seconds` measured
    top: list[tuple[str, float]]  # the last position's most likely next tokens (display form, probability)
    top_ids: list[int]
    entropy: float  # bits, of the whole distribution
    lens: list[tuple[str, float]]  # per stage (the embeddings, then after each layer): top token, its probability
    settle: list[float]  # per stage: probability of the model's final top token
    settles_at: int  # the first stage from which the lens's top token is the final answer, to the end
    digits: int | None  # significant digits its values carry (None: float32)


def where(value: str) -> str:
    if value.startswith(NDIF):
        return "NDIF"
    if value in session_models():
        return "yours"
    return "this server" if ":" in value else "built in"


def rungs() -> list[str]:
    """Every model the ladder can hold: the sidebar's picker values."""
    return selector_names()


def default_rungs(values: list[str]) -> list[str]:
    """Yours, the built-in model, the server's GPT-2s, and NDIF's GPT-2 and Llama-3.1 models (those not known
    to be down)."""
    wanted = ("gpt2", "Llama-3.1-8B", "Llama-3.1-70B", "Llama-3.1-405B")
    up = {NDIF + o.repo_id for o in offered()[0] if o.state in ("running", "unknown")}
    keep = [v for v in values if where(v) in ("yours", "built in")]
    keep += [v for v in values if where(v) == "this server" and "gpt2" in v.lower()]
    keep += [v for v in values if v in up and v.rsplit("/", 1)[-1] in wanted]
    return keep


def settles_at(lens_top: list[int], final: int) -> int:
    """The first stage from which the lens's top token is `final` at every later stage."""
    stage = len(lens_top)
    while stage > 0 and lens_top[stage - 1] == final:
        stage -= 1
    return stage


def _local(value: str, choice: ModelChoice, text: str) -> Answer:
    trace = get_trace(text, choice)
    last = len(trace) - 1
    ids = torch.tensor([trace.ids], device=choice.device)
    with model_work(), torch.no_grad():
        start = time.perf_counter()
        choice.model(ids)  # measured alone: the trace above may have come from the cache
        seconds = time.perf_counter() - start
    cfg, tok = trace.config, choice.tokenizer
    probs = trace.logits[last].softmax(-1)
    top = probs.topk(min(TOP, probs.numel()))
    entropy = float(-(probs * probs.clamp_min(1e-30).log2()).sum())
    resid = stage_residuals(trace)[:, last]  # [stage, d_model]: embeddings, after attention 0, after MLP 0, ...
    stages = resid[[0] + [2 * i + 2 for i in range(cfg.n_layer)]]  # the embeddings, then after each layer
    with model_work():
        lens = unembed(choice.model, stages).softmax(-1)  # [stage, vocab]
    final = int(top.indices[0])
    best = lens.max(-1)
    return Answer(
        choice.name, where(value), choice.n_params, cfg.n_layer, cfg.n_head, cfg.n_kv_head, seconds,
        "one forward pass on this server", [(display_token(tok, int(i)), float(p)) for p, i in zip(*top)],
        [int(i) for i in top.indices], entropy,
        [(display_token(tok, int(i)), float(p)) for p, i in zip(best.values, best.indices)],
        lens[:, final].tolist(), settles_at(best.indices.tolist(), final), None)


def _remote(value: str, choice: ModelChoice, sel: Selective) -> Answer:
    cfg, tok = choice.model.config, choice.tokenizer
    last = len(sel) - 1
    ids, probs = sel.top_ids[last, :TOP].tolist(), sel.top_probs[last, :TOP].float().tolist()
    lens_ids, lens_probs = sel.lens_ids[:, 0, 0].tolist(), sel.lens_probs[:, 0, 0].float().tolist()
    return Answer(
        choice.name, "NDIF", choice.n_params, cfg.n_layer, cfg.n_head, cfg.n_kv_head, sel.seconds,
        "the NDIF job, queue and network included", [(display_token(tok, i), p) for i, p in zip(ids, probs)],
        ids, float(sel.entropy[last]), [(display_token(tok, i), p) for i, p in zip(lens_ids, lens_probs)],
        sel.lens_target[:, 0].float().tolist(), settles_at(lens_ids, ids[0]), sel.digits)


def answer(value: str, text: str) -> Answer | None:
    """One rung's answer to `text`; None while its NDIF job runs (its state is drawn in its place). Refused."""
    choice = open_choice(value) if value != default_model().name else default_model()
    if not choice.remote:
        return _local(value, choice, text)
    enc, _ = encode_for_model(choice.tokenizer, text, choice.model.config.block_size)
    sel = reading(text, choice, TraceRequest(lens_at=(len(enc.ids) - 1,), top_n=TOP))
    return None if sel is None else _remote(value, choice, sel)


def twins(answers: list[Answer]) -> list[tuple[Answer, Answer, float]]:
    """Pairs of the same model run here and on NDIF (the same repo, e.g. GPT-2), with the largest difference
    between their top probabilities over the NDIF answer's candidates."""
    out = []
    for b in (a for a in answers if a.where == "NDIF"):
        for a in (a for a in answers if a.where == "this server"):
            if a.name in (b.name, b.name.rsplit("/", 1)[-1]):  # the Hub's repo id, or a server folder named as it
                here = dict(zip(a.top_ids, (p for _, p in a.top)))
                diff = max((abs(here.get(i, 0.0) - p) for i, (_, p) in zip(b.top_ids, b.top)), default=0.0)
                out.append((a, b, diff))
    return out
