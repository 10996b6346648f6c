"""MLP neurons: what fires, how often, and where it fires most.

A neuron is one unit of a block's MLP hidden layer, read after the nonlinearity (`blocks.{L}.mlp.hook_post`,
shape [pos, d_mlp]). It "fires" where its activation is above zero: GELU passes positive inputs almost
unchanged and squashes negative ones towards 0 (never below -0.17), so > 0 is the natural threshold.

Max-activating examples (as Neuronpedia shows them) come from a reference set of texts: short stories the
default model writes itself from fixed openings and a fixed seed, so the set exists offline on a fresh
machine and is the same on every machine. Its activations are summarised once per model into a
`NeuronAtlas`: for every neuron, its top documents, the peak position in each, and a window of activations
around the peak, so choosing another neuron is a lookup, never a model run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..generation.decode import generate_batch
from ..generation.sampling import SamplingSettings
from ..model.tokenizer import display_token, encode, start_id
from ..model.trace import Trace

# Openings in the style of the stories the default model was trained on; the model writes the rest.
REFERENCE_PROMPTS: tuple[str, ...] = (
    "Once upon a time, there was a little girl named Lily.",
    "One day, a small dog found a big stick in the park.",
    "Tom and his mom went to the store to buy some bread.",
    "The sun was shining and the birds were singing.",
    "There was a big red truck that liked to go fast.",
    "Sara had a new doll. She loved it very much.",
    "A little bird lived in a tall tree near the river.",
    "Ben wanted to play outside, but it was raining.",
    "The cat saw a mouse under the table.",
    "Mia found a shiny key in the garden.",
    "Once upon a time, there was a kind old man who lived in a small house.",
    "The boy was sad because he lost his ball.",
    "Lucy and her friend Max built a castle of sand.",
    "It was a cold night, and the moon was bright.",
    "A happy frog jumped from one leaf to another.",
    "Mom said, \"Don't touch the hot stove!\"",
    "Tim had a red balloon. The wind was strong.",
    "In the forest, a bear was looking for honey.",
    "Anna liked to draw pictures of flowers.",
    "The little fish swam fast to find its mom.",
    "One morning, Sam woke up and saw snow outside.",
    "Grandpa told a story about a brave knight.",
    "The puppy was hungry, so it looked for food.",
    "Emma and Jack went on a trip to the beach.",
)
REFERENCE_TOKENS = 128  # new tokens per story (fewer if the model ends the story)
REFERENCE_SEED = 0
REFERENCE_SAMPLING = SamplingSettings(temperature=0.8, top_k=50)
SNIPPET_BEFORE, SNIPPET_AFTER = 12, 4  # tokens of context shown around an example's peak
TOP_EXAMPLES = 8  # examples kept per neuron, each from a different story


def firing_fraction(post: torch.Tensor) -> torch.Tensor:
    """[pos, d_mlp] -> [pos]: the share of neurons whose activation is above zero at each position."""
    return (post > 0).float().mean(dim=-1)


def rank_neurons(post: torch.Tensor, k: int, by: str = "max", skip_first: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` most active neurons of a layer on one text, strongest first: (indices [k], scores [k]).

    post: [pos, d_mlp]. by="max": the highest activation anywhere in the text; by="mean": the average over
    positions. skip_first leaves out position 0 (the start marker, which often has outsized activations).
    Ties keep the lower neuron index first, so the order is stable.
    """
    if by not in ("max", "mean"):
        raise ValueError(f"by must be 'max' or 'mean', got {by!r}")
    if skip_first and post.shape[0] > 1:
        post = post[1:]
    scores = post.amax(dim=0) if by == "max" else post.mean(dim=0)  # [d_mlp]
    k = max(0, min(k, scores.numel()))
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    return order, scores[order]


def layer_strength(trace: Trace, metric: str) -> torch.Tensor:
    """[layer, pos] overview of how hard each MLP works at each position.

    metric="out_norm": the size (L2 norm) of what the MLP writes into the residual stream;
    metric="firing": the share of its neurons above zero; metric="mean": its mean activation.
    """
    rows = []
    for layer in range(trace.config.n_layer):
        if metric == "out_norm":
            rows.append(trace.act[f"blocks.{layer}.hook_mlp_out"].norm(dim=-1))
        elif metric == "firing":
            rows.append(firing_fraction(trace.act[f"blocks.{layer}.mlp.hook_post"]))
        elif metric == "mean":
            rows.append(trace.act[f"blocks.{layer}.mlp.hook_post"].mean(dim=-1))
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return torch.stack(rows)  # [layer, pos]


@dataclass(frozen=True)
class ReferenceSet:
    """Texts the neuron explorer searches, and how one model's tokenizer splits them."""
    prompts: tuple[str, ...]  # the fixed openings
    texts: tuple[str, ...]  # opening + the default model's continuation
    ids: tuple[tuple[int, ...], ...]  # per text: <|endoftext|> first, then the text's tokens (fits the context)
    tokens: tuple[tuple[str, ...], ...]  # display form of each id

    @property
    def n_tokens(self) -> int:
        """Tokens of text (start markers not counted)."""
        return sum(len(ids) - 1 for ids in self.ids)


def generate_reference_texts(model, tokenizer, prompts: tuple[str, ...] = REFERENCE_PROMPTS,
                             n_tokens: int = REFERENCE_TOKENS, seed: int = REFERENCE_SEED,
                             settings: SamplingSettings = REFERENCE_SAMPLING) -> tuple[str, ...]:
    """Each prompt continued by `model` for up to `n_tokens` tokens; the same seed gives the same texts.

    All stories advance together with a key/value cache (engine/generation/decode.py), so 24 stories of 128 tokens cost
    about one forward pass over them; a story that draws <|endoftext|> ends there.
    """
    generator = torch.Generator().manual_seed(seed)  # one CPU generator: the draws happen on the CPU
    eot = start_id(tokenizer)
    starts = [[eot] + encode(tokenizer, p).ids for p in prompts]
    new = generate_batch(model, starts, n_tokens, settings, generator, stop_id=eot)
    # Decode prompt and continuation together, so a character split across the seam stays whole.
    return tuple(tokenizer.decode(s[1:] + n) for s, n in zip(starts, new))


def tokenize_reference(texts: tuple[str, ...], tokenizer, block_size: int,
                       prompts: tuple[str, ...] = REFERENCE_PROMPTS) -> ReferenceSet:
    """Split the texts with `tokenizer` (any model's), start marker first, cut to the context."""
    eot = start_id(tokenizer)
    ids = tuple(tuple([eot] + encode(tokenizer, t).ids[:block_size - 1]) for t in texts)
    tokens = tuple(tuple(display_token(tokenizer, i) for i in doc) for doc in ids)
    return ReferenceSet(prompts=prompts, texts=texts, ids=ids, tokens=tokens)


@dataclass(frozen=True)
class NeuronAtlas:
    """Every neuron's strongest moments on a reference set. Tensors are on the CPU, float32 / int64."""
    reference: ReferenceSet
    top_values: torch.Tensor  # [layer, d_mlp, k]: the neuron's peak activation in each of its top texts
    top_doc: torch.Tensor  # [layer, d_mlp, k]: which text
    top_pos: torch.Tensor  # [layer, d_mlp, k]: position of the peak in that text
    windows: torch.Tensor  # [layer, d_mlp, k, before + 1 + after]: activations around the peak (nan off the text)
    firing: torch.Tensor  # [layer, d_mlp]: share of reference tokens where the neuron is above zero
    before: int = SNIPPET_BEFORE
    after: int = SNIPPET_AFTER

    def examples(self, layer: int, neuron: int) -> list["Example"]:
        """The neuron's top examples, strongest first."""
        out = []
        for j in range(self.top_values.shape[-1]):
            doc, pos = int(self.top_doc[layer, neuron, j]), int(self.top_pos[layer, neuron, j])
            lo = max(1, pos - self.before)  # never show the start marker as context
            hi = min(len(self.reference.ids[doc]), pos + self.after + 1)
            w0 = lo - (pos - self.before)  # where the snippet starts inside the window
            acts = self.windows[layer, neuron, j, w0:w0 + hi - lo]
            out.append(Example(doc=doc, pos=pos, value=float(self.top_values[layer, neuron, j]),
                               tokens=self.reference.tokens[doc][lo:hi], acts=acts.tolist(), peak=pos - lo))
        return out


@dataclass(frozen=True)
class Example:
    """One max-activating snippet."""
    doc: int  # index of the reference text
    pos: int  # position of the peak in that text
    value: float  # the activation at the peak
    tokens: tuple[str, ...]  # display forms of the snippet's tokens
    acts: list[float]  # the neuron's activation at each snippet token
    peak: int  # index of the peak token within the snippet


ATLAS_BYTES = 64 * 2**20  # above this, the reference set's activations are not all kept at once (two passes)


@torch.no_grad()
def build_atlas(model, reference: ReferenceSet, k: int = TOP_EXAMPLES, batch: int = 8,
                before: int = SNIPPET_BEFORE, after: int = SNIPPET_AFTER, max_bytes: int = ATLAS_BYTES
                ) -> NeuronAtlas:
    """Run the reference set through `model` and keep each neuron's top-k texts (one peak per text).

    Texts are batched with right padding: a causal model's positions never see what comes after them, so
    the padding changes nothing before it, and padded positions are masked out. Position 0 (the start
    marker) is left out of every statistic. What is kept is about 20 values per neuron. The activations of the
    whole set, layer x text x position x d_mlp floats (25 MB for the default model, about 450 MB for GPT-2
    small), are held at once only when they fit `max_bytes`; otherwise a first pass finds each neuron's top
    texts batch by batch and a second pass reads the windows around the peaks, so memory stays at one batch.
    """
    cfg = model.config
    device = next(model.parameters()).device
    n_docs = len(reference.ids)
    if n_docs == 0:
        raise ValueError("the reference set is empty")
    longest = max(len(d) for d in reference.ids)
    k = min(k, n_docs)
    lengths = torch.tensor([len(d) for d in reference.ids])
    valid = torch.arange(longest)[None, :] < lengths[:, None]  # [doc, pos]
    valid[:, 0] = False

    def batches():
        """(first doc, [layer, docs, pos, d_mlp] activations) for each batch of texts."""
        for start in range(0, n_docs, batch):
            docs = reference.ids[start:start + batch]
            idx = torch.tensor([list(d) + [d[0]] * (longest - len(d)) for d in docs], device=device)
            _, cache = model.run_with_cache(idx)
            yield start, torch.stack([cache[f"blocks.{layer}.mlp.hook_post"].float().cpu()
                                      for layer in range(cfg.n_layer)])
            del cache

    doc_max = torch.empty(cfg.n_layer, n_docs, cfg.d_mlp)  # [layer, doc, d_mlp]: each text's peak, and where
    doc_arg = torch.empty(cfg.n_layer, n_docs, cfg.d_mlp, dtype=torch.long)
    fires = torch.zeros(cfg.n_layer, cfg.d_mlp)
    whole = 4 * cfg.n_layer * n_docs * longest * cfg.d_mlp <= max_bytes
    post = torch.empty(cfg.n_layer, n_docs, longest, cfg.d_mlp) if whole else None
    for start, acts in batches():
        stop = start + acts.shape[1]
        ok = valid[start:stop]  # [docs, pos]
        doc_max[:, start:stop], doc_arg[:, start:stop] = acts.masked_fill(~ok[None, :, :, None], float("-inf")).max(2)
        fires += ((acts > 0) & ok[None, :, :, None]).sum(dim=(1, 2)).float()
        if post is not None:
            post[:, start:stop] = acts
    top_values, top_doc = doc_max.topk(k, dim=1)  # [layer, k, d_mlp]
    top_pos = doc_arg.gather(1, top_doc)  # [layer, k, d_mlp]
    top_values, top_doc, top_pos = (t.permute(0, 2, 1).contiguous() for t in (top_values, top_doc, top_pos))
    # Windows of activations around each peak: [layer, d_mlp, k, window].
    offsets = torch.arange(-before, after + 1)
    wpos = top_pos[..., None] + offsets  # [layer, d_mlp, k, window]
    inside = (wpos >= 1) & (wpos < lengths[top_doc][..., None])
    wpos = wpos.clamp(0, longest - 1)
    layer_ix = torch.arange(cfg.n_layer)[:, None, None, None]
    neuron_ix = torch.arange(cfg.d_mlp)[None, :, None, None]
    doc_ix = top_doc[..., None].expand_as(wpos)
    if post is not None:
        windows = post[layer_ix, doc_ix, wpos, neuron_ix]
    else:
        windows = torch.empty(wpos.shape)
        for start, acts in batches():  # the second pass: each batch fills the windows of its own texts
            mine = (doc_ix >= start) & (doc_ix < start + acts.shape[1])
            local = (doc_ix - start).clamp(0, acts.shape[1] - 1)
            windows = torch.where(mine, acts[layer_ix, local, wpos, neuron_ix], windows)
    windows = windows.masked_fill(~inside, float("nan"))
    firing = fires / valid.sum().clamp(min=1)
    return NeuronAtlas(reference=reference, top_values=top_values, top_doc=top_doc, top_pos=top_pos,
                       windows=windows, firing=firing, before=before, after=after)
