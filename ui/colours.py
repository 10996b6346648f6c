"""One colour convention for every signed number on every page: ColorBrewer's RdBu, **blue positive, red
negative, white zero** (colour-blind safe: the two ends differ in lightness as well as hue).

The scale is an explicit list, not the name "RdBu": Plotly's Python side reads that name as red-to-blue,
but plotly.js's own "RdBu" (what a figure built without validation gets) runs the other way. Figures take the
scale, the bar colours and the words for captions from here, so a colour means the same thing everywhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from plotly.colors import diverging

_RDBU = diverging.RdBu  # 11 colours, red (most negative) -> white -> blue (most positive)
DIVERGING = [[i / (len(_RDBU) - 1), c] for i, c in enumerate(_RDBU)]
POSITIVE, NEGATIVE = _RDBU[-2], _RDBU[1]  # for bars and lines: a strong blue and a strong red
SIGN_WORDS = "blue positive, red negative, white zero"  # for captions
CLIP_PERCENTILE = 99.0  # a heatmap with outliers is scaled to this percentile of |value|, and says so


def diverging_scale(z: Any, clip_percentile: float | None = None, floor: float = 1e-6) -> dict[str, Any]:
    """Heatmap keywords for signed values centred on 0: the colour scale and a symmetric range, ±max|z|, or
    ±the `clip_percentile` of |z| so that one outlier cannot wash the rest out (values beyond it take the end
    colours; the hover still shows each exact value, as the range changes only the colours)."""
    a = np.abs(np.asarray(z, dtype=float))
    a = a[np.isfinite(a)]
    top = float(a.max()) if a.size else floor
    if clip_percentile is not None and a.size:
        top = min(top, float(np.percentile(a, clip_percentile)))
    top = max(top, floor)
    return dict(colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top)


def clipped(z: Any, scale: dict[str, Any]) -> int:
    """How many finite values of `z` lie beyond the scale's range (drawn in its end colours)."""
    a = np.abs(np.asarray(z, dtype=float))
    return int((a[np.isfinite(a)] > scale["zmax"] * (1 + 1e-9)).sum())
