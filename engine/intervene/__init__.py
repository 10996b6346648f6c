"""Intervening: change one thing in a forward pass and see what the model does, one module per intervention.

Every intervention is a pure function over the model surface every family offers (engine/model/arch.py): it
hands the model `edits` for one call (engine/model/hooks.py), never a hook left on a shared model.

- patching: activation patching of a clean and a corrupted prompt, one patched run or a whole grid (batched)
- ablation: zero or mean ablation of a head, an MLP layer or a neuron
- steering: a direction from two sets of prompts, added to the residual stream
- forcing: force a token at any step of generation and let the model go on
- attribution: which input tokens mattered, by leave-one-out and by gradient x input
- effects: what an edit does to the next token, a seeded completion and a held-out loss
- edited: a model seen through edits, for generation
- price: what an intervention costs before it runs, and the budget (GLASSBOX_INTERVENE_BUDGET_S)
- examples: built-in prompt pairs, steering sets and a held-out story
"""
from . import ablation, attribution, edited, effects, examples, forcing, patching, price, steering

__all__ = ["ablation", "attribution", "edited", "effects", "examples", "forcing", "patching", "price", "steering"]
