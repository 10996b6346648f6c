"""The hosted client against a real OpenAI-compatible server, beside the fake one's tests (test_hosted.py):
`transformers serve` (pip install "transformers[serving]", in requirements-dev.txt) on 127.0.0.1, serving a
tiny random Llama saved by this module, started once for the module and stopped after it. It ignores
`logprobs`, and the tiny model has no chat template: the client must sample from it, say that it sends no
log-probabilities, and say in its own words what it refused. Skipped, with the reason, where the server cannot
run. Offline: the server gets HF_HUB_OFFLINE=1 and a local folder."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import stop_group
from engine_fixtures import save_tiny_hf

from engine.generation import hosted
from engine.generation.hosted import Endpoint

pytestmark = pytest.mark.slow

START_S = 120  # the most the server may take to answer /health (about 15 s on a busy 2-core machine)
REQUEST_S = 30  # per request: a tiny model answers in milliseconds, a busy machine is slower


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, model id) of `transformers serve` pinned to a tiny Llama folder."""
    from transformers.utils.import_utils import is_serve_available
    if not is_serve_available():
        pytest.skip('transformers serve needs its serving extras: pip install "transformers[serving]"')
    root = tmp_path_factory.mktemp("served")
    folder = root / "tiny-llama"
    save_tiny_hf("llama", folder)  # no chat template: what many base models on the Hub are
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_UPDATE_CHECK": "1", "CUDA_VISIBLE_DEVICES": ""}
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder),
                                 "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                                 "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < START_S and not _up(base):
            time.sleep(0.5)
        if not _up(base):
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"transformers serve did not start within {START_S} s here: {tail[0][:200]}")
        yield base + "/v1", str(folder)
    finally:
        stop_group(proc)


def complete(endpoint: Endpoint, **kw):
    """As the page calls it for a host's own local server (allowed to be on 127.0.0.1)."""
    return hosted.complete(endpoint, None, "Once upon a time", allow_private=True, timeout_s=REQUEST_S, **kw)


def test_completions_sample_and_say_the_server_sends_no_log_probabilities(served) -> None:
    base, model = served
    ep = Endpoint(base, model, "completions")
    done = complete(ep, max_tokens=4, temperature=1.0, tokens=True, need_logprobs=False)  # as sampling asks
    assert isinstance(done.text, str) and done.text and done.steps == () and done.finish_reason == "length"
    with pytest.raises(hosted.NoLogprobs, match="sent no log-probabilities: it ignores the request for them"):
        complete(ep, max_tokens=1, top=5)  # as "Ask for its next-token candidates" asks


def test_chat_without_a_chat_template_is_explained_not_blamed_on_the_candidates(served) -> None:
    base, model = served
    with pytest.raises(hosted.Rejected) as e:
        complete(Endpoint(base, model, "chat"), max_tokens=2, top=10, instruction=hosted.CONTINUE)
    message = str(e.value)
    assert "no chat template" in message and "choose the completions API kind" in message
    assert "candidates" not in message and "tokenizer.chat_template" not in message  # ours, not the server's


def test_a_model_the_server_does_not_serve_is_named(served) -> None:
    base, _ = served
    with pytest.raises(hosted.UnknownModel, match="does not know the model 'gpt-4o-mini'"):
        complete(Endpoint(base, "gpt-4o-mini", "completions"), max_tokens=1, tokens=True, need_logprobs=False)
