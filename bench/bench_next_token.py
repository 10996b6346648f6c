"""What moving a sampling slider costs, against what running the model costs.

    python bench/bench_next_token.py [--model models/glassbox-stories] [--repeats 15] [--threads N]

On a prompt filling the whole context, times (median of --repeats after warm-up, in turn so a busy machine
slows them alike):
- forward: `model(idx)`, the bare forward pass a slider move would cost if it reran the model;
- trace: `run_trace`'s forward with every activation recorded, what the page runs once per text;
- re-sample: `sampling_stages`, `removed_by` and `top_tokens` from the cached logits with the main distribution
  figure: what the server did on every slider move before the lab moved to the browser (ui/views/sampling.py),
  and still does for a generation step's figure;
- lab payload: what the server does now, once per text and position: the row of logits and the labels of its
  likeliest tokens encoded for the browser, serialised. A slider move itself costs the server no figure at all.
Only the ratios, measured in this one run, mean much. Goal: a re-sample well under one forward pass.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import load_pretrained, pick_device, sampling_stages  # noqa: E402
from engine.generation.sampling_lab import PRESETS, blame, removed_by, top_tokens  # noqa: E402
from ui.next_token.figures import distribution_figure  # noqa: E402
from ui.views.payload import _memo as built  # noqa: E402
from ui.views.sampling import payload  # noqa: E402

BARS = 15  # tokens the page lists by default


class OnePosition:
    """What the lab's payload reads of a trace: one position's logits, its ids and its length."""
    def __init__(self, logits: torch.Tensor) -> None:
        self.logits, self.ids = logits[None], [0]

    def __len__(self) -> int:
        return 1


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

    row = OnePosition(logits)

    def lab_payload():
        built.clear()  # not cached yet, as for a new text
        return len(json.dumps(payload(row, 0, lambda t: f"tok{t}")))

    t = time_in_turn({"forward": forward, "trace": trace, "resample": resample, "payload": lab_payload},
                     args.repeats, args.warmup, device)
    rows = [("forward pass (bare)", t["forward"]), ("forward pass (traced, once per text)", t["trace"]),
            ("re-sample: stages + main figure", t["resample"]),
            ("lab payload (once per text and position)", t["payload"])]
    for name, sec in rows:
        print(f"{name:<40} {sec * 1e3:>9.2f} ms")
    ratio = t["resample"] / t["forward"]
    print(f"\nre-sample / forward: {ratio:.3f}x; lab payload / forward: {t['payload'] / t['forward']:.3f}x "
          f"({lab_payload() / 1e3:.0f} kB)")
    print(f"re-sample / traced forward: {t['resample'] / t['trace']:.3f}x")
    print(f"goal: a re-sample costs less than one forward pass: {'met' if ratio < 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
