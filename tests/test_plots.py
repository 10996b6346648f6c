"""Every figure has the same toolbar: no Plotly logo, a PNG download named glassbox-<what>.png."""
from __future__ import annotations

import ast

from conftest import ROOT
from ui.plots import plot_config


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
