"""Tokens become vectors: heatmaps of the embedding rows a text picks out, nearest neighbours in the token
embedding table, a PCA map of the whole table, and how alike the position embeddings are.

All of it reads the model's weights (engine/inspect/embeddings.py); nothing runs the transformer blocks.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from engine import EOT, display_token
from engine.inspect.embeddings import (PCA2D, ModelInput, cosine_matrix, model_input, nearest_neighbours, pca_2d,
                                       position_table, sample_positions, token_table)

from ..colours import CLIP_PERCENTILE, DIVERGING, SIGN_WORDS, clipped, diverging_scale
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..text import md, plotly_text
from ..inputs import whole_number
from .state import PAGE

MAX_LABELS = 40  # axis labels on a heatmap side; more would overlap, so the rest are thinned out
MAX_MAP_LABELS = 60  # text tokens named on the PCA map
MAX_MAP_POINTS = 20_000  # vocabulary dots drawn on the PCA map; a larger vocabulary is sampled evenly
MAX_POS_CELLS = 320  # positions per side of the position-similarity heatmap (a long context is sampled)
HIGHLIGHT, BACKGROUND = "#D55E00", "#9A9A9A"  # Okabe-Ito vermillion on grey: readable for colour-blind viewers
_SESSION_MAPS = PAGE.key("vocab_maps")  # session key: {model key: VocabMap} for session models


def _tick_positions(n: int) -> list[int]:
    return sample_positions(n, MAX_LABELS)


def _row_labels(mi: ModelInput) -> list[str]:
    """Plotly axis labels "0: <|endoftext|>", escaped for Plotly."""
    return [f"{i}: {plotly_text(t)}" for i, t in enumerate(mi.encoding.tokens)]


def show_input_vectors(text: str, choice: ModelChoice) -> ModelInput | None:
    """Token embedding, position embedding and their sum, as three heatmaps sharing the token axis."""
    if not text:
        st.info("Type something in the box above to see its vectors.", icon=":material/keyboard:")
        return None
    mi = model_input(choice.model, choice.tokenizer, text)
    if mi.n_dropped:
        st.caption(f"The text is longer than the context: these are the last {len(mi.encoding) - 1:,} tokens, "
                   f"the ones the model sees ({mi.n_dropped:,} earlier ones are left out).")
    rotary = choice.model.position_embedding() is None
    if rotary:
        st.caption(ROTARY_NOTE + " The middle panel is zeros for that reason.")
    st.plotly_chart(fitted(input_figure(mi, rotary)), config=plot_config("input-vectors"),
                    key=PAGE.key("input_vectors"))
    scale = input_scale(mi)
    beyond = clipped(torch.stack([mi.token, mi.position, mi.total]).numpy(), scale)
    st.caption(f"Colour: RdBu, {SIGN_WORDS}, as on every page; the three panels share one scale, clipped at "
               f"±{scale['zmax']:.3f}, the {CLIP_PERCENTILE:g}th percentile of the values' size, so a few "
               f"outliers ({beyond:,} values beyond it, drawn in the end colours) do not wash out the rest. "
               f"Hover a cell for its exact value. Row 0 is the {md(mi.encoding.tokens[0])} start marker the model "
               "reads before your text.")
    st.download_button("Download these vectors (CSV)", vectors_csv(mi), file_name="glassbox-input-vectors.csv",
                       mime="text/csv", icon=":material/download:", key=PAGE.key("input_vectors_csv"))
    return mi


def input_scale(mi: ModelInput) -> dict:
    """One diverging scale for the three panels, clipped at a high percentile: position 0's embedding holds an
    outlier (about -1.6 in the built-in model) that would otherwise leave every other cell nearly white."""
    return diverging_scale(torch.stack([mi.token, mi.position, mi.total]).numpy(), CLIP_PERCENTILE)


def input_figure(mi: ModelInput, rotary: bool = False) -> go.Figure:
    labels = _row_labels(mi)
    n, d = mi.total.shape
    scale = input_scale(mi)
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.02,
                        subplot_titles=("Token embedding (wte row)",
                                        "No position table (rotary)" if rotary else "Position embedding (wpe row)",
                                        "Sum: what block 0 receives"))
    for col, (name, values) in enumerate((("token", mi.token), ("position", mi.position), ("sum", mi.total)), 1):
        fig.add_trace(go.Heatmap(
            z=values.numpy(), x=list(range(d)), y=labels, **scale, showscale=col == 3,
            hovertemplate=f"{name}<br>%{{y}}<br>dimension %{{x}}<br>value %{{z:.4f}}<extra></extra>",
            colorbar={"title": f"value<br>(clipped at<br>±{scale['zmax']:.2f})", "thickness": 14}), row=1, col=col)
        fig.update_xaxes(title_text="dimension", row=1, col=col)
    ticks = _tick_positions(n)
    fig.update_yaxes(autorange="reversed", type="category", tickvals=[labels[i] for i in ticks],
                     tickfont={"family": "monospace"}, row=1, col=1)
    fig.update_layout(height=min(900, 160 + 18 * n), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def vectors_csv(mi: ModelInput) -> str:
    rows = []
    for part, values in (("token", mi.token), ("position", mi.position), ("sum", mi.total)):
        df = pd.DataFrame(values.numpy(), columns=[f"dim_{j}" for j in range(values.shape[1])])
        df.insert(0, "part", part)
        df.insert(0, "token", mi.encoding.tokens)
        df.insert(0, "id", mi.encoding.ids)
        df.insert(0, "position", range(len(mi.encoding)))
        rows.append(df)
    return pd.concat(rows).to_csv(index=False)


@dataclass(frozen=True)
class VocabMap:
    table: torch.Tensor  # [vocab, d_model] a CPU copy of wte
    pieces: list[str]  # display form of every token id
    pca: PCA2D


def _build_map(choice: ModelChoice) -> VocabMap:
    table = token_table(choice.model)
    n = min(table.shape[0], len(choice.tokenizer))  # a table may have rows no token uses (padding)
    pieces = [display_token(choice.tokenizer, i) for i in range(n)]
    pieces += [f"<unused {i}>" for i in range(n, table.shape[0])]
    return VocabMap(table, pieces, pca_2d(table))


@st.cache_resource(max_entries=2, show_spinner="Mapping the embedding table…")
def _shared_map(model_key: str, _choice: ModelChoice) -> VocabMap:
    return _build_map(_choice)


def vocab_map(choice: ModelChoice) -> VocabMap:
    """Shared model: cached per process (read-only). A session's own model: cached in that session only."""
    if choice.shared:
        return _shared_map(choice.key, choice)
    maps = st.session_state.setdefault(_SESSION_MAPS, {})
    if choice.key not in maps:
        maps.clear()  # one model's map at a time per session
        maps[choice.key] = _build_map(choice)
    return maps[choice.key]


@st.fragment
def show_neighbours(mi: ModelInput, choice: ModelChoice) -> None:
    """Pick one of the text's tokens; list the tokens whose embeddings point the most the same way."""
    vm = vocab_map(choice)
    options = list(dict.fromkeys(mi.encoding.ids))  # distinct ids, in order of first appearance
    if len(options) > 1 and vm.pieces[options[0]] == EOT:
        options = options[1:] + options[:1]  # the start marker last: the text's own tokens are more telling
    left, right = st.columns([3, 1])
    token_id = left.selectbox("Token", options, key=PAGE.key("neighbour_token"),
                              format_func=lambda i: f"{vm.pieces[i]}  (id {i})")
    k = whole_number("How many", 1, 50, 10, key=PAGE.key("neighbour_k"), where=right)
    if token_id is None:
        return
    near = nearest_neighbours(vm.table, int(token_id), int(k))
    df = pd.DataFrame({"rank": range(1, len(near) + 1), "token": [vm.pieces[i] for i, _ in near],
                       "id": [i for i, _ in near], "cosine similarity": [round(s, 4) for _, s in near]})
    st.dataframe(df, hide_index=True, column_config={
        "cosine similarity": st.column_config.ProgressColumn(min_value=-1.0, max_value=1.0, format="%.3f")})
    st.caption("Cosine similarity: 1 means the same direction, 0 unrelated, −1 opposite. "
               "The table's toolbar downloads it as CSV.")


def show_vocab_map(mi: ModelInput, choice: ModelChoice) -> None:
    vm = vocab_map(choice)
    st.plotly_chart(fitted(map_figure(vm, mi)), config=plot_config("embedding-map"), key=PAGE.key("vocab_map"))
    ex = vm.pca.explained
    ids = drawn_ids(vm)
    every = "Every dot is one" if len(ids) == len(vm.pieces) else \
        f"Each dot is one of {len(ids):,} tokens spread evenly over all"
    st.caption(f"{every} of the {len(vm.pieces):,} tokens, placed by the two directions along which "
               f"the embedding table varies most (PCA of the whole table; they carry {ex[0]:.1%} and {ex[1]:.1%} of "
               "its variance). Grey: the vocabulary; vermillion: the tokens of your text.")
    coords = vm.pca.coords[ids].numpy()
    csv = pd.DataFrame({"id": ids, "token": [vm.pieces[i] for i in ids], "pc1": coords[:, 0], "pc2": coords[:, 1]})
    st.download_button("Download the map (CSV)", csv.to_csv(index=False), file_name="glassbox-embedding-pca.csv",
                       mime="text/csv", icon=":material/download:", key=PAGE.key("vocab_map_csv"))


def drawn_ids(vm: VocabMap) -> list[int]:
    """The vocabulary rows the map draws: all of them, or MAX_MAP_POINTS spread evenly over a large vocabulary
    (GPT-2 has 50,257 tokens, Qwen 151,936: a browser should not be sent every one)."""
    return sample_positions(len(vm.pieces), MAX_MAP_POINTS)


def map_figure(vm: VocabMap, mi: ModelInput) -> go.Figure:
    ids = drawn_ids(vm)
    xy = vm.pca.coords[ids].numpy()
    shown = [plotly_text(vm.pieces[i]) for i in ids]
    fig = go.Figure(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name="vocabulary", customdata=ids, text=shown,
        marker={"size": 4, "color": BACKGROUND, "opacity": 0.45},
        hovertemplate="%{text}<br>id %{customdata}<extra></extra>"))
    mine = list(dict.fromkeys(mi.encoding.ids))
    named = set(mine[:MAX_MAP_LABELS])
    fig.add_trace(go.Scatter(
        x=xy[mine, 0], y=xy[mine, 1], mode="markers+text", name="your text", customdata=mine,
        text=[shown[i] if i in named else "" for i in mine], textposition="top center",
        textfont={"family": "monospace", "size": 13, "color": "#111"}, hovertext=[shown[i] for i in mine],
        marker={"size": 10, "color": HIGHLIGHT, "line": {"width": 1, "color": "#222"}, "symbol": "diamond"},
        hovertemplate="%{hovertext}<br>id %{customdata}<extra>your text</extra>"))
    ex = vm.pca.explained
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"},
                      xaxis_title=f"PC 1 ({ex[0]:.1%} of variance)", yaxis_title=f"PC 2 ({ex[1]:.1%} of variance)")
    return fig


ROTARY_NOTE = ("This model has no position-embedding table: it uses rotary positions, which rotate each query and "
               "key vector inside attention by an angle that grows with the token's position. What block 0 "
               "receives is the token embedding alone.")


def show_position_similarity(mi: ModelInput | None, choice: ModelChoice) -> None:
    wpe = position_table(choice.model)  # [block_size, d_model]
    if wpe is None:
        st.info(ROTARY_NOTE, icon=":material/rotate_right:")
        return
    keep = sample_positions(wpe.shape[0], MAX_POS_CELLS)
    sims = cosine_matrix(wpe[keep])  # [kept, kept]
    fig = go.Figure(go.Heatmap(z=sims.numpy(), x=keep, y=keep, zmin=-1, zmax=1, zmid=0, colorscale=DIVERGING,
                               colorbar={"title": "cosine", "thickness": 14},
                               hovertemplate="positions %{y} and %{x}<br>cosine %{z:.3f}<extra></extra>"))
    if mi is not None:
        end = len(mi.encoding) - 1  # the last position your text reaches
        fig.add_shape(type="rect", x0=-0.5, y0=-0.5, x1=end + 0.5, y1=end + 0.5,
                      line={"color": "#111", "width": 2, "dash": "dot"})
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="position", yaxis_title="position", yaxis_autorange="reversed")
    fig.update_yaxes(scaleanchor="x")
    st.plotly_chart(fitted(fig), config=plot_config("position-similarity"), key=PAGE.key("position_similarity"))
    note = f" Every {wpe.shape[0] // len(keep)}th position is shown." if len(keep) < wpe.shape[0] else ""
    st.caption("Cosine similarity of every pair of position embeddings (RdBu: blue alike, red opposite). "
               f"The dotted square marks the positions your text uses.{note}")
    df = pd.DataFrame(sims.numpy(), index=pd.Index(keep, name="position"), columns=[str(p) for p in keep])
    st.download_button("Download the matrix (CSV)", df.to_csv(), file_name="glassbox-position-similarity.csv",
                       mime="text/csv", icon=":material/download:", key=PAGE.key("position_similarity_csv"))
