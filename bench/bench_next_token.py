"""What moving a sampling slider costs, against what running the model costs.

    python bench/bench_next_token.py [--model models/glassbox-stories] [--repeats 15] [--threads N]

On a prompt filling the whole context, times (median of --repeats after warm-up, in turn so a busy machine
slows them alike):
- forward: `model(idx)`, the bare forward pass a slider move would cost if it reran the model;
- trace: `run_trace`'s forward with every activation recorded, what the page runs once per text;
- re-sample: what the page does on a slider move, from the cached logits: `sampling_stages`, `removed_by`,
  `top_tokens` and building the main distribution figure;
- re-sample, heaviest stage: the same plus the entropy stage's figure (the page draws one stage at a time;
  this one filters the logits at 40 temperatures).
Only the ratios, measured in this one run, mean much. Goal: a re-sample well under one forward pass.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import load_pretrained, pick_device, sampling_stages  # noqa: E402
from engine.generation.sampling_lab import PRESETS, blame, removed_by, top_tokens  # noqa: E402
from ui.next_token.figures import distribution_figure  # noqa: E402
from ui.next_token.stages import entropy_figure  # noqa: E402

BARS = 15  # tokens the page lists by default


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories", help="checkpoint folder (Hugging Face format)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = pick_device()
    model, tokenizer = load_pretrained(args.model, device)
    cfg = model.config
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {args.model}: {cfg.n_layer} layers, {cfg.n_head} heads, d_model {cfg.n_embd}, "
          f"vocab {cfg.vocab_size}, context {cfg.block_size}")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load:.1f}, "
          f"median of {args.repeats} after {args.warmup} warm-up rounds\n")

    idx = torch.randint(0, cfg.vocab_size, (1, cfg.block_size), generator=torch.Generator().manual_seed(0))
    idx = idx.to(device)
    with torch.no_grad():
        logits = model(idx)[0][0, -1].float().cpu()  # [vocab]: what the trace caches for the last position
    s = PRESETS["balanced"]  # top-p and min-p on: the most work a slider move does
    labels_of = {}

    def labels(ids: list[int]) -> list[str]:
        return [labels_of.setdefault(t, f"tok{t}") for t in ids]

    @torch.no_grad()
    def forward():
        return model(idx)[0]

    @torch.no_grad()
    def trace():
        logits_, cache = model.run_with_cache(idx)
        return logits_[0].float().cpu(), {k: v[0].float().cpu() for k, v in cache.items()}

    def resample():
        stages = sampling_stages(logits, s)
        masks = removed_by(logits, s)
        top = top_tokens(stages, BARS)
        return stages, masks, distribution_figure(top, labels(top.ids), blame(masks, top.ids))

    def resample_worst():
        # The page draws one stage at a time; the entropy stage is the heaviest (40 temperatures).
        stages, masks, fig = resample()
        return fig, entropy_figure(logits, stages, s)

    t = time_in_turn({"forward": forward, "trace": trace, "resample": resample, "resample_worst": resample_worst},
                     args.repeats, args.warmup, device)
    rows = [("forward pass (bare)", t["forward"]), ("forward pass (traced, once per text)", t["trace"]),
            ("re-sample: stages + main figure", t["resample"]),
            ("re-sample: + the heaviest stage figure", t["resample_worst"])]
    for name, sec in rows:
        print(f"{name:<40} {sec * 1e3:>9.2f} ms")
    ratio, ratio_worst = t["resample"] / t["forward"], t["resample_worst"] / t["forward"]
    print(f"\nre-sample / forward: {ratio:.3f}x (main figure), {ratio_worst:.3f}x (with the entropy stage)")
    print(f"re-sample / traced forward: {t['resample'] / t['trace']:.3f}x")
    print(f"goal: a re-sample costs less than one forward pass: {'met' if ratio < 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
