"""The remote path, end to end, against an NDIF-protocol server on 127.0.0.1 (tests/ndif_fake.py: nnsight's own
request and response schema, jobs executed on tiny local models in bf16, as NDIF runs its models). What nnsight
really sends goes over the wire: received -> queued -> running -> completed, and every way it fails, each one
sentence that never quotes the key."""
from __future__ import annotations

import time

import pytest
import torch

from engine.remote import BOARD, NdifError, TraceRequest, finish, offers, open_remote, plan, run_here, send_plan
from engine.remote.client import ask, running
from engine.remote.jobs import Board
from engine.remote.model import read_tokenizer
from ndif_fake import FakeNdif, served_model, start, write_tiny

KEY = "ndif-test-key-1234567890"
MODELS = {"openai-community/gpt2": "gpt2", "meta-llama/Llama-3.1-8B": "llama"}
TEXT = "Once upon a time, there was a little cat named Tom. Tom liked to play."
CAP = 16 << 20


@pytest.fixture(scope="module")
def ndif_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ndif-models")
    for repo, family in MODELS.items():
        write_tiny(root / repo.replace("/", "--"), family)
    return root


@pytest.fixture(autouse=True)
def env(ndif_dir, monkeypatch):
    monkeypatch.setenv("GLASSBOX_NDIF_DIR", str(ndif_dir))


@pytest.fixture(scope="module")
def served(ndif_dir):
    return {repo: served_model(ndif_dir / repo.replace("/", "--")) for repo in MODELS}


@pytest.fixture
def fake(served):
    """A fresh server (its own jobs and log) over the same loaded models."""
    from ndif_fake import Served
    f = FakeNdif({r: Served(r, m) for r, m in served.items()}, keys={KEY})
    server = start(f)
    yield f
    server.shutdown()


def wait(job, limit_s: float = 30.0) -> tuple[dict, list[str]]:
    """Poll until the answer arrives; the stages seen on the way."""
    seen, deadline = [job.stage], time.monotonic() + limit_s
    while time.monotonic() < deadline:
        saved = ask(job)
        if seen[-1] != job.stage:
            seen.append(job.stage)
        if saved is not None:
            return saved, seen
        time.sleep(0.05)
    raise AssertionError(f"no answer in {limit_s} s; stages {seen}")


@pytest.mark.parametrize("repo", list(MODELS))
def test_a_job_goes_received_queued_running_completed_and_agrees_with_local_to_bf16(repo, fake, ndif_dir):
    from nnsight.modeling.transformers import TransformersModel
    fake.behaviour = "slow:0.4"  # long enough to be seen running, and a second job to be seen waiting its turn
    model = open_remote(repo)
    req = TraceRequest(layer=1, lens_at=(4,), logits_at=(4,))
    first = send_plan(model, plan(model, TEXT + " First.", req, CAP), fake.base, KEY, CAP)
    p = plan(model, TEXT, req, CAP)
    job = send_plan(model, p, fake.base, KEY, CAP)
    saved, seen = wait(job)
    assert seen == ["received", "queued", "running", "completed"], seen
    wait(first)
    sel = finish(model, p, saved, seconds=1.0)
    assert sel.dtype == torch.bfloat16 and sel.digits == 3, "NDIF's models run in bf16, and the answer says so"
    folder = ndif_dir / repo.replace("/", "--")
    local = run_here(model, TransformersModel(str(folder), task="text-generation", tokenizer=read_tokenizer(folder)),
                     TEXT, req)
    assert sel.ids == local.ids
    assert (sel.pattern(1, 0).float() - local.pattern(1, 0)).abs().max() < 2e-2
    assert (sel.top_probs.float() - local.top_probs).abs().max() < 2e-2
    assert sel.lens_ids[-1, 0, 0] == local.lens_ids[-1, 0, 0]
    posts = [r for r in fake.requests if r["path"] == "/request"]
    assert len(posts) == 2 and {p["key"] for p in posts} == {KEY} and posts[0]["nnsight-version"]
    assert all(r["key"] in (KEY, "") for r in fake.requests), "the key goes to the NDIF address only"
    assert not [r for r in fake.requests if r["path"] == "/answer" and r["key"]], "not with the answer's download"


def test_the_job_s_key_is_forgotten_once_it_ends(fake):
    model = open_remote("openai-community/gpt2")
    job = send_plan(model, plan(model, TEXT, TraceRequest(), CAP), fake.base, KEY, CAP)
    board = Board()
    ticket = board.ask("k", "session-a", lambda: job, lambda saved, s: saved, limit_s=30, most=4)
    deadline = time.monotonic() + 30
    while ticket.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ticket.stage == "completed" and job.backend.api_key == ""


@pytest.mark.parametrize("key, kind", [("", "no_key"), ("not-the-key", "wrong_key")])
def test_no_key_and_a_wrong_key(fake, key, kind):
    model = open_remote("openai-community/gpt2")
    with pytest.raises(NdifError) as e:
        send_plan(model, plan(model, TEXT, TraceRequest(), CAP), fake.base, key, CAP)
    assert e.value.kind == kind and "\n" not in str(e.value)
    assert not key or key not in str(e.value)


def test_a_key_quoted_back_by_a_server_stays_out_of_the_log(fake, caplog):
    import logging
    model = open_remote("openai-community/gpt2")
    fake.behaviour = "echo"
    with caplog.at_level(logging.WARNING, logger="glassbox.ndif"), pytest.raises(NdifError) as e:
        send_plan(model, plan(model, TEXT, TraceRequest(), CAP), fake.base, "sk-typed-secret", CAP)
    assert e.value.kind == "wrong_key" and "sk-typed-secret" not in str(e.value)
    assert "HTTP 401" in caplog.text and "[the key]" in caplog.text and "sk-typed-secret" not in caplog.text


def test_ndif_down_and_ndif_unreachable(fake):
    model = open_remote("openai-community/gpt2")
    p = plan(model, TEXT, TraceRequest(), CAP)
    fake.behaviour = "down"
    with pytest.raises(NdifError) as e:
        send_plan(model, p, fake.base, KEY, CAP)
    assert e.value.kind == "down" and "HTTP 503" in str(e.value)
    with pytest.raises(NdifError) as e:
        send_plan(model, p, "http://127.0.0.1:9", KEY, CAP)  # nothing listens on the discard port
    assert e.value.kind == "down" and "could not be reached" in str(e.value)


def test_a_model_ndif_is_not_running(fake):
    model = open_remote("openai-community/gpt2")
    fake.behaviour = "not_running"
    job = send_plan(model, plan(model, TEXT, TraceRequest(), CAP), fake.base, KEY, CAP)
    with pytest.raises(NdifError) as e:
        wait(job)
    assert e.value.kind == "not_running" and "hotswapping" not in str(e.value), "NDIF's own words stay in the log"


def test_an_answer_over_the_cap_is_refused_even_when_it_arrives_compressed(fake):
    model = open_remote("openai-community/gpt2")
    fake.behaviour = "huge"  # 64 MB of zeros: a few KB once compressed
    job = send_plan(model, plan(model, TEXT, TraceRequest(), 1 << 20), fake.base, KEY, 1 << 20)
    with pytest.raises(NdifError) as e:
        wait(job)
    assert e.value.kind == "too_big" and "1.0 MB" in str(e.value)


@pytest.mark.parametrize("behaviour, kind", [("never", "time_limit"), ("queued", "queue")])
def test_a_job_that_never_ends_is_given_up_at_the_time_limit(fake, behaviour, kind):
    model = open_remote("openai-community/gpt2")
    fake.behaviour = behaviour
    p = plan(model, TEXT, TraceRequest(), CAP)
    board = Board()
    ticket = board.ask(("gpt2", TEXT), "session-a", lambda: send_plan(model, p, fake.base, KEY, CAP),
                       lambda saved, s: saved, limit_s=1.5, most=4)
    deadline = time.monotonic() + 20
    while ticket.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ticket.stage == "failed" and ticket.error.kind == kind, (ticket.stage, ticket.error)


def test_a_room_asking_the_same_thing_sends_one_job(fake):
    model = open_remote("openai-community/gpt2")
    p = plan(model, TEXT, TraceRequest(layer=0), CAP)
    fake.behaviour = "slow:0.3"
    key = (model.model_key(), TEXT, p.request)
    tickets = [BOARD.ask(key, f"session-{i}", lambda: send_plan(model, p, fake.base, KEY, CAP),
                         lambda saved, s: finish(model, p, saved, s), limit_s=30, most=8) for i in range(30)]
    assert len({id(t) for t in tickets}) == 1 and len(tickets[0].waiters) == 30
    deadline = time.monotonic() + 30
    while tickets[0].active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tickets[0].stage == "completed" and tickets[0].answer.seconds > 0.3
    assert len([r for r in fake.requests if r["path"] == "/request"]) == 1
    again = BOARD.ask(key, "session-late", lambda: pytest.fail("a cached answer sends nothing"), None, 30, 8)
    assert again is tickets[0]
    BOARD.forget(key)


def test_cancelling_stops_the_wait_once_nobody_waits(fake):
    model = open_remote("openai-community/gpt2")
    fake.behaviour = "never"
    p = plan(model, TEXT, TraceRequest(), CAP)
    board = Board()
    ticket = board.ask("k", "a", lambda: send_plan(model, p, fake.base, KEY, CAP), lambda s, t: s, 30, 4)
    board.ask("k", "b", None, None, 30, 4)
    board.cancel("k", "a")
    assert ticket.active and board.get("k") is ticket, "b still waits"
    board.cancel("k", "b")
    assert ticket.stage == "cancelled" and board.get("k") is None


def test_too_many_jobs_at_once_is_said(fake):
    fake.behaviour = "never"
    model = open_remote("openai-community/gpt2")
    board = Board()
    for i in range(2):
        p = plan(model, f"{TEXT} {i}", TraceRequest(), CAP)
        board.ask(i, "a", lambda p=p: send_plan(model, p, fake.base, KEY, CAP), lambda s, t: s, 30, 2)
    with pytest.raises(NdifError, match="already waiting on 2 NDIF jobs"):
        board.ask(3, "a", None, None, 30, 2)


def test_what_ndif_runs_now_and_the_curated_list_when_it_cannot_be_reached(fake):
    up = running(fake.base)
    assert set(up) == set(MODELS) and all(d.state == "RUNNING" for d in up.values())
    listed, note = offers(fake.base)
    assert note is None and [o.repo_id for o in listed][:2] == sorted(MODELS, key=str.lower)
    assert {o.state for o in listed[2:]} == {"not running"}
    fake.behaviour = "down"
    listed, note = offers(fake.base)
    assert "short list" in note and all(o.state == "unknown" for o in listed)
    assert "meta-llama/Llama-3.1-405B" in [o.repo_id for o in listed]


def test_the_host_s_check_script_runs_the_pages_three_requests(fake, monkeypatch, capsys):
    """bench/ndif_check.py, which a host with a real key runs against NDIF, here against the NDIF-protocol server
    (no timing is asserted: it prints them)."""
    import importlib.util

    from conftest import ROOT
    monkeypatch.setenv("GLASSBOX_NDIF_URL", fake.base)
    monkeypatch.setenv("NDIF_API_KEY", KEY)
    monkeypatch.setattr("sys.argv", ["ndif_check.py", "--model", "meta-llama/Llama-3.1-8B"])
    spec = importlib.util.spec_from_file_location("ndif_check", ROOT / "bench" / "ndif_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.main() in (0, 1)  # 1: over NDIF's published latency, which a busy test machine may be
    out = capsys.readouterr().out
    for request in ("attention (one layer)", "logit lens (last token)", "next token (last token)"):
        assert request in out and "then drawing" in out, out
    assert KEY not in out
