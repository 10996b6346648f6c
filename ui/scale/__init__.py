"""The Scale ladder page's wing: the same prompt on models of every size, side by side.

- state: the page's declaration (PAGE) and session keys
- ladder: the rungs (your models, the built-in one, the server's, NDIF's) and each one's answer, measured
- figures: the depth figure (when each model settles on its answer) and the next-token bars
"""
from . import figures, ladder
from .state import PAGE

__all__ = ["PAGE", "figures", "ladder"]
