"""The Tokens and vectors page's wing.

- splitting: the live token view (counts, the context meter, chips, the token table) and tokenizers compared
- bpe: watch byte-pair encoding learn, merge by merge
- pitfalls: texts that tokenize in surprising ways
- vectors: token ids become embedding vectors (heatmaps, neighbours, a map of the vocabulary, positions)

The token chips themselves are shared by several pages: ui/chips.py.
"""
from . import bpe, pitfalls, splitting, vectors

TABS = ("Compare tokenizers", "Watch BPE learn", "Tokenization pitfalls", "Vectors")  # the page's tabs, in order

__all__ = ["TABS", "bpe", "pitfalls", "splitting", "vectors"]
