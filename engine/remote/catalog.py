"""Which NDIF models the picker offers: what NDIF says it runs now (its /status call), and a short curated list
when NDIF cannot be reached, said as such. The curated list is the models this project was built against:
GPT-2, GPT-J-6B and Llama-3.1-8B, 70B and 405B, spelled as NDIF and the Hub spell them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .client import NdifError, running

CURATED = ("openai-community/gpt2", "EleutherAI/gpt-j-6b", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B",
           "meta-llama/Llama-3.1-405B")
RUNNING, NOT_RUNNING, UNKNOWN = "running", "not running", "unknown"


@dataclass(frozen=True)
class Offer:
    repo_id: str
    revision: str | None
    state: str  # RUNNING, NOT_RUNNING (not in NDIF's list now), UNKNOWN (NDIF not reached), or NDIF's word


def offers(host: str) -> tuple[list[Offer], str | None]:
    """The models to offer, NDIF's running ones first, and a sentence when NDIF's list could not be had."""
    try:
        up = running(host)
    except NdifError as e:
        return [Offer(r, None, UNKNOWN) for r in CURATED], (
            f"{e} The list below is Glassbox's short list of models NDIF serves, not what runs now.")
    listed = [Offer(d.repo_id, d.revision, RUNNING if d.state == "RUNNING" else d.state.lower())
              for d in sorted(up.values(), key=lambda d: (d.state != "RUNNING", d.repo_id.lower()))]
    have = {o.repo_id for o in listed}
    return listed + [Offer(r, None, NOT_RUNNING) for r in CURATED if r not in have], None
