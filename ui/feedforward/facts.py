"""What the Feed-forward page can measure for the tour to quote (ui.view.Fact): how mixed a neuron is, and what
quantizing the weights does (the Quantization tab's comparison).

A neuron's selectivity here is the share of its strongest reference examples (the Neuron explorer's list) that
peak on its most common peak token: 1.0 fires on one thing, 0.25 on a mixture. Among the neurons most active on
the text at the chosen layer, the tour shows the least selective and quotes the most selective beside it.
"""
from __future__ import annotations

from collections import Counter

from engine.inspect.neurons import rank_neurons
from engine.inspect.quantize import BITS, INT8
from engine.model.cost import size_text

from ..cache import get_trace
from ..state import MAX_CHARS
from ..view import FOUND, Context, spoken
from .data import get_atlas
from .quantization import SOURCES, comparison, tokens_for
from .state import PAGE

ACTIVE = 32  # the neurons most active on the text among which the tour looks
MIXED_BELOW = 0.5  # a neuron is "a mixture" when fewer than half its top examples peak on one token


def peak_tokens(atlas, layer: int, neuron: int, tokenizer) -> list[str]:
    """The token each of the neuron's top examples peaks on, strongest example first."""
    return [spoken(tokenizer, atlas.reference.ids[e.doc][e.pos]) for e in atlas.examples(layer, neuron)]


def selectivity(peaks: list[str]) -> tuple[float, str]:
    """(share of the examples on the most common peak token, that token)."""
    token, count = Counter(peaks).most_common(1)[0]
    return count / len(peaks), token


@PAGE.fact("mixed_neuron", ("layer", "neuron", "examples", "distinct", "peaks", "share", "token", "clean",
                            "clean_token", "clean_share"))
def mixed_neuron(ctx: Context) -> dict[str, object]:
    choice = ctx.choice
    layer = int(PAGE.kept("layer", 0))
    trace = get_trace(ctx.text[:MAX_CHARS], choice)
    post = trace.act[f"blocks.{layer}.mlp.hook_post"][1 if trace.has_bos else 0:]  # [pos, d_mlp]
    active, _ = rank_neurons(post, min(ACTIVE, post.shape[1]), "max")
    atlas = get_atlas(choice)
    scored = [(selectivity(peak_tokens(atlas, layer, n, choice.tokenizer)), n) for n in active.tolist()]
    (share, token), neuron = min(scored, key=lambda x: x[0][0])  # stable: the most active among equals
    (clean_share, clean_token), clean = max(scored, key=lambda x: x[0][0])
    peaks = peak_tokens(atlas, layer, neuron, choice.tokenizer)
    distinct = list(dict.fromkeys(peaks))
    return {FOUND: share < MIXED_BELOW, "layer": layer, "neuron": neuron, "examples": len(peaks),
            "distinct": len(distinct), "peaks": distinct[:4],
            "share": f"{share:.0%}", "token": token, "clean": clean, "clean_token": clean_token,
            "clean_share": f"{clean_share:.0%}"}


@PAGE.fact("quantization", ("bits", "kind", "memory", "memory_float", "flips", "kl", "ppl", "ppl_float", "tokens"))
def quantization(ctx: Context) -> dict[str, object]:
    """The Quantization tab's comparison, at its bit width and on its text, as the tab draws it."""
    choice = ctx.choice
    bits = PAGE.kept("bits", INT8)
    bits = bits if bits in BITS else INT8
    source = PAGE.kept("quant_source", SOURCES[0])
    c = comparison(choice, bits, tokens_for(choice, source if source in SOURCES else SOURCES[0], ctx.text))
    return {FOUND: bool(c.flips.any()), "bits": bits, "kind": "real int8" if c.real else "simulated",
            "memory": size_text(c.bytes_quant), "memory_float": size_text(c.bytes_float), "flips": f"{c.flip_rate:.1%}",
            "kl": f"{float(c.kl.mean()):.4f}", "ppl": f"{c.ppl_quant:.2f}", "ppl_float": f"{c.ppl_float:.2f}",
            "tokens": f"{len(c.flips):,}"}
