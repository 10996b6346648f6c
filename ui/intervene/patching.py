"""The Activation patching tab: a clean and a corrupted prompt, the share of their logit difference each patch
recovers as a grid (residual stream: layer x position; head outputs: layer x head), and a clicked cell's
patched distribution beside both runs."""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import streamlit as st
import torch

from engine import GPT
from engine.intervene.examples import PAIRS
from engine.intervene.patching import (HEADS, RESID, Pair, PairRuns, cell_patches, default_answers, logit_diff,
                                       make_pair, needed, patched_run, patching_grid, price_grid, run_pair)
from engine.intervene.price import Refusal, check, seconds_text

from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..terms import define
from ..text import csv_text, md
from .data import kept, peek, shown
from .figures import grid_figure, heat_html, runs_figure
from .state import GRIDS, OWN_PAIR, PAGE, PROMPT_CHARS, choose, remembered

AUTO_S = 4.0  # a grid priced under this runs by itself; a dearer one waits for its button
TOP = 5  # tokens of each run listed beside a clicked cell
GRID_CHART = PAGE.key("grid_chart")  # the grid figure's key: the tour's and presenter mode's main figure
_ANSWERS_OF = PAGE.key("answers_of")  # session key: the (model, pair) the kept answers belong to
GRID_WORDS = {RESID: "Residual stream (layer × position)", HEADS: "Head outputs (layer × head)"}
NOTES = """**What this shows.** Where, for *this pair*, the information that separates the two answers flows:
a cell that recovers much carries, at that layer and position (or in that head), what the changed word
contributed. Early layers hold it at the changed word; where it shows up at the last position, some head has
moved it there.

**What it does not show.** It is not "the neuron for *river*": a different pair, or other answers, can light
up other cells. A cell near 0 may still matter (another route can carry the same information), shares above
100% or below 0 happen, and the residual stream at one position holds everything before it, so a bright
residual cell says *where* the difference is at that point, not *which part* computed it. Patching measures
effects on these two prompts only."""


def _pair_inputs() -> tuple[str, str]:
    names = [*PAIRS, OWN_PAIR]
    name = st.selectbox("Prompt pair", names, **remembered("pair", names[0], names),
                        help="Two prompts that line up token for token and differ in the word that decides what "
                             "comes next. The clean one is run as it is; the corrupted one is run with one piece "
                             "of the clean run copied in.")
    if name != OWN_PAIR:
        return PAIRS[name]
    first = next(iter(PAIRS.values()))
    c1, c2 = st.columns(2)
    clean = c1.text_input("Clean prompt", max_chars=PROMPT_CHARS, **remembered("clean", first[0]))
    corrupted = c2.text_input("Corrupted prompt", max_chars=PROMPT_CHARS, **remembered("corrupted", first[1]))
    return clean, corrupted


def _show_pair(pair: Pair) -> None:
    outlined = pair.differ
    for label, tokens in (("clean", pair.clean_tokens), ("corrupted", pair.corrupted_tokens)):
        titles = [f"position {i}" for i in range(len(tokens))]
        st.html(f"<b>{label}</b>" + heat_html(tokens, None, titles, outlined))
    st.caption(f"{len(pair) - 1} tokens each (after the start marker); outlined: where they differ.")


def _answers(choice: ModelChoice, runs: PairRuns) -> tuple[int, int]:
    """The two answers the logit difference compares: each run's favourite by default, or the reader's pick
    among both runs' most likely tokens."""
    clean_p, corrupted_p = runs.clean_logits.softmax(-1), runs.corrupted_logits.softmax(-1)
    default = default_answers(runs)
    options = list(dict.fromkeys([*default, *clean_p.topk(8).indices.tolist(), *corrupted_p.topk(8).indices.tolist()]))
    which = (choice.key, runs.pair.clean_ids, runs.pair.corrupted_ids)
    if st.session_state.get(_ANSWERS_OF) != which:  # a new pair or model starts from its own favourites
        st.session_state[_ANSWERS_OF] = which
        choose("answer_clean", default[0])
        choose("answer_corrupted", default[1])

    def fmt(t: int) -> str:
        return f"{shown(choice, t)}  (clean {clean_p[t]:.1%}, corrupted {corrupted_p[t]:.1%})"
    c1, c2 = st.columns(2)
    a = c1.selectbox("Clean answer", options, format_func=fmt, **remembered("answer_clean", default[0], options))
    b = c2.selectbox("Corrupted answer", options, format_func=fmt,
                     **remembered("answer_corrupted", default[1], options))
    return int(a), int(b)


def _on_click(chart_key: str) -> None:
    points = (st.session_state.get(chart_key) or {}).get("selection", {}).get("points", [])
    for point in points[:1]:
        layer, index = point["customdata"][:2]
        choose("cell", (int(layer), int(index)))


def _grid(choice: ModelChoice, runs: PairRuns, kind: str, answers: tuple[int, int]):
    """The grid, from the cache, run now when cheap, or behind a button with its price; None until it runs."""
    cfg = choice.model.config
    key = ("grid", kind, tuple(runs.pair.clean_ids), tuple(runs.pair.corrupted_ids), answers)
    if (hit := peek(choice, key)) is not None:
        return hit
    price = price_grid(cfg, runs, kind, skips=isinstance(choice.model, GPT))
    try:
        check(price, "this patching grid", "a shorter pair")
    except Refusal as e:
        st.error(str(e), icon=":material/block:")
        return None
    skipped = price.forwards - sum(len(c) for c in needed(kind, runs, cfg.n_layer, cfg.n_head))
    st.caption(f"{price.forwards:,} patched forward passes ({skipped:,} of them need none: the prompts agree "
               f"there), batched into {price.calls:,} calls: {seconds_text(price.seconds)} on a slow server CPU.")
    if price.seconds > AUTO_S and not st.button(f"Run the grid ({seconds_text(price.seconds)})",
                                                key=PAGE.key("run_grid"), icon=":material/play_arrow:"):
        return None
    bar = st.progress(0.0, text="Patching…")

    def compute():
        return patching_grid(choice.model, runs, kind, answers,
                             progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} "
                                                                                         "cells"))
    grid = kept(choice, key, compute, spinner=None)
    bar.empty()
    return grid


def _cell_view(choice: ModelChoice, runs: PairRuns, kind: str, grid, cell: tuple[int, int]) -> None:
    layer, index = cell
    what = f"position {index} ({runs.pair.corrupted_tokens[index]})" if kind == RESID else f"head {index}"
    logits, _ = kept(choice, ("cell", kind, tuple(runs.pair.corrupted_ids), tuple(runs.pair.clean_ids), cell),
                     lambda: patched_run(choice.model, runs.pair.corrupted_ids, cell_patches(kind, layer, index),
                                         runs.clean_act))
    probs = {"clean": runs.clean_logits.softmax(-1), "corrupted": runs.corrupted_logits.softmax(-1),
             "patched": logits[-1].softmax(-1)}
    ids = list(dict.fromkeys([*grid.answers, *torch.cat([p.topk(TOP).indices for p in probs.values()]).tolist()]))
    ids.sort(key=lambda t: -max(float(p[t]) for p in probs.values()))
    rec = float(grid.recovered[layer, index])
    fig = runs_figure([shown(choice, t) for t in ids], {k: [float(p[t]) for t in ids] for k, p in probs.items()},
                      f"Layer {layer}, {what}: the next token in three runs")
    st.plotly_chart(fitted(fig), config=plot_config("patched-distribution"), key=PAGE.key("cell_chart"))
    diff = float(logit_diff(logits[-1], grid.answers))
    st.caption(f"Patching layer {layer}, {md(what)} from the clean run into the corrupted one recovers "
               f"**{rec:.0%}** of the logit difference (logit difference {diff:.3f}; clean {grid.clean_diff:.3f}, "
               f"corrupted {grid.corrupted_diff:.3f}).")


def _csv(grid, columns: list[str]) -> str:
    rows = [{"layer": layer, "column": csv_text(columns[i]), "recovered": float(grid.recovered[layer, i]),
             "logit difference": float(grid.logit_diff[layer, i])}
            for layer in range(grid.logit_diff.shape[0]) for i in range(grid.logit_diff.shape[1])]
    return pd.DataFrame(rows).to_csv(index=False)


def patching_tab(choice: ModelChoice) -> None:
    st.markdown("Run a **corrupted** prompt, but copy one activation in from the **clean** run. If the prediction "
                "swings back to the clean answer, that activation carried the difference.",
                help=define("activation patching"))
    clean, corrupted = _pair_inputs()
    try:
        pair = make_pair(choice.tokenizer, clean, corrupted, choice.model.config.block_size)
    except Refusal as e:
        st.error(str(e), icon=":material/block:")
        return
    _show_pair(pair)
    runs = kept(choice, ("pair", tuple(pair.clean_ids), tuple(pair.corrupted_ids)),
                lambda: run_pair(choice.model, pair))
    answers = _answers(choice, runs)
    kind = st.radio("Grid", GRIDS, format_func=GRID_WORDS.get, horizontal=True, **remembered("grid", RESID, GRIDS))
    grid = _grid(choice, runs, kind, answers)
    if grid is None:
        st.markdown(NOTES)
        return
    columns = ([f"{i} {t}" for i, t in enumerate(pair.corrupted_tokens)] if kind == RESID
               else [f"head {h}" for h in range(choice.model.config.n_head)])
    shape = tuple(grid.logit_diff.shape)
    cell = PAGE.kept("cell")
    cell = tuple(cell) if isinstance(cell, (tuple, list)) and len(cell) == 2 and all(
        0 <= c < n for c, n in zip(cell, shape)) else None
    title = (f"Share of the logit difference ({shown(choice, answers[0])} − {shown(choice, answers[1])}) recovered "
             f"by patching one {'position of the residual stream' if kind == RESID else 'head'}")
    fig = grid_figure(grid.recovered.numpy(), grid.logit_diff.numpy(), columns,
                      "position" if kind == RESID else "head", title, cell)
    st.plotly_chart(fitted(fig), config=plot_config(f"patching-{kind}"), key=GRID_CHART,
                    on_select=partial(_on_click, GRID_CHART), selection_mode="points")
    st.caption(f"Blue: the patch moves the prediction towards the clean answer (100%: all the way); red: away from "
               f"it; white: no change. {grid.computed:,} cells ran; the others copy in the value the corrupted run "
               "already has. Click a cell for its distribution.")
    st.download_button("The grid (CSV)", _csv(grid, columns), f"glassbox-patching-{kind}.csv", "text/csv",
                       key=PAGE.key("grid_csv"), icon=":material/download:")
    if cell is None:
        best = np.unravel_index(int(np.nanargmax(grid.recovered.numpy()[:, :])), shape)
        cell = (int(best[0]), int(best[1]))
        st.caption("Showing the cell that recovers most; click another.")
    _cell_view(choice, runs, kind, grid, cell)
    st.markdown(NOTES)
