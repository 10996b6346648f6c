"""The Train page's overhead: tokens per second of a background run (engine/train/runs.py, the path the page
uses, with its snapshots, samples and time-lapse traces, polled once a second the way the page's live view
does) against the plain Trainer on the same config, data, thread cap and evaluation schedule.

    python bench/bench_train_page.py [--preset tiny|small] [--steps N] [--rounds 2]

Prints both throughputs and their ratio, measured in this one run (the machine is shared, so only the ratio
means much; the two alternate so drift in load hits both). Goal: overhead under 10 % (ratio >= 0.90).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine import GPT, GPTConfig, describe, pick_device  # noqa: E402
from engine.model.device import cap_threads, run_threads  # noqa: E402
from engine.train.corpus import builtin_stories, make_tokenizer, prepare  # noqa: E402
from engine.train.data import Batches, Source  # noqa: E402
from engine.train.runs import TrainingRun  # noqa: E402
from engine.train.runspec import PRESETS, RunSpec, make_spec  # noqa: E402
from engine.train.trainer import Trainer  # noqa: E402
from ui.train.figures import loss_figure  # noqa: E402


def plain(spec: RunSpec, data, device, threads: int) -> float:
    """Wall seconds of the plain Trainer on the run's config, in a thread with the run's thread cap."""
    out: dict[str, float] = {}

    def body() -> None:
        cap_threads(threads)
        torch.manual_seed(spec.seed)
        t0 = time.perf_counter()
        model = GPT(spec.model)
        bs, block = spec.train.batch_size, spec.model.block_size
        train = Batches([Source(data.train_ids, 1.0)], block, bs, seed=spec.train.seed)
        val = Batches([Source(data.val_ids, 1.0)], block, bs, seed=0)
        Trainer(model, train, spec.train, val=val, device=device).run()
        out["s"] = time.perf_counter() - t0

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    return out["s"]


def background(spec: RunSpec, data, device, threads: int) -> float:
    """Wall seconds of a TrainingRun from start() to finished, polled every second like the live view."""
    run = TrainingRun(spec, data, device=device, threads=threads)
    t0 = time.perf_counter()
    run.start()
    while not run.finished:
        status = run.status()  # what the live view reads and draws each second
        loss_figure(status, spec.model.vocab_size).to_plotly_json()
        run.join(timeout=1.0)
    elapsed = time.perf_counter() - t0
    assert run.status().state == "done", run.status().message
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    ap.add_argument("--rounds", type=int, default=2, help="alternate the two this many times; best of each")
    args = ap.parse_args()
    p = PRESETS[args.preset]
    corpus = builtin_stories()
    data = prepare(corpus, make_tokenizer(corpus, p.vocab_size))
    cfg = GPTConfig(block_size=p.block_size, vocab_size=len(data.tokenizer), n_layer=p.n_layer, n_head=p.n_head,
                    n_embd=p.n_embd)
    spec = make_spec(cfg, args.steps or p.max_steps, p.batch_size, p.learning_rate)
    device, threads = pick_device(), run_threads()
    tokens = spec.train.max_steps * spec.train.batch_size * cfg.block_size
    best = {"plain Trainer": float("inf"), "background run": float("inf")}
    for _ in range(args.rounds):
        best["plain Trainer"] = min(best["plain Trainer"], plain(spec, data, device, threads))
        best["background run"] = min(best["background run"], background(spec, data, device, threads))
    print(f"device: {describe(device)}, {threads} training thread(s); preset {p.label!r}: {cfg.n_layer} layers, "
          f"{cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size}, batch {spec.train.batch_size}, "
          f"{spec.train.max_steps} steps, {cfg.n_params():,} parameters; {spec.n_snapshots} snapshots, "
          f"evaluation every {spec.train.eval_interval} steps")
    for name, seconds in best.items():
        print(f"{name:>15}: {tokens / seconds:10,.0f} tokens/s  ({seconds:.1f} s wall)")
    ratio = best["plain Trainer"] / best["background run"]
    print(f"ratio background / plain: {ratio:.3f}  (overhead {1 - ratio:.1%}; goal: under 10 %)")


if __name__ == "__main__":
    main()
