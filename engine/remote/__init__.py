"""Models that run elsewhere: NDIF (the National Deep Inference Fabric) through nnsight, a third source of models
beside the built-in one, the server's folders and the Hub. Built on the model wing only.

- request: `TraceRequest`, what a view reads (one layer's heads, the lens, the residual at a few positions,
  whole logits at a few positions, the top N everywhere), and what its answer weighs before it is asked
- kernels: the job, run next to the model (nnsight ships its source): selective, and attention rebuilt from q, k
- recipes: per family, where its parts live and how its q and k are rotated; its architecture facts
- record: the one nnsight trace, sent to NDIF or run locally (the same code)
- model: `RemoteModel`, a model NDIF runs as this server holds it (config, tokenizer, meta architecture)
- selective: `Selective`, what a job recorded, under the Trace's names
- plan: tokenize, check, send or run, and read the answer
- client: NDIF's protocol through nnsight, bounded, every failure one sentence; what NDIF runs now
- catalog: the models to offer (NDIF's list, or a curated one when it cannot be reached)
- jobs: one job per (model, revision, text, request) for every session, polled in a thread
- lib: nnsight, imported after what its process-wide `.save` mount would break
"""
from .catalog import CURATED, Offer, offers
from .client import NdifError
from .jobs import BOARD, Ticket
from .model import ModelUnavailable, RemoteModel, open_remote
from .plan import Plan, finish, plan, run_here, send_plan
from .recipes import RECIPES, UnsupportedModel
from .request import RequestError, TraceRequest
from .selective import NotRecorded, Selective

__all__ = ["BOARD", "CURATED", "ModelUnavailable", "NdifError", "NotRecorded", "Offer", "Plan", "RECIPES",
           "RemoteModel", "RequestError", "Selective", "Ticket", "TraceRequest", "UnsupportedModel", "finish",
           "offers", "open_remote", "plan", "run_here", "send_plan"]
