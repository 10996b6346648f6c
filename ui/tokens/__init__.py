"""The Tokens and vectors page's wing.

- state: the page's declaration (PAGE), its tabs and link settings
- splitting: the live token view (counts, the context meter, chips, the token table) and tokenizers compared
- bpe: watch byte-pair encoding learn, merge by merge
- pitfalls: texts that tokenize in surprising ways
- vectors: token ids become embedding vectors (heatmaps, neighbours, a map of the vocabulary, positions)

The token chips themselves are shared by several pages: ui/chips.py.
"""
from . import bpe, pitfalls, splitting, vectors
from .state import PAGE, TABS

__all__ = ["PAGE", "TABS", "bpe", "pitfalls", "splitting", "vectors"]
