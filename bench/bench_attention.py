"""Cost of the Attention page's "All heads" view against a model run and against one Plotly heatmap per head.

    python bench/bench_attention.py [--model models/glassbox-stories] [--lengths 18 255] [--repeats 7]

For each text length (tokens including the start marker), median seconds of:
- trace: `run_trace` on the text, the model run a head click must NOT repeat (the reference);
- payload: what the view costs the server once per (model, text): every head's pattern (or, for a long text,
  one layer's) encoded for the browser and serialised to JSON as Streamlit sends it. A head click costs the
  server nothing more: the browser redraws, and the report it sends back resends a reference to this message;
- per-head: the overview drawn as one Plotly heatmap subplot per head (make_subplots), serialised;
and the JSON size of both. The candidates run in turn inside each repeat, so a busy machine slows them alike;
only the ratios, measured in this one run, mean much. The browser's drawing time is bench/bench_browser.py's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import load_pretrained, run_trace  # noqa: E402
from engine.inspect.heads import stacked_patterns  # noqa: E402
from ui.views.attention import payload, sent_heads  # noqa: E402
from ui.views.payload import _memo as built  # noqa: E402

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
        layers, heads = sent_heads(cfg.n_layer, cfg.n_head, len(trace), 1, 1)

        def view() -> int:
            built.clear()  # not cached yet, as for a new text
            return len(json.dumps(payload(trace, layers, heads)))

        t = time_in_turn({"trace": lambda: run_trace(model, tokenizer, text), "payload": view,
                          "per-head": lambda: per_head_overview(patterns).to_json()}, args.repeats)
        ours = len(json.dumps(payload(trace, layers, heads)))
        theirs = len(per_head_overview(patterns).to_json())
        print(f"{len(trace):4d} tokens: trace {t['trace'] * 1e3:7.1f} ms | payload {t['payload'] * 1e3:7.1f} ms "
              f"({t['payload'] / t['trace']:.2f}x trace, {len(layers) * len(heads)} of {cfg.n_layer * cfg.n_head} heads) | per-head overview "
              f"{t['per-head'] * 1e3:7.1f} ms | payload JSON {ours / 1e3:.0f} kB vs per-head {theirs / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
