"""What one selective trace asks a remote model for, and what its answer weighs before it is asked.

A trace of everything is out of the question at this scale: Llama-3.1-405B's attention scores and weights
alone are 2 x 126 layers x 128 heads x 256² numbers at 256 tokens, about 4 GB in bf16. A page asks for what it
draws (`TraceRequest`): the heads of one layer, the logit lens at a few positions, the residual stream at a few
positions, the final logits whole at a few positions, and the top N of the final distribution (with its
entropy) at every position.
The job computes those next to the model (engine/remote/kernels.py) and sends back only them.

`answer_bytes` prices an answer from the model's numbers alone, `refusal` says in one sentence when it is over
the cap (GLASSBOX_NDIF_MAX_MB) and how many tokens would fit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import settings

MAX_MB_ENV = settings.env_name("ndif_max_mb")
MAX_POSITIONS = 8  # positions of the lens, the residual or the full logits in one request: each costs a vocabulary
TOP_N = 20  # tokens of the final distribution kept at every position
LENS_K = 5  # tokens per lens stage and position (the engine's lens keeps as many)
OVERHEAD = 64 << 10  # torch.save's own bytes around the tensors, generously


class RequestError(ValueError):
    """A request that cannot be asked: the message is one plain sentence."""


@dataclass(frozen=True)
class TraceRequest:
    """What a view reads (frozen: part of a cache key). Positions count from 0, the start marker."""
    layer: int | None = None  # whose heads: blocks.{layer}.attn.hook_pattern [head, q, k]; None: no attention
    lens_at: tuple[int, ...] = ()  # positions of the logit lens: the top LENS_K at every stage
    lens_k: int = LENS_K
    resid_at: tuple[int, ...] = ()  # positions whose residual stream is kept after every layer
    logits_at: tuple[int, ...] = ()  # positions whose final logits are kept whole (the sampling lab needs them)
    top_n: int = TOP_N  # the top N of the final distribution at every position, with its entropy

    def spec(self) -> dict:
        """The plain dict the job reads (kernels.job): no Glassbox class travels to NDIF."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def check(self, n_layer: int, n_pos: int, vocab: int) -> None:
        """RequestError unless every layer and position exists and the counts are sane."""
        if self.layer is not None and not 0 <= self.layer < n_layer:
            raise RequestError(f"The model has layers 0 to {n_layer - 1}, not {self.layer}.")
        for name in ("lens_at", "resid_at", "logits_at"):
            at = getattr(self, name)
            if len(at) > MAX_POSITIONS:
                raise RequestError(f"A request reads at most {MAX_POSITIONS} positions at once, not {len(at)}.")
            if any(not 0 <= p < n_pos for p in at):
                raise RequestError(f"The text has positions 0 to {n_pos - 1}; {name} asks for {list(at)}.")
        if not 1 <= self.top_n <= min(vocab, 1000) or not 1 <= self.lens_k <= min(vocab, 100):
            raise RequestError(f"top_n must be 1 to {min(vocab, 1000)} and lens_k 1 to {min(vocab, 100)}.")

    def covers(self, other: TraceRequest) -> bool:
        """Whether this request's answer holds everything `other` asks for (a cached answer can serve it)."""
        return ((other.layer is None or other.layer == self.layer)
                and set(other.lens_at) <= set(self.lens_at) and other.lens_k <= self.lens_k
                and set(other.resid_at) <= set(self.resid_at) and set(other.logits_at) <= set(self.logits_at)
                and other.top_n <= self.top_n)


def answer_bytes(req: TraceRequest, n_pos: int, n_layer: int, n_head: int, d_model: int, vocab: int,
                 itemsize: int = 2) -> int:
    """Bytes of the answer to `req` at `n_pos` tokens (values of `itemsize` bytes: 2 in bf16, ids 4)."""
    total = OVERHEAD + n_pos * req.top_n * (4 + itemsize) + 4 * n_pos  # top N and entropy at every position
    if req.layer is not None:
        total += n_head * n_pos * n_pos * itemsize  # one layer's pattern
    stages = n_layer + 1  # the embeddings, then after every layer
    total += stages * len(req.lens_at) * (req.lens_k * (4 + itemsize) + itemsize)
    total += stages * len(req.resid_at) * d_model * itemsize
    total += len(req.logits_at) * vocab * itemsize
    return total


def longest_fitting(req: TraceRequest, cap: int, n_layer: int, n_head: int, d_model: int, vocab: int,
                    itemsize: int = 2) -> int:
    """The most tokens whose answer to `req` stays within `cap` bytes (0 if none does)."""
    low, high = 0, 1 << 20
    while low < high:  # the answer grows with the length: bisect
        mid = (low + high + 1) // 2
        if answer_bytes(req, mid, n_layer, n_head, d_model, vocab, itemsize) <= cap:
            low = mid
        else:
            high = mid - 1
    return low


def refusal(req: TraceRequest, n_pos: int, cap: int, model: str, n_layer: int, n_head: int, d_model: int,
            vocab: int) -> str | None:
    """Why the answer to `req` at `n_pos` tokens is over `cap` bytes, with the length that fits; None if it fits."""
    need = answer_bytes(req, n_pos, n_layer, n_head, d_model, vocab)
    if need <= cap:
        return None
    fits = longest_fitting(req, cap, n_layer, n_head, d_model, vocab)
    what = f"one layer's {n_head} heads" if req.layer is not None else "what this view reads"
    return (f"At these {n_pos:,} tokens, {what} of {model} would come back as {_mb(need)}, over the "
            f"{_mb(cap)} this server takes from NDIF per request ({MAX_MB_ENV}): shorten the text to about "
            f"{max(fits - 1, 0):,} tokens.")


def _mb(n: int) -> str:
    """Megabytes with two decimals: an answer just over the cap must not read as the cap itself."""
    return f"{n / 2**20:,.2f} MB"
