"""Training: the Trainer, its command line (`python -m engine.train`), data, and runs in the background.

- trainer: `Trainer` (AdamW, warm-up and cosine decay, clipping, held-out evaluation, atomic checkpoints)
- cli: the command line; `python -m engine.train --help`
- data: documents to memory-mapped token ids, and `Batches` of training windows
- evaluate: held-out bits per character
- corpus, stories: the Train page's texts (the built-in story grammar, pasted, uploaded, a Gutenberg book)
- runspec, budget: what a run will do and what it will cost before it starts
- background: `BackgroundRun`, one run in a background thread that a page polls (its `RunState`, `StopReason`,
  watchdog); queue: the line runs wait in
- runs: `TrainingRun`, a background run of the Trainer
- preference, preference_sets, tuning: preference tuning with DPO, its built-in sets, `TuningRun`
- bundle: a trained model as a .zip and a safe import of one
"""
from .background import BackgroundRun, RunState, StopReason
from .bundle import BundleError, export_zip, import_zip
from .queue import QUEUE, RunRefused
from .runs import RunStatus, TrainingRun
from .runspec import RunSpec, make_spec
from .trainer import Progress, TrainConfig, Trainer

__all__ = ["QUEUE", "BackgroundRun", "BundleError", "Progress", "RunRefused", "RunSpec", "RunState", "RunStatus",
           "StopReason", "TrainConfig", "Trainer", "TrainingRun", "export_zip", "import_zip", "make_spec"]
