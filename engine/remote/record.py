"""The request itself: one nnsight trace whose body is the job (engine/remote/kernels.py), run where the model is.

`record` is the only nnsight block Glassbox writes. Given a non-blocking backend (engine/remote/client.py) the
block is not run here: nnsight serialises its source, and the source of the functions it calls, and the
backend sends that to NDIF, which runs it next to the hosted model; the answer is fetched later by polling.
Without a backend it runs here, on a local model, through nnsight's own local execution: the very same code,
which is how the tests hold it to the engine's Trace (patterns, lens, logits) and to transformers' eager
attention before anything is trusted remotely.

nnsight finds a trace's body by reading this file's source, so the body stays a plain `with` block: what it
reads from the surrounding function (`model`, `ids`, `spec`, `parts`, `job`) travels with it. `job` and the
kernels module are shipped by their source (registered below), since NDIF has no Glassbox installed.
"""
from __future__ import annotations

import torch

from . import kernels
from .kernels import job
from .lib import import_nnsight

_registered = False


def ship_kernels_by_value() -> None:
    """Tell nnsight to send the kernels' source with every request (once per process)."""
    global _registered
    if not _registered:
        import_nnsight().register(kernels)
        _registered = True


def record(model, ids: list[int], spec: dict, parts: dict, backend=None) -> dict | None:
    """Run the job over `ids` on `model` (an nnsight model): with `backend` None, here, returning the job's
    tensors; with a non-blocking remote backend, send it and return None (the backend polls for the answer)."""
    ship_kernels_by_value()
    batch = torch.tensor([ids], dtype=torch.long)  # [1, pos]: tokenized here, so the server sees ids only
    answer = None
    with torch.no_grad():  # nothing here needs gradients; on NDIF the server decides
        with model.trace(batch, backend=backend):
            answer = job(model, spec, parts).save()
    return answer
