"""Cost of the Feed-forward page's derived data, against the traced forward pass it comes from.

    python bench/bench_feedforward.py [--model models/glassbox-stories] [--length 256] [--repeats 5] [--threads N]

Prints seconds and ratios measured in this one run (the machine may be busy; only the ratios mean much):
- lens and contributions of one trace, against the trace itself (goal: each below 1x a trace);
- the neuron atlas over the reference set, against one trace;
- writing the reference stories with the batched key/value cache (engine/generation/decode.py), against
  `engine.generate` one story at a time (the plain forward recomputes the whole context per token), on
  a few stories so the slow path stays short.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import median_s  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine import EOT, encode, generate, load_pretrained, pick_device, trace_ids  # noqa: E402
from engine.generation.decode import generate_batch  # noqa: E402
from engine.inspect import neurons as nrn  # noqa: E402
from engine.inspect.lens import contributions, logit_lens  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/glassbox-stories")
    ap.add_argument("--length", type=int, default=256, help="tokens in the traced text")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stories", type=int, default=4, help="stories for the generation comparison")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_pretrained(args.model, pick_device())
    cfg = model.config
    length = min(args.length, cfg.block_size)
    ids = torch.randint(1, cfg.vocab_size, (length,), generator=torch.Generator().manual_seed(0)).tolist()
    trace = trace_ids(model, tok, ids)

    t_trace = median_s(lambda: trace_ids(model, tok, ids), args.repeats)
    t_lens = median_s(lambda: logit_lens(model, trace), args.repeats)
    t_contrib = median_s(lambda: contributions(model, trace), args.repeats)
    print(f"{length} tokens, {cfg.n_layer} layers, width {cfg.n_embd}, {torch.get_num_threads()} threads")
    print(f"trace          {t_trace * 1e3:8.1f} ms   1.00x")
    print(f"logit lens     {t_lens * 1e3:8.1f} ms   {t_lens / t_trace:.2f}x a trace")
    print(f"contributions  {t_contrib * 1e3:8.1f} ms   {t_contrib / t_trace:.2f}x a trace")

    prompts = nrn.REFERENCE_PROMPTS[:args.stories]
    eot = tok.convert_tokens_to_ids(EOT)
    starts = [[eot] + encode(tok, p).ids for p in prompts]
    s = nrn.REFERENCE_SAMPLING
    t0 = time.perf_counter()
    for p in starts:
        generate(model, p, nrn.REFERENCE_TOKENS, s, torch.Generator().manual_seed(0))
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    generate_batch(model, starts, nrn.REFERENCE_TOKENS, s, torch.Generator().manual_seed(0))
    t_cached = time.perf_counter() - t0
    print(f"{len(prompts)} stories x {nrn.REFERENCE_TOKENS} tokens: engine.generate {t_plain:.2f} s, "
          f"batched with a cache {t_cached:.2f} s ({t_plain / t_cached:.1f}x faster)")

    t0 = time.perf_counter()
    texts = nrn.generate_reference_texts(model, tok)
    t_texts = time.perf_counter() - t0
    reference = nrn.tokenize_reference(texts, tok, cfg.block_size)
    t_atlas = median_s(lambda: nrn.build_atlas(model, reference), max(1, args.repeats // 2))
    print(f"reference set ({len(texts)} stories, {reference.n_tokens:,} tokens): written in {t_texts:.2f} s "
          f"({t_texts / t_trace:.0f}x a trace); atlas {t_atlas:.2f} s ({t_atlas / t_trace:.0f}x a trace)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
