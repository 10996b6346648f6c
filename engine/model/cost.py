"""What one Trace of a model costs, from its shape alone, and the server's budget for it.

A Trace (engine/model/trace.py) keeps every activation of a forward pass, so its size grows with layers x
heads x context² (attention scores and patterns, [head, pos, pos] each per layer), with vocabulary x context
(the logits) and with layers x context x width (everything else). A model can be tiny on disk and still need
gigabytes per trace: 2 layers of 16 heads over a 2,048-token context hold 1 GB of attention patterns. So a
model that is not ours (an upload, a Hub model) is priced from its config before it is accepted.

The estimate takes plain numbers, not a GPTConfig, so a config.json can be priced before a model exists. Its
defaults describe our GPT; keyword arguments describe what other architectures record (grouped-query
attention's narrower keys and values, a gated MLP's third activation, no position-embedding table).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import settings
from .families.base import GATED_MLP

BYTES_PER_VALUE = 4  # traces are float32 on the CPU
BUDGET_MB_ENV, BUDGET_S_ENV = settings.env_name("trace_budget_mb"), settings.env_name("trace_budget_s")
# Defaults (engine/settings.py): 256 MB, since Community Cloud has 2.7 GB for the app, the default model and
# every session; 5 s, since a page that takes longer than that to appear feels broken.
# A deliberately slow CPU, so the time estimate errs long: a shared cloud core does about 10 GFLOP/s on
# these matrix sizes (a 2-core dev machine measured 25-60); the softmax and masking touch each attention
# value for about 10 ns; every layer costs about 1 ms of fixed overhead (a dozen small kernels).
FLOPS_PER_S = 10e9
ATTENTION_S_PER_VALUE = 10e-9
LAYER_S = 1e-3


@dataclass(frozen=True)
class TraceCost:
    n_pos: int  # tokens in the trace (the full context when priced for a model)
    attention: int  # bytes of attention scores and patterns: 2 x layers x heads x pos² values
    activations: int  # bytes of every other recorded activation: for our GPT, layers x pos x (9 d_model + 2 d_mlp)
    logits: int  # bytes of the logits: pos x vocab values
    flops: int  # floating-point operations of the forward pass (2 per multiply-add)
    seconds: float  # a generous estimate of the forward pass on a slow CPU

    @property
    def bytes(self) -> int:
        return self.attention + self.activations + self.logits


def trace_cost(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int, d_mlp: int | None = None,
               n_pos: int | None = None, *, n_kv_head: int | None = None, d_head: int | None = None,
               gated_mlp: bool = False, pos_embed: bool = True) -> TraceCost:
    """The cost of one Trace of `n_pos` tokens (default: the whole context, the worst a user can ask for).

    Counts exactly what run_trace keeps, per layer: resid_pre, attn_out, resid_mid, mlp_out, resid_post
    (d_model wide each), q and z (heads x d_head), k and v (kv heads x d_head), the MLP's pre and post (d_mlp
    wide; a gated MLP adds its gate, so three), scores and pattern ([head, pos, pos]); plus hook_embed,
    hook_pos_embed (absent with rotary positions: `pos_embed=False`) and ln_final (d_model wide) and the logits.
    The defaults (kv heads = heads, d_head = d_model / heads, plain MLP, learned positions) are our GPT.
    """
    d, L, t = n_embd, n_layer, block_size if n_pos is None else n_pos
    d_mlp = 4 * d if d_mlp is None else d_mlp
    n_kv = n_head if n_kv_head is None else n_kv_head
    d_q = d if d_head is None else n_head * d_head  # width of q and z: every query head
    d_kv = d * n_kv // n_head if d_head is None else n_kv * d_head  # width of k and v: grouped heads share them
    mlp_widths = 3 if gated_mlp else 2  # a gated MLP records gate, up and their product; ours pre and post
    attention = 2 * L * n_head * t * t
    per_layer = 5 * d + 2 * d_q + 2 * d_kv + mlp_widths * d_mlp
    activations = t * ((3 if pos_embed else 2) * d + L * per_layer)
    # Per token: q/k/v/o projections, the MLP's matmuls (one per width above) and the unembedding; per layer,
    # q.k and pattern.v over every pair of positions.
    flops = (2 * t * (L * (2 * d * d_q + 2 * d * d_kv + mlp_widths * d * d_mlp) + d * vocab_size)
             + 2 * 2 * L * t * t * d_q)
    seconds = flops / FLOPS_PER_S + attention * ATTENTION_S_PER_VALUE + L * LAYER_S
    return TraceCost(n_pos=t, attention=BYTES_PER_VALUE * attention, activations=BYTES_PER_VALUE * activations,
                     logits=BYTES_PER_VALUE * t * vocab_size, flops=flops, seconds=seconds)


def config_cost(cfg, n_pos: int | None = None) -> TraceCost:
    """`trace_cost` of a model config (a ModelConfig: our GPTConfig or an ArchConfig): exactly what its Trace
    keeps (one key and value per query head, as recorded, and a position row even for a rotary model, zeros)."""
    return trace_cost(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size, cfg.d_mlp, n_pos,
                      d_head=cfg.d_head, gated_mlp=cfg.mlp == GATED_MLP)


@dataclass(frozen=True)
class TraceBudget:
    max_bytes: int  # the most one trace may hold
    max_seconds: float  # the longest one trace may take (by the estimate)

    @classmethod
    def from_env(cls) -> "TraceBudget":
        """GLASSBOX_TRACE_BUDGET_MB and GLASSBOX_TRACE_BUDGET_S (engine/settings.py); SettingError, a
        ValueError, for a value that is not a positive number."""
        s = settings.current()
        return cls(max_bytes=s.trace_budget_bytes, max_seconds=s.trace_budget_s)


def size_text(n: int) -> str:
    """Bytes in words: '1.1 GB', '256 MB', '1.1 MB', '104 KB'."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 10 * 2**20:
        return f"{n / 2**20:,.0f} MB"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(1, round(n / 2**10)):,} KB"


def _seconds(s: float) -> str:
    return f"{s:,.0f} s" if s >= 10 else f"{s:.2g} s"


def _operations(n: int) -> str:
    return f"{n / 1e9:,.1f} billion" if n >= 1e8 else f"{n / 1e6:,.1f} million"


def over_budget(cost: TraceCost, budget: TraceBudget) -> str | None:
    """Why a model with this trace cost is refused, naming the figure and the budget; None when it fits."""
    where = f"over its full {cost.n_pos:,}-token context"
    if cost.bytes > budget.max_bytes:
        parts = sorted([(cost.attention, "attention patterns"), (cost.logits, "logits"),
                        (cost.activations, "other activations")], reverse=True)
        biggest = ", ".join(f"{size_text(b)} {what}" for b, what in parts if b)
        return (f"One look inside this model {where} would hold {size_text(cost.bytes)} ({biggest}); this "
                f"server allows {size_text(budget.max_bytes)} per trace ({BUDGET_MB_ENV}). Fewer layers or heads, "
                "a shorter context or a smaller vocabulary would fit.")
    if cost.seconds > budget.max_seconds:
        return (f"One look inside this model {where} would take about {_seconds(cost.seconds)} on a server CPU "
                f"({_operations(cost.flops)} operations); this server allows {_seconds(budget.max_seconds)} per "
                f"trace ({BUDGET_S_ENV}). Fewer or narrower layers, or a shorter context, would fit.")
    return None
