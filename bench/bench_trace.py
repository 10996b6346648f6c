"""Cost of looking inside: a full traced forward against a bare forward and against transformers.

    python bench/bench_trace.py [--model models/glassbox-stories] [--lengths 64 256] [--repeats 15] [--threads N]

For each length, times (median of --repeats after warm-up, torch.no_grad, default threads):
- trace: `model.run_with_cache` plus moving every activation to the CPU as float32, as `trace_ids` does;
- bare: `model(idx)`, the fused attention path, nothing recorded;
- transformers: `GPT2LMHeadModel` on the same weights (eager attention), with
  `output_attentions=True, output_hidden_states=True`, the nearest thing transformers has to a trace.
The candidates run in turn inside each repeat, so a busy machine slows them alike; only the ratios, measured
in this one run, mean much. Goal: trace <= 1.3x bare, and faster than transformers.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)
from engine import load_pretrained, pick_device  # noqa: E402

GOAL_VS_BARE = 1.3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories", help="checkpoint folder (Hugging Face format)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM  # imported here: slow, and only the reference needs it
    import transformers

    device = pick_device()
    model, _ = load_pretrained(args.model, device, with_tokenizer=False)
    hf = AutoModelForCausalLM.from_pretrained(args.model, attn_implementation="eager").to(device).eval()
    cfg = model.config
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {args.model}: {cfg.n_layer} layers, {cfg.n_head} heads, d_model {cfg.n_embd}, "
          f"vocab {cfg.vocab_size}, context {cfg.block_size}, {model.num_params() / 1e6:.2f}M parameters")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load:.1f}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"note: the machine is busy (load {load:.1f} on {os.cpu_count()} CPUs); threads that wait for a "
              f"busy core inflate every time, so compare with --threads 1")
    print(f"median of {args.repeats} after {args.warmup} warm-up rounds\n")

    rows = []
    g = torch.Generator().manual_seed(0)
    for length in args.lengths:
        if length > cfg.block_size:
            print(f"skipping {length} tokens: the context is {cfg.block_size}")
            continue
        idx = torch.randint(0, cfg.vocab_size, (1, length), generator=g).to(device)

        @torch.no_grad()
        def trace():
            logits, cache = model.run_with_cache(idx)
            return logits[0].float().cpu(), {k: v[0].float().cpu() for k, v in cache.items()}

        @torch.no_grad()
        def bare():
            return model(idx)[0]

        @torch.no_grad()
        def reference():
            return hf(idx, output_attentions=True, output_hidden_states=True)

        # The three compute the same thing: check before timing.
        ours, theirs = trace(), reference()
        assert ours[1]["blocks.0.attn.hook_pattern"].shape[-1] == length
        torch.testing.assert_close(ours[0], theirs.logits[0].float().cpu(), atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(bare()[0].float().cpu(), ours[0], atol=1e-3, rtol=1e-3)
        assert theirs.attentions[0] is not None, "transformers returned no attentions (not eager?)"

        t = time_in_turn({"trace": trace, "bare": bare, "transformers": reference}, args.repeats, args.warmup,
                         device)
        rows.append((length, t))

    print(f"{'tokens':>6}  {'trace ms':>9}  {'bare ms':>8}  {'transformers ms':>15}  "
          f"{'trace/bare':>10}  {'trace/transformers':>18}")
    ok = True
    for length, t in rows:
        vs_bare, vs_hf = t["trace"] / t["bare"], t["trace"] / t["transformers"]
        ok &= vs_bare <= GOAL_VS_BARE and vs_hf < 1.0
        print(f"{length:>6}  {t['trace'] * 1e3:>9.2f}  {t['bare'] * 1e3:>8.2f}  {t['transformers'] * 1e3:>15.2f}  "
              f"{vs_bare:>9.2f}x  {vs_hf:>17.2f}x")
    print(f"\ngoal: trace <= {GOAL_VS_BARE}x bare and faster than transformers (trace/transformers < 1): "
          f"{'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
