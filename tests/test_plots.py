"""Every figure has the same toolbar: no Plotly logo, a PNG download named glassbox-<what>.png."""
from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io
import plotly.tools
from plotly.subplots import make_subplots

from conftest import ROOT
from ui.plots import PRESENTER_FIGURE_PX, PRESENTER_FONT_PX, fitted, plot_config, presented


def test_plot_config_names_every_png_once():
    assert plot_config("loss")["toImageButtonOptions"]["filename"] == "glassbox-loss"
    assert plot_config("glassbox-loss")["toImageButtonOptions"]["filename"] == "glassbox-loss"
    assert plot_config("x")["displaylogo"] is False


def plotly_calls():
    for path in sorted([*ROOT.glob("ui/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "plotly_chart":
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def test_every_chart_takes_its_toolbar_from_plot_config():
    calls = dict(plotly_calls())
    assert len(calls) > 20  # the pages draw many figures; an empty walk would prove nothing
    for where, call in calls.items():
        config = {k.arg: k.value for k in call.keywords}.get("config")
        assert isinstance(config, ast.Call) and getattr(config.func, "id", None) == "plot_config", where


def _figures():
    """Figures with what the pages' figures hold: float32 with NaN, object arrays of numbers and token text,
    subplots and shapes, strings, dates, frames."""
    z = np.tril(np.random.default_rng(0).random((6, 6))).astype(np.float32)
    z[np.triu_indices(6, 1)] = np.nan
    heat = go.Figure(go.Heatmap(z=z, colorscale="Viridis", zmin=0, zmax=1))
    heat.add_trace(go.Scattergl(x=np.arange(6), y=np.arange(6), mode="markers",
                                customdata=np.array([[i, f"{i} ␣fox<", 0.5 + i, None] for i in range(6)], dtype=object),
                                hovertemplate="%{customdata[1]} %{customdata[2]:.3f}"))
    heat.update_layout(shapes=[dict(type="rect", x0=0, x1=1, y0=0, y1=1)], height=500)
    sub = make_subplots(rows=2, cols=1, shared_xaxes=True)
    sub.add_scatter(x=pd.Series([1, 2, 3]), y=[0.1, float("nan"), 0.3], row=1, col=1)
    sub.add_bar(x=["a", "b"], y=np.array([1, 2], dtype=np.int64), text=np.array(["x", "y"]), row=2, col=1)
    dated = go.Figure(go.Scatter(x=pd.date_range("2026-01-01", periods=3), y=(1, 2, 3)))
    framed = go.Figure(go.Scatter(x=[0], y=[0]), frames=[go.Frame(data=[go.Scatter(x=[1], y=[1])])])
    return [heat, sub, dated, framed]


def test_fitted_figures_serialise_as_plotly_does():
    """What st.plotly_chart sends for a figure through `fitted` is plotly's own JSON, and the figure is unchanged."""
    def sent(fig):  # what st.plotly_chart does with a figure
        return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                                 validate=False)

    for fig in _figures():
        before = sent(fig)
        assert sent(fitted(fig)) == before
        assert sent(fig) == before  # the figure's own data was not rewritten
        assert fitted(fig).layout.height == fig.layout.height


def test_presented_figures_are_legible_on_a_projector():
    """Presenter mode: no font under PRESENTER_FONT_PX, bar labels hidden rather than shrunk, labels given one by
    one thinned where they would overlap, a heatmap's cell numbers dropped where its cells are too small, and
    the figure no taller than PRESENTER_FIGURE_PX; the original is untouched (a cached figure may be shared)."""
    n = 60
    fig = go.Figure(go.Bar(x=list("abcdef"), y=[1, 2, 3, 4, 5, 6], text=list("123456"), textfont=dict(size=9)))
    fig.add_trace(go.Heatmap(z=np.random.default_rng(0).random((10, 40)), texttemplate="%{z:.2f}",
                             textfont=dict(size=12), colorbar=dict(tickfont=dict(size=10))))
    fig.add_trace(go.Heatmap(z=[[1, 2], [3, 4]], texttemplate="%{z:.2f}", textfont=dict(size=12)))
    fig.update_layout(height=900, font=dict(size=12), title=dict(text="t", font=dict(size=13)),
                      yaxis=dict(tickvals=list(range(n)), ticktext=[f"row {i}" for i in range(n)],
                                 tickfont=dict(size=11)),
                      annotations=[dict(text="note", font=dict(size=9))])
    shown = presented(fig)
    fonts = [shown.layout.font, shown.layout.title.font, shown.layout.yaxis.tickfont, shown.layout.annotations[0].font,
             shown.data[0].textfont, shown.data[1].textfont, shown.data[1].colorbar.tickfont]
    assert all(f.size >= PRESENTER_FONT_PX for f in fonts)
    assert shown.layout.uniformtext.minsize >= PRESENTER_FONT_PX and shown.layout.uniformtext.mode == "hide"
    ticks = shown.layout.yaxis.tickvals
    assert 1 < len(ticks) < n and (PRESENTER_FIGURE_PX - 110) / len(ticks) >= PRESENTER_FONT_PX * 1.3
    assert list(shown.layout.yaxis.ticktext) == [f"row {i}" for i in ticks]  # each label stays at its value
    assert shown.data[1].texttemplate == "" and shown.data[2].texttemplate == "%{z:.2f}"
    assert shown.layout.height == PRESENTER_FIGURE_PX
    assert fig.layout.height == 900 and fig.data[0].textfont.size == 9 and len(fig.layout.yaxis.tickvals) == n
