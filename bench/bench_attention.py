"""Cost of the Attention page's figures against a model run and against one Plotly heatmap per head.

    python bench/bench_attention.py [--model models/glassbox-stories] [--lengths 18 255] [--repeats 7]

For each text length (tokens including the start marker), median seconds of:
- trace: `run_trace` on the text, the model run a head click must NOT repeat (the reference);
- click: what one head click costs in Python: the overview, the large head view and the line view, built
  and serialised to JSON as Streamlit sends them;
- per-head: the overview drawn the other way, one heatmap subplot per head (make_subplots), serialised;
and the JSON size of both overviews. The candidates run in turn inside each repeat, so a busy machine slows
them alike; only the ratios, measured in this one run, mean much. The browser's drawing time is not
measured here (the issue measured 144 separate heatmaps at 8 s to show against 3.4 s for one tiled one).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import load_pretrained, run_trace  # noqa: E402
from engine.inspect.heads import stacked_patterns  # noqa: E402
from ui.patterns import head_figure, line_view_figure, overview_figure  # noqa: E402

WORDS = ("once upon a time there was a little fox who found a shiny red ball in the garden and played with it "
         "all day until the sun went down").split()


def text_of(tokenizer, n_tokens: int) -> str:
    """A story-like text of exactly n_tokens - 1 tokens (the start marker makes n_tokens)."""
    words, text = [], ""
    while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < n_tokens - 1:
        words.append(WORDS[len(words) % len(WORDS)])
        text = " ".join(words)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens - 1]
    return tokenizer.decode(ids)


def per_head_overview(patterns) -> go.Figure:
    n_layer, n_head = patterns.shape[:2]
    fig = make_subplots(rows=n_layer, cols=n_head, horizontal_spacing=0.01, vertical_spacing=0.01)
    for layer in range(n_layer):
        for head in range(n_head):
            fig.add_trace(go.Heatmap(z=patterns[layer, head].numpy(), coloraxis="coloraxis"),
                          row=layer + 1, col=head + 1)
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories")
    ap.add_argument("--lengths", type=int, nargs="+", default=[18, 255])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    model, tokenizer = load_pretrained(args.model, "cpu")
    cfg = model.config
    print(f"model {args.model}: {cfg.n_layer} layers x {cfg.n_head} heads, context {cfg.block_size}")
    for n in args.lengths:
        text = text_of(tokenizer, min(n, cfg.block_size))
        trace = run_trace(model, tokenizer, text)
        patterns = stacked_patterns(trace)
        last = len(trace) - 1

        def click() -> int:
            figs = (overview_figure(patterns, (1, 1)),
                    head_figure(patterns[1, 1], trace.tokens, "bench", query=last),
                    line_view_figure(patterns[1, 1, last], trace.tokens, last, "bench"))
            return sum(len(f.to_json()) for f in figs)

        t = time_in_turn({"trace": lambda: run_trace(model, tokenizer, text), "click": click,
                          "per-head": lambda: per_head_overview(patterns).to_json()}, args.repeats)
        ours = len(overview_figure(patterns, (1, 1)).to_json())
        theirs = len(per_head_overview(patterns).to_json())
        print(f"{len(trace):4d} tokens: trace {t['trace'] * 1e3:7.1f} ms | click {t['click'] * 1e3:7.1f} ms "
              f"({t['click'] / t['trace']:.2f}x trace) | per-head overview {t['per-head'] * 1e3:7.1f} ms | "
              f"overview JSON {ours / 1e3:.0f} kB vs per-head {theirs / 1e3:.0f} kB ({ours / theirs:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
