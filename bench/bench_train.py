"""Training throughput: our Trainer against a plain nanoGPT-style loop, same config, batch and data.

    python bench/bench_train.py [--steps 20] [--n-layer 4 --n-embd 128 --n-head 4 --block-size 256]
                                [--precision auto|fp32|bf16]

Prints tokens per second of each and their ratio, measured in this one run (machines are noisy, so only the
ratio means much). Goal: the Trainer at least as fast as the plain loop (ratio >= 1.0, within noise). Both
run at the same precision; with --precision bf16 a third row shows the Trainer in float32, so the ratio of
bf16 to float32 is measured in the same run too (on a 2-core Xeon with AMX: 0.99x for the default 1.35M
model, 1.2-1.3x for 3.5M and 7.4M parameters).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine import GPT, GPTConfig, pick_device  # noqa: E402
from engine.model.device import PRECISIONS, train_autocast  # noqa: E402
from engine.train.data import Batches, Source  # noqa: E402
from engine.train.trainer import TrainConfig, Trainer  # noqa: E402


def plain_loop(model: GPT, data: np.ndarray, steps: int, batch: int, block: int, device,
               precision: str) -> float:
    """The reference: the shortest correct loop (random windows, AdamW, clip, cosine-free constant lr)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    t0 = None
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps, untimed
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        ix = torch.randint(len(data) - block - 1, (batch,))
        x = torch.stack([torch.from_numpy(data[i:i + block].astype(np.int64)) for i in ix]).to(device)
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block].astype(np.int64)) for i in ix]).to(device)
        with train_autocast(precision, device):
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch * block / (time.perf_counter() - t0)


def trainer_run(model: GPT, data: np.ndarray, steps: int, batch: int, block: int, device,
                precision: str) -> float:
    times: dict[int, float] = {}
    cfg = TrainConfig(max_steps=steps + 2, batch_size=batch, warmup_steps=1, eval_interval=0, checkpoint_interval=0,
                      precision=precision)

    def mark(p) -> None:
        if p.event in ("step", "eval"):
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[p.step] = time.perf_counter()

    Trainer(model, Batches([Source(data, 1.0)], block, batch), cfg, device=device, callback=mark).run()
    return steps * batch * block / (times[steps + 2] - times[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the two this many times; best of each")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto", help="as engine.train's --precision")
    args = ap.parse_args()
    device = pick_device()
    cfg = GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=args.n_layer,
                    n_head=args.n_head, n_embd=args.n_embd)
    data = np.random.default_rng(0).integers(0, args.vocab_size, 2_000_000).astype(np.uint16)
    runs = [("plain loop", plain_loop, args.precision), ("Trainer", trainer_run, args.precision)]
    if args.precision == "bf16":
        runs.append(("Trainer fp32", trainer_run, "fp32"))
    best = {name: 0.0 for name, _, _ in runs}
    for _ in range(args.rounds):  # alternate, so drift in machine load hits all of them
        for name, fn, precision in runs:
            torch.manual_seed(0)
            tps = fn(GPT(cfg).to(device), data, args.steps, args.batch_size, args.block_size, device, precision)
            best[name] = max(best[name], tps)
    print(f"device: {device}; config: {cfg.n_layer} layers, d_model {cfg.n_embd}, {cfg.n_head} heads, "
          f"context {cfg.block_size}, batch {args.batch_size}, {GPT(cfg).num_params():,} parameters")
    for name, tps in best.items():
        print(f"{name:>12}: {tps:10,.0f} tokens/s")
    ratio = best["Trainer"] / best["plain loop"]
    print(f"ratio Trainer / plain loop: {ratio:.3f}  (goal >= 1.0; both at precision {args.precision}, "
          f"which on CUDA means bf16 autocast)")
    if "Trainer fp32" in best:
        print(f"ratio Trainer bf16 / Trainer fp32: {best['Trainer'] / best['Trainer fp32']:.3f}")


if __name__ == "__main__":
    main()
