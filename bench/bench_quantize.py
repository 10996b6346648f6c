"""Quantized copies (engine/inspect/quantize.py) against float32: forward time, saved size, and what it costs.

    python bench/bench_quantize.py [--tokens 256] [--repeats 5] [--models builtin gpt2] [--threads 1]

For each model, one forward pass over --tokens tokens of the held-out story (repeated to length), median of
--repeats, the candidates run in turn inside each repeat so a busy machine slows them alike: float32, the int8
copy (PyTorch's dynamic quantization, integer kernels) and the simulated 4-bit copy (rounded weights in
float32: it should time like float32). Also the weights' saved size, the mean next-token KL and the share of
positions whose top token flips. Models: "builtin" is models/glassbox-stories; "gpt2" is a GPT-2-small-sized
GPT with random weights (its KL and flips mean little; its time and size do). Only the ratios measured in this
one run mean much; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)
from engine import GPT, GPTConfig, load_pretrained  # noqa: E402
from engine.inspect.quantize import HELDOUT_STORY, compare, quantized_copy  # noqa: E402
from engine.model.trace import encode_for_model  # noqa: E402

GPT2_SMALL = GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768)


def load(name: str):
    if name == "builtin":
        model, tok = load_pretrained("models/glassbox-stories")
        return "models/glassbox-stories", model.eval(), tok
    torch.manual_seed(0)
    model, tok = load_pretrained("models/glassbox-stories")  # a tokenizer for the story's ids (within 50,257)
    return "GPT-2-small-sized, random weights", GPT(GPT2_SMALL).eval(), tok


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["builtin", "gpt2"], choices=["builtin", "gpt2"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the app runs pages on 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{torch.get_num_threads()} threads, load average {load_avg:.1f}, torch {torch.__version__}, "
          f"quantized engine {torch.backends.quantized.engine}")
    print(f"one forward pass over {args.tokens} tokens, median of {args.repeats} after 1 warm-up\n")
    print(f"{'model':<40} {'fp32 ms':>8} {'int8 ms':>8} {'int8/fp32':>9} {'4-bit ms':>9} {'fp32 MB':>8} "
          f"{'int8 MB':>8} {'int8 KL':>8} {'int8 flips':>10} {'4-bit KL':>8}")
    for name in args.models:
        label, model, tok = load(name)
        enc, _ = encode_for_model(tok, HELDOUT_STORY, model.config.block_size)
        ids = (enc.ids * (args.tokens // len(enc.ids) + 1))[:min(args.tokens, model.config.block_size)]
        int8, four = quantized_copy(model, 8), quantized_copy(model, 4)
        idx = torch.tensor([ids])
        t = time_in_turn({"fp32": lambda: model(idx), "int8": lambda: int8.model(idx), "4": lambda: four.model(idx)},
                         args.repeats, 1)
        c8, c4 = compare(model, int8, ids), compare(model, four, ids)
        mb = 2**20
        print(f"{label:<40} {1000 * t['fp32']:>8.1f} {1000 * t['int8']:>8.1f} {t['int8'] / t['fp32']:>8.2f}x "
              f"{1000 * t['4']:>9.1f} {c8.bytes_float / mb:>8.1f} {c8.bytes_quant / mb:>8.1f} "
              f"{float(c8.kl.mean()):>8.4f} {c8.flip_rate:>10.1%} {float(c4.kl.mean()):>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
