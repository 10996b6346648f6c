"""Model load time: our loader against transformers' `from_pretrained` on the same folder, in one run.

    python bench/bench_load.py [--model models/glassbox-stories] [--repeats 5]

Our loader validates names, shapes and values before using any tensor; the goal is a load well under a
second, and not slower than transformers.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine import load_pretrained  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "glassbox-stories"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging
    logging.disable_progress_bar()

    def ours():
        load_pretrained(args.model)

    def theirs():
        AutoModelForCausalLM.from_pretrained(args.model)
        AutoTokenizer.from_pretrained(args.model)

    ours(), theirs()  # warm the file cache and imports for both
    a, b = timed(ours, args.repeats), timed(theirs, args.repeats)
    print(f"model: {args.model}")
    print(f"  glassbox load_pretrained (model + tokenizer): {a * 1000:8.1f} ms")
    print(f"  transformers from_pretrained (model + tokenizer): {b * 1000:8.1f} ms")
    print(f"ratio ours / transformers: {a / b:.2f}  (goal: load well under 1 s, ratio <= 1)")


if __name__ == "__main__":
    main()
