"""The Train page's wing.

- state: the page's declaration (PAGE) and its shared session keys
- setup: the training text, the model's shape and settings, and what a run will cost
- run: starting, watching and stopping a background run; download and upload of models
- lapse: the time-lapse of checkpoints and before / after
- figures: the loss curve and next-token figures
"""
from . import figures, lapse, run, setup
from .state import PAGE

__all__ = ["PAGE", "figures", "lapse", "run", "setup"]
