"""The activation patching grid, batched (engine/intervene/patching.py) against one forward pass per cell.

    python bench/bench_patching.py [--tokens 64] [--diff 4] [--sample 48] [--threads 1]

For the built-in model and a GPT-2-small-shaped model (12 layers x 12 heads, width 768, GPT-2's vocabulary,
random weights), at `--tokens` tokens (start marker included) with the prompts differing at position
`--diff`, wall seconds of:
- grid: `patching_grid`, the residual-stream grid (layers x positions) and the head grid (layers x heads);
- per cell: the same cells, one forward pass each (`final_hidden` with that cell's edit, the last position's
  logits only, so the comparison is about batching and sharing, not the vocabulary matmul). On the GPT-2-sized
  model a sample of `--sample` cells is timed and scaled to the grid (said so in the output).
The grids are checked against the per-cell values on the cells timed. One thread, as the app's pages run
(GLASSBOX_FORWARD_THREADS=1). The price the page shows before running is printed beside each time.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import GPT, GPTConfig  # noqa: E402
from engine.intervene.patching import (HEADS, RESID, Pair, cell_patches, default_answers, logit_diff,  # noqa: E402
                                       patch_edits, patching_grid, price_grid, run_pair)
from engine.intervene.price import seconds_text  # noqa: E402
from engine.model.hf import load_model  # noqa: E402


def make_pair(vocab: int, n_tokens: int, diff: int, ids: list[int] | None = None, seed: int = 0) -> Pair:
    """A clean prompt (the model's text ids, or random ids) and a corrupted one differing at `diff`."""
    rng = random.Random(seed)
    clean = (ids or [rng.randrange(1, vocab) for _ in range(n_tokens)])[:n_tokens]
    corrupted = list(clean)
    corrupted[diff] = (clean[diff] + 1 + rng.randrange(vocab - 2)) % vocab or 1
    names = [str(i) for i in clean]
    return Pair(clean, corrupted, names, names)


def per_cell(model, runs, kind: str, answers, cells: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    ids = torch.tensor([runs.pair.corrupted_ids])
    out = {}
    with torch.no_grad():
        for layer, index in cells:
            edits = patch_edits(cell_patches(kind, layer, index), runs.clean_act)
            hidden = model.final_hidden(ids, edits=edits)
            out[(layer, index)] = float(logit_diff(model.lm_head(hidden[0, -1]).float(), answers))
    return out


def bench(name: str, model, pair: Pair, sample: int | None) -> None:
    cfg = model.config
    runs = run_pair(model, pair)
    answers = default_answers(runs)
    print(f"\n{name}: {cfg.n_layer} layers x {cfg.n_head} heads, width {cfg.n_embd}, vocabulary {cfg.vocab_size:,}; "
          f"{len(pair)} tokens, prompts differ at position {pair.first_diff}")
    for kind, width in ((RESID, len(pair)), (HEADS, cfg.n_head)):
        cells = [(layer, i) for layer in range(cfg.n_layer) for i in range(width)]
        price = price_grid(cfg, runs, kind)
        t0 = time.perf_counter()
        grid = patching_grid(model, runs, kind, answers)
        t_grid = time.perf_counter() - t0
        timed = cells if sample is None or sample >= len(cells) else random.Random(1).sample(cells, sample)
        t0 = time.perf_counter()
        values = per_cell(model, runs, kind, answers, timed)
        t_cells = (time.perf_counter() - t0) * len(cells) / len(timed)
        worst = max(abs(values[c] - float(grid.logit_diff[c])) for c in timed)
        scaled = "" if len(timed) == len(cells) else f" ({len(timed)} cells timed, scaled to {len(cells)})"
        label = "residual stream" if kind == RESID else "head outputs"
        print(f"  {label:15s} {cfg.n_layer} x {width} = {len(cells):4d} cells: grid {t_grid:7.2f} s | "
              f"one forward per cell {t_cells:7.2f} s{scaled} | {t_cells / t_grid:5.1f}x | "
              f"priced at {seconds_text(price.seconds)} | max |difference| {worst:.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--diff", type=int, default=4)
    ap.add_argument("--sample", type=int, default=48, help="cells timed one by one on the GPT-2-sized model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{os.getloadavg()[0]:.2f} at the start")
    model, tokenizer = load_model(args.model)
    story = "Once upon a time, there was a little duck named Pip. " * 12
    ids = [0] + tokenizer(story)["input_ids"]
    bench("built-in model", model, make_pair(model.config.vocab_size, args.tokens, args.diff, ids), None)
    torch.manual_seed(0)
    gpt2 = GPT(GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768)).eval()
    for p in gpt2.parameters():
        p.requires_grad_(False)
    bench("GPT-2-small-sized (random weights)", gpt2, make_pair(50257, args.tokens, args.diff), args.sample)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
