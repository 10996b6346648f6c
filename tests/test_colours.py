"""Colour means one thing everywhere: one diverging scale (ui.colours: RdBu, blue positive, red negative),
used by every signed figure, and the embedding heatmap scaled to show the bulk, not one outlier."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import ROOT

from engine import load_pretrained, run_trace
from engine.inspect.attention_steps import weight_steps
from engine.inspect.embeddings import model_input
from engine.inspect.lens import contributions
from ui import colours
from ui import patterns as att
from ui.attention import steps as att_steps
from ui.feedforward import residual as rs
from ui.tokens import vectors

TEXT = "Once upon a time, a little fox found a shiny red ball in the garden."


@pytest.fixture(scope="module")
def loaded():
    model, tok = load_pretrained(ROOT / "models" / "glassbox-stories")
    return model, tok, run_trace(model, tok, TEXT)


def test_the_scale_runs_from_red_to_blue_and_is_never_named() -> None:
    """An explicit list: plotly.js's own "RdBu" runs blue to red, Plotly's Python side red to blue."""
    low, high = colours.DIVERGING[0][1], colours.DIVERGING[-1][1]
    r, g, b = map(int, re.findall(r"\d+", high))
    assert b > r, "positive is blue"
    r, g, b = map(int, re.findall(r"\d+", low))
    assert r > b, "negative is red"
    for path in [*(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]:
        if path.name == "colours.py":
            continue
        named = re.findall(r"""colorscale\s*=\s*["']RdBu|["']RdBu(_r)?["']""", path.read_text())
        assert not named, f"{path.relative_to(ROOT)} names a diverging scale; use ui.colours"


def _scale(trace_dict: dict) -> list:
    return [[float(s), c] for s, c in trace_dict["colorscale"]]


def test_every_signed_figure_uses_the_shared_scale(loaded) -> None:
    model, tok, trace = loaded
    q = len(trace) - 1
    s = weight_steps(trace, 0, 0, q)
    figures = [
        att_steps.vectors_figure(torch.cat([s.q[None], s.k]), [str(i) for i in range(len(trace) + 1)], "qk", "v"),
        att_steps.scores_figure(trace.act["blocks.0.attn.hook_attn_scores"][0], trace.tokens, q),
        att.difference_figure(trace.pattern(0, 0) - trace.pattern(0, 1), trace.tokens, list(range(len(trace))), "d"),
        rs.part_heatmap(contributions(model, trace).direct.numpy(), contributions(model, trace).parts, trace.tokens,
                        True, "p"),
        vectors.input_figure(model_input(model, tok, TEXT)),
    ]
    for fig in figures:
        signed = [d for d in fig.to_dict()["data"] if d.get("zmid") == 0]
        assert signed, fig.layout.title.text
        for d in signed:
            assert _scale(d) == [[float(a), c] for a, c in colours.DIVERGING]
            assert d["zmin"] == -d["zmax"]
    waterfall = rs.contribution_waterfall(contributions(model, trace), q, lambda i: tok.decode([i]))
    assert waterfall.data[0].increasing.marker.color == colours.POSITIVE
    assert waterfall.data[0].decreasing.marker.color == colours.NEGATIVE


def test_the_embedding_heatmap_shows_the_bulk_and_keeps_exact_values(loaded) -> None:
    """Position 0's outlier (about -1.6) set the scale for all, leaving the heatmap nearly white."""
    model, tok, _ = loaded
    mi = model_input(model, tok, TEXT)
    fig = vectors.input_figure(mi)
    values = torch.stack([mi.token, mi.position, mi.total]).numpy()
    top = float(np.abs(values).max())
    zmax = fig.data[0].zmax
    assert zmax < top / 2  # clipped, at the 99th percentile
    assert zmax == pytest.approx(float(np.percentile(np.abs(values), colours.CLIP_PERCENTILE)))
    strong = float((np.abs(values) > 0.25 * zmax).mean())
    assert strong > 0.4 and float((np.abs(values) > 0.25 * top).mean()) < strong  # more of it is coloured
    np.testing.assert_array_equal(np.asarray(fig.data[2].z), mi.total.numpy())  # hover reads the exact values
    assert "clipped" in fig.data[2].colorbar.title.text


def test_diverging_scale_clips_and_counts() -> None:
    z = np.r_[np.linspace(-1, 1, 999), -50.0]
    scale = colours.diverging_scale(z, 99)
    assert scale["zmax"] < 2 and scale["zmin"] == -scale["zmax"] and scale["zmid"] == 0
    assert colours.clipped(z, scale) >= 1
    assert colours.diverging_scale(z)["zmax"] == 50.0
    assert colours.diverging_scale([np.nan, 0.0])["zmax"] == pytest.approx(1e-6)
