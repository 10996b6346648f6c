"""Plotly settings every page's figures share."""
from __future__ import annotations

from typing import Any

PNG_PREFIX = "glassbox-"  # every downloaded figure is named glassbox-<what>.png
PNG_SCALE = 2  # twice the screen resolution: sharp on slides and on a projector
MIN_FONT_PX = 12  # the smallest text in any figure: readable on a projector at 1280x720


def plot_config(name: str) -> dict[str, Any]:
    """Plotly's toolbar without the logo; its camera button downloads the figure as glassbox-<name>.png."""
    filename = name if name.startswith(PNG_PREFIX) else PNG_PREFIX + name
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": PNG_SCALE}}
