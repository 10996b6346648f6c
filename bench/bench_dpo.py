"""Preference tuning throughput: our PreferenceTuner against a plain PyTorch DPO loop written here, on the same
model and the same batch of pairs.

    python bench/bench_dpo.py [--pairs 12] [--steps 10] [--rounds 3] [--threads 1]

The plain loop is the shortest correct DPO: reference log-probabilities once, then per step a forward of the
chosen and rejected rows, the loss, backward, clip, AdamW. The tuner does the same and also measures, per step,
the reward margin, accuracy and the KL from the reference that the page draws. Prints optimizer steps per
second of each and their ratio, measured in this one run (machines are noisy, so only the ratio means much).
Goal: the tuner at least as fast as the plain loop (ratio >= 1.0, within noise). On this project's 2-core
machine, one thread, 12 pairs: 1.035-1.046. The tuner applies the output layer and the softmax only at the
completion positions (about 30% fewer rows than the whole padded batch), which pays for its per-step KL
and statistics (0.89 before it did).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine import load_pretrained  # noqa: E402
from engine.train.preference import PreferenceTuner, TuneConfig, encode_pairs  # noqa: E402
from engine.train.preference_sets import NAMES, build_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plain_dpo(model, batch, steps: int, cfg: TuneConfig) -> float:
    """Steps per second of the reference loop (after one untimed warm-up step)."""
    ids, mask, n = batch.ids, batch.mask, batch.n_pairs

    def seq_logp(m) -> torch.Tensor:
        logits, _ = m(ids)
        logp = F.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        return (logp * mask).sum(1)

    with torch.no_grad():
        ref = seq_logp(model)
    policy = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.95),
                            weight_decay=cfg.weight_decay)
    t0 = 0.0
    for step in range(steps + 1):
        if step == 1:
            t0 = time.perf_counter()
        pi = seq_logp(policy)
        margins = cfg.beta * ((pi[:n] - ref[:n]) - (pi[n:] - ref[n:]))
        loss = -F.logsigmoid(margins).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        opt.step()
    return steps / (time.perf_counter() - t0)


def tuner_run(model, tokenizer, pairs, steps: int, cfg: TuneConfig) -> float:
    """Steps per second of PreferenceTuner, timed between its reports of step 1 and step steps + 1."""
    marks: dict[int, float] = {}
    tuner = PreferenceTuner(model, tokenizer, pairs, TuneConfig(beta=cfg.beta, learning_rate=cfg.learning_rate,
                                                                steps=steps + 1),
                            callback=lambda p: marks.setdefault(p.step, time.perf_counter()))
    tuner.run()
    return steps / (marks[steps + 1] - marks[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "glassbox-stories"))
    ap.add_argument("--pairs", type=int, default=12, help="pairs in the batch (built-in sets, repeated to fill)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternate the two this many times; best of each")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the app tunes on half the cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_pretrained(args.model, "cpu")
    pairs = build_pairs(model, tokenizer, "name", NAMES[0]) + build_pairs(model, tokenizer, "happy")
    pairs = (pairs * (args.pairs // max(1, len(pairs)) + 1))[:args.pairs]
    batch = encode_pairs(tokenizer, pairs, model.config.block_size)
    cfg = TuneConfig()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {Path(args.model).name}: {model.num_params():,} parameters; {len(pairs)} pairs, batch "
          f"{tuple(batch.ids.shape)}, {batch.n_completion_tokens} completion tokens; {args.threads} thread(s), "
          f"load average {load:.1f}")
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"note: the machine is busy (load {load:.1f} on {os.cpu_count()} CPUs); the ratio is what to read")
    best = {"plain DPO loop": 0.0, "PreferenceTuner": 0.0}
    for _ in range(args.rounds):  # alternate, so drift in machine load hits both
        best["plain DPO loop"] = max(best["plain DPO loop"], plain_dpo(model, batch, args.steps, cfg))
        best["PreferenceTuner"] = max(best["PreferenceTuner"], tuner_run(model, tokenizer, pairs, args.steps, cfg))
    for name, sps in best.items():
        print(f"{name:>16}: {sps:6.2f} steps/s")
    print(f"ratio PreferenceTuner / plain loop: {best['PreferenceTuner'] / best['plain DPO loop']:.3f}  (goal >= 1.0)")


if __name__ == "__main__":
    main()
