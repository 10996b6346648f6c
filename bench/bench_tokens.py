"""Server-side cost of live token chips: tokenize-and-render against the tokenizer alone.

    python bench/bench_tokens.py [--model models/glassbox-stories] [--chars 2000] [--repeats 30]

For a text of --chars characters (real prose from the built-in BPE passage, repeated), times (median of
--repeats after warm-up):
- tokenizer: the fast tokenizer's own call, ids and offsets only (`tokenizer(text, return_offsets_mapping=True)`);
- chips: what the Tokens page does per keystroke: `engine.encode` (ids, display strings, offsets) plus
  `ui.chips.chips_html` (the chips' HTML, every token escaped, with its hover text).
Both run in turn inside each repeat, so a busy machine slows them alike; only the ratio, measured in this one
run, means much. The model is never run: the chips need only the tokenizer.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import encode, load_tokenizer  # noqa: E402
from ui.chips import chips_html  # noqa: E402
from ui.tokens.bpe import BUILT_IN  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories", help="checkpoint folder with the tokenizer")
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    tok = load_tokenizer(args.model)
    text = (BUILT_IN * (args.chars // len(BUILT_IN) + 1))[: args.chars]

    def tokenizer_only() -> object:
        return tok(text, add_special_tokens=False, return_offsets_mapping=True)

    def chips() -> str:
        enc = encode(tok, text)
        return chips_html(enc.ids, enc.tokens, tok)

    n_tokens = len(encode(tok, text))
    t = time_in_turn({"tokenizer": tokenizer_only, "chips": chips}, args.repeats, args.warmup)
    print(f"{args.chars:,} characters, {n_tokens:,} tokens, median of {args.repeats}")
    print(f"tokenizer alone        {t['tokenizer'] * 1e3:8.2f} ms")
    print(f"tokenize + chips HTML  {t['chips'] * 1e3:8.2f} ms")
    print(f"ratio                  {t['chips'] / t['tokenizer']:8.2f}x the tokenizer alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
