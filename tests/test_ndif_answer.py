"""An NDIF answer is loaded building tensors and plain containers only (engine.remote.client.load_answer):
what torch.save writes comes back, and a pickle that would call anything else is refused in one sentence."""
from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict

import pytest
import torch

from engine.remote.client import NdifError, load_answer


def _saved(obj, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=protocol)
    return buf.getvalue()


def test_tensors_and_plain_containers_come_back_exactly() -> None:
    answer = {"logits": torch.randn(3, 11), "ids": [1, 2, 3], "meta": OrderedDict(n=3, name="x"),
              "half": torch.randn(2, 4).to(torch.bfloat16), "nested": (torch.arange(5), {"k": None})}
    got = load_answer(_saved(answer))
    assert torch.equal(got["logits"], answer["logits"]) and got["ids"] == [1, 2, 3]
    assert got["half"].dtype == torch.bfloat16 and torch.equal(got["half"], answer["half"])
    assert got["meta"] == answer["meta"] and torch.equal(got["nested"][0], torch.arange(5))


class _Hostile:
    def __reduce__(self):
        return os.system, ("echo pwned > /dev/null",)


@pytest.mark.parametrize("payload", [
    pickle.dumps(_Hostile(), protocol=4),  # a bare pickle that would run a shell command
    _saved({"x": torch.ones(2), "y": _Hostile()}),  # the same inside a torch.save archive
    pickle.dumps(pickle.loads, protocol=4),  # any callable outside torch's allowlist
])
def test_anything_else_is_refused_in_one_sentence(payload: bytes, monkeypatch) -> None:
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("the answer ran code"))
    with pytest.raises(NdifError) as e:
        load_answer(payload)
    assert e.value.kind == "failed" and "could not be read as tensors" in str(e.value)


def test_garbage_is_refused_in_one_sentence() -> None:
    for junk in (b"", b"not a pickle", os.urandom(256)):
        with pytest.raises(NdifError):
            load_answer(junk)
