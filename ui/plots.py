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
PRESENTER_FONT_PX = 16  # presenter mode: the smallest text, legible from the back of a room at 1280x720
PRESENTER_WIDTH_PX = 1180  # presenter mode: the main column's width at 1280x720, the sidebar closed
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
    if presenting():
        fig = presented(fig)
    sent = object.__new__(_Sent)
    sent.__dict__ = fig.__dict__  # the same figure (not a copy), with a faster to_dict
    return sent


def presented(fig: go.Figure) -> go.Figure:
    """A copy of `fig` legible on a 1280x720 projector: no taller than PRESENTER_FIGURE_PX; no text under
    PRESENTER_FONT_PX (fonts set smaller are raised; bar labels that would have to shrink are hidden, as
    Plotly's uniformtext does); tick labels given one by one thinned to every k-th where they would
    overlap at that size; a heatmap's cell numbers left to the hover where its cells are too small for them."""
    d = fig.to_dict()
    layout = d.setdefault("layout", {})
    height = layout.get("height")
    if height is not None and height > PRESENTER_FIGURE_PX:
        layout["height"] = height = PRESENTER_FIGURE_PX
    _raise_fonts(d, PRESENTER_FONT_PX)
    font = layout.setdefault("font", {})
    font["size"] = max(font.get("size") or 0, PRESENTER_FONT_PX)
    uniform = layout.setdefault("uniformtext", {})
    uniform["minsize"] = max(uniform.get("minsize") or 0, PRESENTER_FONT_PX)
    uniform.setdefault("mode", "hide")
    plot_h = (height or 450) - 110  # the margins, the title and the x axis's labels
    for name, axis in layout.items():
        if name[:5] in ("xaxis", "yaxis") and isinstance(axis, dict):
            lo, hi = axis.get("domain") or (0, 1)
            room = (hi - lo) * (PRESENTER_WIDTH_PX - 160 if name[0] == "x" else plot_h)
            _thin(axis, room)
    for trace in d.get("data", []):
        if trace.get("type") == "heatmap" and trace.get("texttemplate") and _cells_too_small(trace, plot_h):
            trace["texttemplate"] = ""
    return go.Figure(d)


def _raise_fonts(value: Any, px: float) -> None:
    """Every font size set under `px`, anywhere in a figure's dict, raised to `px` (in place)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("font") and isinstance(v, dict):
                size = v.get("size")
                if isinstance(size, (int, float)) and size < px:
                    v["size"] = px
                elif isinstance(size, (list, tuple, np.ndarray)):
                    v["size"] = [max(float(s), px) for s in size]
            _raise_fonts(v, px)
    elif isinstance(value, list):
        for v in value:
            _raise_fonts(v, px)


def _thin(axis: dict[str, Any], room: float) -> None:
    """Tick labels given one by one (tickvals and ticktext) kept every k-th so that each has at least a line
    of PRESENTER_FONT_PX to itself along `room` pixels (rotated labels need the same along the axis)."""
    vals, text = axis.get("tickvals"), axis.get("ticktext")
    if vals is None or text is None or len(vals) != len(text):
        return
    fits = max(1, int(room // (PRESENTER_FONT_PX * 1.3)))
    if len(vals) > fits:
        k = -(-len(vals) // fits)
        axis["tickvals"], axis["ticktext"] = list(vals)[::k], list(text)[::k]


def _cells_too_small(trace: dict[str, Any], plot_h: float) -> bool:
    """Whether a heatmap's cells are too small for a number at PRESENTER_FONT_PX (about 4 characters wide)."""
    z = trace.get("z")
    if isinstance(z, dict):  # a typed array as plotly's to_dict gives it: {"dtype", "bdata", "shape": "rows, cols"}
        shape = [int(n) for n in str(z.get("shape", "0")).split(",")]
        rows, cols = shape[0], shape[-1] if len(shape) > 1 else 1
    elif z is not None and len(z):
        rows, cols = len(z), len(z[0]) if isinstance(z[0], (list, tuple, np.ndarray)) else 1
    else:
        return False
    return (PRESENTER_WIDTH_PX - 200) / cols < PRESENTER_FONT_PX * 2.6 or plot_h / rows < PRESENTER_FONT_PX * 1.2


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
