"""Activation patching: which activations carry what makes two prompts' predictions differ.

Two prompts line up token for token and differ in the word that decides what comes next (the clean one,
"…went to the river. She sat on the bank and looked at the", expects " river"; the corrupted one, "…went to
the town…", expects something else). Run the corrupted prompt, but copy one activation in from the clean
run: if the prediction swings back to the clean one, that activation carried the difference at that point.
The measure is the logit difference between the two answers, logit(clean answer) - logit(corrupted answer),
and the share of it a patch recovers, (patched - corrupted) / (clean - corrupted): 1 is the clean run's
difference, 0 the corrupted run's.

Two grids, as TransformerLens's `patching` module draws them:
- residual stream: `blocks.{L}.hook_resid_pre` at one position, for every layer x position;
- head outputs: `blocks.{L}.attn.hook_z` of one head at every position, for every layer x head.

What it shows is where, for this one pair, the information that separates the answers flows: not what a
neuron or a head "means". A patch of one cell is one forward pass, so a grid is hundreds of them, batched:
- Positions before the first token where the prompts differ are the same in both runs (a token never sees
  the ones after it), so every patched run shares the corrupted run's keys and values there: the grid
  decodes only the positions after it (`decode_step` on a repeated past). A cell whose clean value is the
  corrupted one (before the first difference, and at layer 0 every position whose token matches) is the
  corrupted run, exactly, without a forward pass.
- Patching position p changes nothing before p either, and patching layer L nothing before L: each call
  holds cells of one layer at nearby positions, starts at that layer from the corrupted run's residual stream
  (a `Replace` edit, which our GPT starts from; engine/model/hooks.py) and decodes from its first position on.
- Rows of a call are cells; only the last position's logits are computed (`last_only`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..model.hooks import Edits, Replace
from ..model.trace import encode_for_model
from .price import Price, Refusal, forward_price, nothing

RESID, HEADS = "resid", "heads"  # the two grids
BATCH_BYTES = 64 * 2**20  # activations one batched call may hold at once
MAX_ROWS = 256
BANDS = 8  # residual cells of a layer go in about this many bands of positions (see `batches`)
Progress = Callable[[int, int], None]  # (cells done, cells in all)


@dataclass(frozen=True)
class Pair:
    clean_ids: list[int]  # start marker first
    corrupted_ids: list[int]
    clean_tokens: list[str]
    corrupted_tokens: list[str]

    def __len__(self) -> int:
        return len(self.clean_ids)

    @property
    def differ(self) -> list[int]:
        """Positions where the two prompts have different tokens."""
        return [i for i, (a, b) in enumerate(zip(self.clean_ids, self.corrupted_ids)) if a != b]

    @property
    def first_diff(self) -> int:
        return self.differ[0]


def make_pair(tokenizer, clean: str, corrupted: str, block_size: int) -> Pair:
    """The two prompts as token ids (start marker first). Refusal, in a sentence, for an empty prompt, two
    that do not line up token for token, the same prompt twice, or prompts longer than the context."""
    if not clean.strip() or not corrupted.strip():
        raise Refusal("Both prompts need some text.")
    encoded = []
    for text in (clean, corrupted):
        enc, dropped = encode_for_model(tokenizer, text, block_size)
        if dropped:
            raise Refusal(f"A prompt of {len(enc.ids) + dropped - 1:,} tokens is longer than the model's context of "
                          f"{block_size:,}: patching needs both prompts whole.")
        encoded.append(enc)
    a, b = encoded
    if len(a.ids) != len(b.ids):
        at = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        part_a, part_b = "".join(a.tokens[at:at + 2]), "".join(b.tokens[at:at + 2])
        raise Refusal(f"The two prompts must line up token for token, but the clean one has {len(a.ids) - 1} "
                      f"tokens and the corrupted one {len(b.ids) - 1}: they part at token {at} "
                      f"(“{part_a}” vs “{part_b}”), where a word splits into a different number of pieces. Pick "
                      "words that are one token each, or change the words around them.")
    if a.ids == b.ids:
        raise Refusal("The two prompts are the same tokens: change the word that should decide the answer.")
    return Pair(list(a.ids), list(b.ids), list(a.tokens), list(b.tokens))


@dataclass(frozen=True)
class PairRuns:
    """Both prompts run once: their last-position logits and the clean activations patches copy in."""
    pair: Pair
    clean_logits: torch.Tensor  # [vocab], float32, last position
    corrupted_logits: torch.Tensor  # [vocab]
    clean_act: dict[str, torch.Tensor]  # resid_pre [pos, d_model] and attn.hook_z [pos, head, d_head] per layer
    corrupted_resid: torch.Tensor  # [layer, pos, d_model]: the corrupted run's resid_pre, where a patched run starts


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def run_pair(model, pair: Pair) -> PairRuns:
    ids = torch.tensor([pair.clean_ids, pair.corrupted_ids], device=_device(model))
    logits, cache = model.run_with_cache(ids)  # one batch of two: the prompts have the same length
    L = model.config.n_layer
    keep = [f"blocks.{i}.{h}" for i in range(L) for h in ("hook_resid_pre", "attn.hook_z")]
    corrupted = torch.stack([cache[f"blocks.{i}.hook_resid_pre"][1] for i in range(L)])
    return PairRuns(pair, logits[0, -1].float().cpu(), logits[1, -1].float().cpu(), {k: cache[k][0] for k in keep},
                    corrupted)


def default_answers(runs: PairRuns) -> tuple[int, int]:
    """(clean answer, corrupted answer): each run's most likely next token; where both favour the same one, the
    corrupted answer is the token whose log-probability rose most from the clean run to the corrupted one."""
    a, b = int(runs.clean_logits.argmax()), int(runs.corrupted_logits.argmax())
    if a == b:
        rise = runs.corrupted_logits.log_softmax(-1) - runs.clean_logits.log_softmax(-1)
        rise[a] = float("-inf")
        b = int(rise.argmax())
    return a, b


def logit_diff(logits: torch.Tensor, answers: tuple[int, int]) -> torch.Tensor:
    """logits [..., vocab] -> [...]: logit of the clean answer minus logit of the corrupted one."""
    return logits[..., answers[0]] - logits[..., answers[1]]


# --- one patched run ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Patch:
    """Copy activation `name` from the source run into this one, at `positions` (None: all) and, for a head's
    output (`attn.hook_z`), only `heads` (None: all)."""
    name: str
    positions: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None


def patch_edits(patches: list[Patch], source: dict[str, torch.Tensor]) -> Edits:
    """Edits that copy each patch's values from `source` (activations without the batch dimension, e.g. a
    Trace's or `PairRuns.clean_act`) into every row of the run."""
    by_name: dict[str, list[Patch]] = {}
    for p in patches:
        by_name.setdefault(p.name, []).append(p)

    def edit_for(name: str, ps: list[Patch]):
        def edit(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            src = source[name].to(x.device, x.dtype)
            for p in ps:
                pos = slice(None) if p.positions is None else list(p.positions)
                if p.heads is None:
                    x[:, pos] = src[pos]
                else:
                    for h in p.heads:
                        x[:, pos, h] = src[pos, h]
            return x
        return edit
    return {name: edit_for(name, ps) for name, ps in by_name.items()}


@torch.no_grad()
def patched_run(model, ids: list[int], patches: list[Patch], source: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward pass over `ids` with `patches` copied in from `source`: its logits [pos, vocab] and every
    activation as patched, under TransformerLens names (batch dimension dropped)."""
    logits, cache = model.run_with_cache(torch.tensor([ids], device=_device(model)),
                                         edits=patch_edits(patches, source))
    return logits[0].float().cpu(), {k: v[0].float().cpu() for k, v in cache.items()}


def cell_patches(kind: str, layer: int, index: int) -> list[Patch]:
    """The patch of one grid cell: the residual stream at (layer, position `index`), or head `index`'s output
    at every position."""
    if kind == RESID:
        return [Patch(f"blocks.{layer}.hook_resid_pre", positions=(index,))]
    return [Patch(f"blocks.{layer}.attn.hook_z", heads=(index,))]


# --- the grids ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatchGrid:
    kind: str  # RESID (cells: layer x position) or HEADS (layer x head)
    logit_diff: torch.Tensor  # [layer, pos or head]: the logit difference of each patched run
    clean_diff: float  # the clean run's logit difference
    corrupted_diff: float  # the corrupted run's
    answers: tuple[int, int]  # (clean answer, corrupted answer) token ids
    computed: int  # cells that needed a forward pass (the rest copy in the value already there: see `needed`)

    @property
    def recovered(self) -> torch.Tensor:
        """[layer, pos or head]: the share of the logit difference each patch recovers (1 clean, 0 corrupted)."""
        return (self.logit_diff - self.corrupted_diff) / (self.clean_diff - self.corrupted_diff)


@dataclass(frozen=True)
class Batch:
    """One model call of a grid: the cells (layer, position or head) of one layer, decoded from `start` on."""
    layer: int
    indices: tuple[int, ...]  # positions (RESID) or heads (HEADS), one row each
    start: int  # the first position decoded; the corrupted run's keys and values stand before it


def max_rows(cfg, new: int, context: int) -> int:
    """Rows one call may hold: its widest activations (the MLP's middle, or attention's scores) within
    BATCH_BYTES."""
    widest = max(3 * cfg.n_embd + cfg.d_mlp * (3 if cfg.mlp == "gated" else 2), 2 * cfg.n_head * context)
    return max(1, min(MAX_ROWS, BATCH_BYTES // (4 * new * widest + 4 * cfg.vocab_size)))


def needed(kind: str, runs: PairRuns, n_layer: int, n_head: int) -> list[list[int]]:
    """Per layer, the cells (positions or heads) a patch can change: a residual cell before the first
    difference, or one whose clean and corrupted values are the same (every matching token at layer 0), copies
    in the value already there, so it is the corrupted run without a forward pass."""
    first = runs.pair.first_diff
    if kind == HEADS:
        return [list(range(n_head)) for _ in range(n_layer)]
    out = []
    for layer in range(n_layer):
        clean = runs.clean_act[f"blocks.{layer}.hook_resid_pre"]
        out.append([p for p in range(first, len(runs.pair))
                    if not torch.equal(clean[p], runs.corrupted_resid[layer, p])])
    return out


def batches(kind: str, cfg, runs: PairRuns) -> list[Batch]:
    """A grid's calls, in the order positions are reached (the shared past only moves forward).

    Residual cells of one layer go in bands of nearby positions, each decoding from its first one: a cell at
    position p needs the positions from p on, and a band wastes at most its width on the others (narrower bands
    waste less but make more, smaller calls: on a CPU, 8 bands measured fastest for the built-in model and for
    GPT-2 small alike). Head cells patch every position from the first difference on, so they all start there."""
    n_pos, first = len(runs.pair), runs.pair.first_diff
    rows = max_rows(cfg, n_pos - first, n_pos)
    out = []
    for layer, cells in enumerate(needed(kind, runs, cfg.n_layer, cfg.n_head)):
        if kind == HEADS:
            out += [Batch(layer, tuple(cells[i:i + rows]), first) for i in range(0, len(cells), rows)]
            continue
        band = max(1, min(rows, -(-(n_pos - first) // BANDS)))
        i = 0
        while i < len(cells):  # positions within `band` of the band's first one
            j = i
            while j < len(cells) and cells[j] < cells[i] + band:
                j += 1
            out.append(Batch(layer, tuple(cells[i:j]), cells[i]))
            i = j
    return sorted(out, key=lambda b: b.start)


def price_grid(cfg, runs: PairRuns, kind: str, skips: bool = True) -> Price:
    """The grid's cost before it runs, call by call as `patching_grid` makes them. `skips`: the model starts
    a patched run at its layer (our GPT does; a transformers-run family computes the layers before it too)."""
    n_pos, first = len(runs.pair), runs.pair.first_diff
    total = forward_price(cfg, 1, first, first, logit_rows=1) if first > 0 else nothing()
    for b in batches(kind, cfg, runs):
        layers = cfg.n_layer - b.layer if skips else cfg.n_layer
        total += forward_price(cfg, len(b.indices), n_pos - b.start, n_pos, logit_rows=len(b.indices),
                               forwards=len(b.indices), layers=layers)
    cells = cfg.n_layer * (n_pos if kind == RESID else cfg.n_head)
    return Price(cells, total.calls, total.flops, total.seconds)


def _batch_edits(kind: str, b: Batch, runs: PairRuns, device) -> Edits:
    """Row r of the call patches cell b.indices[r]. Every row starts from the corrupted run's residual stream
    entering the layer (a Replace: the layers before it need not run), positions counted from b.start."""
    n, L = len(b.indices), b.layer
    index = torch.tensor(b.indices, device=device)
    rows = torch.arange(n, device=device)
    resid = runs.corrupted_resid[L, b.start:].to(device)[None].repeat(n, 1, 1)  # [rows, new, d_model]
    if kind == RESID:
        resid[rows, index - b.start] = runs.clean_act[f"blocks.{L}.hook_resid_pre"].to(device)[index]
        return {f"blocks.{L}.hook_resid_pre": Replace(resid)}
    values = runs.clean_act[f"blocks.{L}.attn.hook_z"].to(device)[b.start:, index].transpose(0, 1)  # [rows, new, d]

    def edit(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[rows, :, index] = values.to(z.dtype)
        return z
    return {f"blocks.{L}.hook_resid_pre": Replace(resid), f"blocks.{L}.attn.hook_z": edit}


@torch.no_grad()
def patching_grid(model, runs: PairRuns, kind: str, answers: tuple[int, int] | None = None,
                  progress: Progress | None = None) -> PatchGrid:
    """Every cell of one grid (RESID or HEADS), batched; see the module's docstring for how."""
    if kind not in (RESID, HEADS):
        raise ValueError(f"kind must be {RESID!r} or {HEADS!r}, not {kind!r}")
    cfg, pair = model.config, runs.pair
    answers = answers or default_answers(runs)
    clean_diff = float(logit_diff(runs.clean_logits, answers))
    corrupted_diff = float(logit_diff(runs.corrupted_logits, answers))
    if abs(clean_diff - corrupted_diff) < 1e-6:
        raise Refusal("Both prompts give these two answers the same logit difference, so there is nothing for a "
                      "patch to recover: pick answers the prompts disagree on.")
    T, first, device = len(pair), pair.first_diff, _device(model)
    diffs = torch.full((cfg.n_layer, T if kind == RESID else cfg.n_head), corrupted_diff)  # before `first`: corrupted
    corrupted = torch.tensor([pair.corrupted_ids], device=device)
    past, at = None, 0  # the corrupted prompt's first `at` tokens, one row
    plan = batches(kind, cfg, runs)
    total, done = sum(len(b.indices) for b in plan), 0
    for b in plan:
        if b.start > at:  # bring the shared past up to the call's first position
            past = model.decode_step(corrupted[:, at:b.start], past)[1]
            at = b.start
        n = len(b.indices)
        logits, _ = model.decode_step(corrupted[:, b.start:].expand(n, -1), model.repeat_past(past, n),
                                      edits=_batch_edits(kind, b, runs, device), last_only=True)
        diffs[b.layer, list(b.indices)] = logit_diff(logits[:, -1].float().cpu(), answers)
        done += n
        if progress is not None:
            progress(done, total)
    return PatchGrid(kind, diffs, clean_diff, corrupted_diff, answers, computed=total)
