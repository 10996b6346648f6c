"""The Feed-forward page's builders: token text is escaped wherever it meets HTML, axes stay readable."""
from __future__ import annotations

import torch

from engine.inspect.neurons import Example
from engine.inspect.params import compare, param_breakdown
from engine_fixtures import tiny_model
from ui.feedforward import figures as ff
from ui.feedforward import residual as rs
from ui.plots import MIN_FONT_PX

HOSTILE = ['<img src=x onerror=alert(1)>', '" onmouseover="alert(1)', "<b>bold</b>", "␣fox"]


def test_text_and_snippets_escape_tokens() -> None:
    html = ff.text_html(HOSTILE, [1.0, -0.5, 0.25, float("nan")], scale=1.0)
    assert "<img" not in html and "<b>" not in html and '" onmouseover="' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "rgba(230,97,1,1.00)" in html and "rgba(230,97,1,0.00)" in html  # full orange, and none below 0
    ex = Example(doc=2, pos=5, value=1.5, tokens=tuple(HOSTILE), acts=[0.1, 1.5, 0.0, 0.2], peak=1)
    snip = ff.snippets_html([ex], scale=1.5)
    assert "<img" not in snip and '" onmouseover="' not in snip and "story 3" in snip
    assert snip.count('class="t peak"') == 1
    assert ff.examples_frame([ex])["token"].tolist() == ['" onmouseover="alert(1)']


def test_token_ticks_thin_out_long_texts() -> None:
    ticks = ff.token_ticks([f"t{i}" for i in range(256)], first_position=1)
    assert len(ticks["tickvals"]) <= ff.MAX_TICKS and ticks["tickvals"][0] == 1
    assert ticks["ticktext"][1] == f"{ticks['tickvals'][1]} t{ticks['tickvals'][1] - 1}"
    short = ff.token_ticks(["a", "a", "<b>"])
    assert short["ticktext"] == ["0 a", "1 a", "2 &lt;b&gt;"]  # repeated tokens stay apart, tags are text


def test_figures_escape_hover_text() -> None:
    bars = ff.neuron_trace_bars(torch.tensor([0.5, -0.1, 0.0, 1.0]), HOSTILE, layer=0, neuron=3)
    assert "<img" not in str(bars.data[0].customdata)


def test_parameter_figures_cover_the_model() -> None:
    m = tiny_model()
    groups = param_breakdown(m)
    tree = rs.params_treemap(groups, "<b>mine</b>")
    assert tree.data[0].values[0] == m.num_params() and "<b>" not in tree.data[0].labels[0]
    frame = rs.params_frame(groups, m.num_params())
    assert frame["parameters"].sum() == m.num_params() and abs(frame["share"].sum() - 1) < 1e-9
    known = compare(m.num_params())
    chart = rs.comparison_chart(m.num_params(), "mine", known)
    assert len(chart.data[0].y) == len(known) + 1
    assert rs.comparison_frame(m.num_params(), "mine", known).shape[0] == len(known) + 1


def test_small_text_is_hidden_not_shrunk() -> None:
    # Plotly shrinks a treemap box's text to fit, down to a fraction of a pixel: under the projector's MIN_FONT_PX.
    tree = rs.params_treemap(param_breakdown(tiny_model()), "mine")
    assert tree.layout.uniformtext.minsize >= MIN_FONT_PX and tree.layout.uniformtext.mode == "hide"
