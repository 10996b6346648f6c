"""What a training run will do: its model and training settings, the presets the Train page offers, and
intervals for evaluations and time-lapse snapshots chosen so a run stays cheap to watch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..model.config import GPTConfig
from .trainer import TrainConfig

SNAPSHOT_BUDGET_BYTES = 64 * 2**20  # weights kept for the time-lapse, all snapshots together
MAX_SNAPSHOTS = 21  # step 0 and 20 more: enough frames to watch patterns form, few enough to stay cheap
PROBE_PROMPT = "Once upon a time, there was a little"  # the fixed prompt the time-lapse shows
SAMPLE_TOKENS = 40  # per sample; each costs SAMPLE_TOKENS small forward passes at every snapshot


@dataclass(frozen=True)
class Preset:
    """A ready-made run; durations were measured with one CPU thread on a busy 2-core machine."""
    label: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    vocab_size: int  # of a tokenizer trained on the corpus (a small grammar may not fill it)
    max_steps: int
    batch_size: int
    learning_rate: float


# Measured with bench/bench_train_page.py on the 2-core development machine while other jobs ran (load ~5):
# the tiny preset at ~37k tokens/s (1,000 steps ~ 27 s), the small one at ~7.8k (650 steps ~ 170 s).
PRESETS = {
    "tiny": Preset("tiny: 30 seconds", n_layer=2, n_head=4, n_embd=64, block_size=64, vocab_size=1024,
                   max_steps=1000, batch_size=16, learning_rate=3e-3),
    "small": Preset("small: 3 minutes", n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=2048,
                    max_steps=650, batch_size=16, learning_rate=2e-3),
}


@dataclass(frozen=True)
class RunSpec:
    model: GPTConfig
    train: TrainConfig
    probe: str = PROBE_PROMPT  # the time-lapse's fixed prompt
    sample_tokens: int = SAMPLE_TOKENS
    seed: int = 0  # model initialisation and sampling

    @property
    def n_snapshots(self) -> int:
        """Snapshots the run keeps, step 0 included (the checkpoint interval sets them)."""
        return 1 + math.ceil(self.train.max_steps / max(1, self.train.checkpoint_interval))


def snapshots_for(cfg: GPTConfig, max_steps: int) -> int:
    """How many weight snapshots fit in SNAPSHOT_BUDGET_BYTES (at least 2: before and after)."""
    per = 4 * cfg.n_params()
    return max(2, min(MAX_SNAPSHOTS, SNAPSHOT_BUDGET_BYTES // per, max_steps + 1))


def make_spec(cfg: GPTConfig, max_steps: int, batch_size: int, learning_rate: float, probe: str = PROBE_PROMPT,
              seed: int = 0) -> RunSpec:
    """A run with sensible intervals: evaluations and snapshots spread evenly over the steps."""
    max_steps = max(1, int(max_steps))
    interval = max(1, math.ceil(max_steps / (snapshots_for(cfg, max_steps) - 1)))
    tcfg = TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                       warmup_steps=min(100, max(1, max_steps // 10)), eval_interval=interval, eval_batches=4,
                       checkpoint_interval=interval, seed=1337 + seed)
    return RunSpec(model=cfg, train=tcfg, probe=probe or PROBE_PROMPT, seed=seed)


