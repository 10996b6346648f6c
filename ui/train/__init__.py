"""The Train page's wing.

- state: the page's declaration (PAGE) and its shared session keys
- setup: the training text, the model's shape and settings, and what a run will cost
- run: starting, watching and stopping a background run; download and upload of models
- lapse: the time-lapse of checkpoints and before / after
- circuits: on the time-lapse, every head's type at every checkpoint: when an induction head forms
- figures: the loss curve and next-token figures
- facts: what the page measures for the tour to quote (the built-in model's heads, when yours formed)
"""
from . import circuits, facts, figures, lapse, run, setup
from .state import PAGE

__all__ = ["PAGE", "circuits", "facts", "figures", "lapse", "run", "setup"]
