"""The Pre-training vs RLHF page's wing.

- state: the page's declaration (PAGE)
- pretraining: how the built-in model was pre-trained (its training record, loss curve, samples)
- pairs: preferences you give (completions side by side, marked) and the built-in, rule-labelled sets
- tuning: DPO in the background, live; before / after; which parameters moved; the tuned model
- base_vs_instruct: a base model and its instruct model (or the model before and after DPO), side by side
- facts: what the page measures for the tour to quote
- figures: the page's figure builders; notes: its words
"""
from . import base_vs_instruct, facts, figures, notes, pairs, pretraining, tuning
from .state import PAGE

__all__ = ["PAGE", "base_vs_instruct", "facts", "figures", "notes", "pairs", "pretraining", "tuning"]
