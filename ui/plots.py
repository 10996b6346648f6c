"""Plotly settings every page's figures share, and the one door every figure goes through (`fitted`)."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from .state import presenting

PNG_PREFIX = "glassbox-"  # every downloaded figure is named glassbox-<what>.png
PNG_SCALE = 2  # twice the screen resolution: sharp on slides and on a projector
MIN_FONT_PX = 12  # the smallest text in any figure: readable on a projector at 1280x720
PRESENTER_FIGURE_PX = 440  # presenter mode: no figure taller than this, so one fits under the tour's panel on
#                            a 1280x720 projector (the smallest common one); larger screens have room to spare


def plot_config(name: str) -> dict[str, Any]:
    """Plotly's toolbar without the logo; its camera button downloads the figure as glassbox-<name>.png."""
    filename = name if name.startswith(PNG_PREFIX) else PNG_PREFIX + name
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": PNG_SCALE}}


def fitted(fig: go.Figure) -> go.Figure:
    """The figure as this session should see it: in presenter mode no taller than
    PRESENTER_FIGURE_PX, as a copy (a cached figure may be shared); otherwise the figure itself."""
    height = fig.layout.height
    if not presenting() or height is None or height <= PRESENTER_FIGURE_PX:
        return fig
    return go.Figure(fig).update_layout(height=PRESENTER_FIGURE_PX)
