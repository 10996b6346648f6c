"""Plotly settings every page's figures share, and the one door every figure goes through (`fitted`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from _plotly_utils.utils import convert_to_base64

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
    """The figure as this session should see it: in presenter mode no taller than PRESENTER_FIGURE_PX, as a
    copy (a cached figure may be shared); otherwise the figure itself. Either way it serialises fast (`_Sent`)."""
    height = fig.layout.height
    if presenting() and height is not None and height > PRESENTER_FIGURE_PX:
        fig = go.Figure(fig).update_layout(height=PRESENTER_FIGURE_PX)
    sent = object.__new__(_Sent)
    sent.__dict__ = fig.__dict__  # the same figure (not a copy), with a faster to_dict
    return sent


class _Sent(go.Figure):
    """A figure whose `to_dict` gives the very dict plotly's does, at a fraction of the CPU.

    st.plotly_chart serialises a figure on every rerun as `plotly.io.to_json(figure.to_dict())`. Plotly's
    to_dict deep-copies every value (numpy arrays and each cell of an object array included), and an object
    array (hover data mixing numbers and token text) makes orjson refuse the dict, so plotly then walks it
    value by value in Python. Here only the containers are copied (convert_to_base64 rewrites them in place;
    the figure's own arrays are never written) and object arrays become lists, which orjson writes itself:
    the all-heads overview went from 77 ms to 9 ms. tests/test_plots.py holds the JSON equal to plotly's.
    """

    def to_dict(self) -> dict[str, Any]:
        res: dict[str, Any] = {"data": [_copied(t) for t in self._data], "layout": _copied(self._layout)}
        frames = [_copied(f._props) for f in self._frame_objs]
        if frames:
            res["frames"] = frames
        convert_to_base64(res)
        return _listed(res)


def _copied(value: Any) -> Any:
    """Dicts, lists and tuples copied; everything else (arrays, strings, numbers) shared."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


def _listed(value: Any) -> Any:
    """Object arrays inside our own copy replaced by lists, in place."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        if isinstance(v, np.ndarray) and v.dtype.kind == "O":
            value[k] = v.tolist()
        elif isinstance(v, (dict, list)):
            _listed(v)
    return value
