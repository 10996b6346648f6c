"""The Feed-forward page's tabs: MLP activations, the neuron explorer, the residual stream, the logit lens and
where the parameters live.

Every tab draws from the page's cached Trace (and results derived from it once, in .data); each is a fragment,
so choosing a layer, a neuron or a position reruns only that tab, never the model.
"""
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from engine import Trace, display_token
from engine.inspect.neurons import firing_fraction, rank_neurons
from engine.inspect.params import compare, param_breakdown, part_totals

from ..errors import error_boundary
from ..models import ModelChoice, describe_size
from ..patterns import short
from ..text import md
from ..terms import define
from ..views.activations import METRICS, MOST, show_activations
from ..views.lens import show_lens
from .figures import csv_button, examples_frame, matrix_frame, neuron_trace_bars, show_figure, snippets_html, text_html
from .residual import (EMBEDDINGS_TICK, UNTIED_TICK, comparison_chart, comparison_frame, contribution_waterfall,
                       embeddings_note, lens_frame, params_frame, params_treemap, part_heatmap)
from .data import describe_reference, get_atlas, get_contributions, get_lens
from .quantization import quantization_tab
from .state import PAGE, TABS

# The page's choices keep their values across closed tabs and page changes (ui.state.remembered).
remembered = PAGE.remembered


@dataclass(frozen=True)
class View:
    """What every tab reads: the model, the trace of the user's text, and the first position shown."""
    choice: ModelChoice
    trace: Trace
    first: int  # 1 when the start marker is left out of the views, else 0

    @property
    def cfg(self):
        return self.trace.config

    @property
    def tokens(self) -> list[str]:
        return self.trace.tokens[self.first:]

    def decode(self, token_id: int) -> str:
        return display_token(self.choice.tokenizer, token_id)


def start_marker_toggle(trace: Trace) -> int:
    """The toggle that leaves out the start marker; returns the first position the views show."""
    skip_bos = st.toggle(
        "Leave out the start marker", **remembered("skip_bos", True),
        help="The model reads an <|endoftext|> marker before your text. Its activations are often far larger "
             "than any word's and would wash out the colours; switch this off to see it too.")
    return 1 if skip_bos and trace.has_bos and len(trace) > 1 else 0


def name(kind: str) -> str:
    """A file name for downloads: glassbox-feedforward-<kind>."""
    return f"glassbox-feedforward-{kind}"


def layer_picker(v: View) -> int:
    """The page's layer: the same on every tab that shows one."""
    n_layer = v.cfg.n_layer
    return st.selectbox("Layer", range(n_layer), **remembered("layer", 0, range(n_layer)),
                        format_func=lambda i: f"layer {i}" + (" (first)" if i == 0 else
                                                              " (last)" if i == n_layer - 1 else ""))


SLIDER_CHARS = 8  # token characters in the Position slider's value label


def position_picker(v: View, term: str | None = None) -> int:
    """Which position to detail (the end of the text unless the user picks another), the same on every tab that
    details one; `term`: a glossary term its help defines first."""
    positions = list(range(v.first, len(v.trace)))
    if len(positions) == 1:
        return positions[0]
    words = "At every position the model predicts the token after it."
    # The value shows above the thumb and is cut at the slider's ends: a short label (the figures name the token).
    return st.select_slider("Position", positions, **remembered("position", positions[-1], positions),
                            # the strings only: a widget's format_func lives as long as the session
                            format_func=lambda p, tokens=v.trace.tokens: f"{p}: {md(short(tokens[p], SLIDER_CHARS))}",
                            help=define(term, words) if term else words)


def _kept(name: str, default, allowed) -> object:
    """A choice the browser makes and reports (ui/views): the kept value when it is allowed, else `default`."""
    value = PAGE.kept(name, default)
    if isinstance(value, bool) or value not in allowed:
        value = default
        PAGE.choose(name, value)
    return value


def _activation_choices(most: int):
    """The callback for the activations view's report: neurons shown, ranked by, the overview's measure."""
    allowed = {"act_neurons": range(1, most + 1), "act_by": ("max", "mean"), "overview_metric": tuple(METRICS)}
    fields = {"act_neurons": "n_show", "act_by": "by", "overview_metric": "metric"}

    def apply(view) -> None:
        for name, field in fields.items():
            value = view.get(field)
            if not isinstance(value, bool) and value in allowed[name]:
                PAGE.choose(name, value)
    return apply


# What each measure of "Every layer at a glance" is, for the caption under it.
OVERVIEW_MEANS = {
    "out_norm": "“Size of what the MLP writes”: the length (L2 norm) of the vector the layer's MLP adds to the "
                "token's residual stream, whatever its direction.",
    "firing": "“Share of neurons firing”: the fraction of the layer's neurons above zero at that token.",
    "mean": "“Mean activation”: the average of all the layer's neuron values at that token (negative values "
            "included, so it can sit near zero while a few neurons fire hard).",
}


@st.fragment
def activations(v: View) -> None:
    """One layer's activations, drawn in the browser (ui/views/activations.py); the layer is chosen here."""
    with error_boundary("drawing the MLP activations"):
        c1, _ = st.columns([1, 2.6])
        with c1:
            layer = layer_picker(v)
        most = min(v.cfg.d_mlp, MOST)
        sel = {"n_show": _kept("act_neurons", min(32, most), range(1, most + 1)),
               "by": _kept("act_by", "max", ("max", "mean")), "metric": _kept("overview_metric", "out_norm", tuple(METRICS))}
        show_activations(v.trace, layer, v.first, PAGE.key("activations"), sel, _activation_choices(most))
        st.caption("Every layer at a glance, its three measures: " + " ".join(OVERVIEW_MEANS.values()))
        post = v.trace.act[f"blocks.{layer}.mlp.hook_post"][v.first:]  # [pos, d_mlp], cached: no model run
        c1, c2 = st.columns(2)
        with c1:
            csv_button(f"All {v.cfg.d_mlp:,} neurons of layer {layer} (CSV)",
                       lambda: matrix_frame(post, v.tokens, [f"n{i}" for i in range(v.cfg.d_mlp)], v.first),
                       f"{name(f'layer{layer}-activations')}.csv", PAGE.key("act_csv"))
        with c2:
            csv_button("Share firing per token (CSV)",
                       lambda: matrix_frame(firing_fraction(post)[:, None], v.tokens, ["share firing"], v.first),
                       f"{name(f'layer{layer}-firing')}.csv", PAGE.key("firing_csv"))


@st.fragment
def neuron_explorer(v: View) -> None:
    with error_boundary("exploring the neuron"):
        st.caption(describe_reference())
        atlas = get_atlas(v.choice)  # built once per model; from here on, lookups only
        c1, c2 = st.columns([1, 3])
        with c1:
            layer = layer_picker(v)
        post = v.trace.act[f"blocks.{layer}.mlp.hook_post"]  # [pos, d_mlp]
        shown = post[v.first:]
        order, peaks = rank_neurons(shown, v.cfg.d_mlp, "max")
        where = shown.argmax(dim=0)  # [d_mlp]: position of each neuron's peak on the text
        peak_of = dict(zip(order.tolist(), peaks.tolist()))
        with c2:
            neuron = st.selectbox(
                "Neuron (most active on your text first; type a number to find one)", order.tolist(),
                **remembered("neuron", int(order[0]), order.tolist()), help=define("neuron"),
                # selectbox options are plain text, not Markdown: the token is shown as it is
                format_func=lambda n, tokens=v.tokens, where=where.tolist(): (
                    f"neuron {n} · peak {peak_of[n]:.2f} on “{tokens[where[n]]}”"))
        acts = shown[:, neuron]  # [pos]
        examples = atlas.examples(layer, neuron)
        scale = max([e.value for e in examples] + [float(acts.max())] + [1e-6])
        m = st.columns(4)
        m[0].metric("Peak on your text", f"{float(acts.max()):.3f}")
        m[1].metric("Fires on your tokens", f"{float((acts > 0).float().mean()):.0%}")
        m[2].metric("Fires on reference tokens", f"{float(atlas.firing[layer, neuron]):.0%}")
        m[3].metric("Peak in the reference set", f"{examples[0].value:.3f}" if examples else "–")
        st.markdown("**On your text** (orange: the neuron fires; the stronger, the deeper)")
        st.markdown(text_html(v.tokens, acts.tolist(), scale, v.first), unsafe_allow_html=True)
        show_figure(neuron_trace_bars(acts, v.tokens, layer, neuron, v.first), name(f"layer{layer}-n{neuron}"),
                       key=PAGE.key("neuron_bars"))
        csv_button("This neuron on your text (CSV)",
                      lambda: matrix_frame(acts[:, None], v.tokens, [f"layer {layer} neuron {neuron}"], v.first),
                      f"{name(f'layer{layer}-n{neuron}-text')}.csv", PAGE.key("neuron_csv"))
        st.markdown(f"**Where it fires most in the reference stories** (the outlined token is the peak; "
                    f"the same orange scale, full at {scale:.2f})")
        st.markdown(snippets_html(examples, scale), unsafe_allow_html=True)
        csv_button("These examples (CSV)", lambda: examples_frame(examples),
                      f"{name(f'layer{layer}-n{neuron}-examples')}.csv", PAGE.key("examples_csv"))
        with st.expander(f"The reference stories ({len(atlas.reference.texts)} stories, "
                         f"{atlas.reference.n_tokens:,} tokens for this model)"):
            st.dataframe(pd.DataFrame({"story": range(1, len(atlas.reference.texts) + 1),
                                       "opening": atlas.reference.prompts, "text": atlas.reference.texts}),
                         hide_index=True)


@st.fragment
def residual_stream(v: View) -> None:
    with error_boundary("drawing the residual stream"):
        c = get_contributions(v.choice, v.trace)
        views = {"direct": "push towards the final prediction", "norms": "size of what each part writes"}
        view = st.radio("Show", list(views), horizontal=True, format_func=views.get,
                        **remembered("resid_view", "direct", list(views)))
        values = (c.direct if view == "direct" else c.norms)[:, v.first:]  # [part, pos]
        title = ("Each part's direct push on the final prediction's logit" if view == "direct"
                 else "Length (L2 norm) of what each part adds to the residual stream")
        show_figure(part_heatmap(values.numpy(), c.parts, v.tokens, view == "direct", title, v.first),
                       name(f"residual-{view}"), key=PAGE.key("resid_heatmap"))
        if view == "direct":
            st.caption("Colour: RdBu centred on zero, blue positive and red negative as on every page: blue "
                       "pushes the logit of the token the model finally predicts at that position up, red pushes "
                       "it down. The final layer norm is applied with the "
                       "scale the real forward pass used, so the pushes plus the norm's bias add up to the logit.")
        else:
            st.caption("Colour: viridis, yellow = a long vector. Parts write into the same stream; a long vector "
                       "is a loud one, whatever its direction.")
        csv_button("This matrix (CSV)", lambda: matrix_frame(values.T, v.tokens, c.parts, v.first),
                      f"{name(f'residual-{view}')}.csv", PAGE.key("resid_csv"))
        pos = position_picker(v)
        show_figure(contribution_waterfall(c, pos, v.decode), name(f"residual-waterfall-pos{pos}"))
        st.caption(f"The last bar is the model's real logit for “{v.decode(int(c.target_ids[pos]))}” at position "
                   f"{pos}, computed by the model; the steps before it are each part's share.")


def _position_choice(v: View):
    """The callback for a position the lens view reports: a position it shows, or nothing changes."""
    def apply(view) -> None:
        p = view.get("position")
        if isinstance(p, int) and not isinstance(p, bool) and v.first <= p < len(v.trace):
            PAGE.choose("position", p)
    return apply


@st.fragment
def lens_view(v: View) -> None:
    """The logit lens, drawn in the browser (ui/views/lens.py): picking a position there redraws its table."""
    with error_boundary("drawing the logit lens"):
        full = get_lens(v.choice, v.trace)
        tied = v.cfg.tied_embeddings
        ticks = [(EMBEDDINGS_TICK if tied else UNTIED_TICK) if s == "embeddings" else s for s in full.stages]
        last = len(v.trace) - 1
        pos = _kept("position", last, range(v.first, last + 1))
        show_lens(v.trace, full, v.first, v.decode, ticks, PAGE.key("lens"), pos,
                  define("logit lens", "At every position the model predicts the token after it."), _position_choice(v))
        st.caption("Each row applies the model's own final layer norm and output layer to the residual stream at "
                   "that stage, as if the model stopped there. Colour: viridis from 0% to 100%, the probability "
                   "of the token the model finally predicts at that position. Hover a cell for its top token; click a "
                   "column (or Tab to the figure, move with the arrow keys, press Enter) for that position's table. "
                   "The last row is the model's real output, the same numbers the Next token page shows.")
        lens = replace(full, top_ids=full.top_ids[:, v.first:], top_probs=full.top_probs[:, v.first:],
                       target_ids=full.target_ids[v.first:], target_probs=full.target_probs[:, v.first:],
                       target_ranks=full.target_ranks[:, v.first:])
        st.caption(embeddings_note(lens, v.trace.ids[v.first:], tied))
        csv_button("Every stage and position (CSV)", lambda: lens_frame(lens, v.tokens, v.decode, v.first),
                   f"{name('logit-lens')}.csv", PAGE.key("lens_csv"))


def mlp_shape_text(cfg) -> str:
    """How this model's MLP is built, in one sentence: GPT-2's widen-GELU-narrow, or a gated MLP."""
    wide = cfg.d_mlp / cfg.n_embd
    times = f"{wide:.0f} times" if wide == int(wide) else f"{wide:.2g} times"
    if cfg.mlp == "gated":
        return (f"it projects the token's vector twice to {cfg.d_mlp:,} numbers ({times} its width), passes one, "
                f"the *gate*, through a nonlinearity ({cfg.activation}), multiplies it by the other, the *up* "
                "projection, and narrows the product again (a gated MLP, as in Llama).")
    act = "GELU" if "gelu" in str(cfg.activation) else str(cfg.activation)
    return f"it widens the token's vector {times} (to {cfg.d_mlp:,} numbers), applies a nonlinearity ({act}), " \
           "and narrows it again."


def mlp_share_text(model) -> str:
    """What share of this model's parameters the MLPs hold, in words that follow the model on screen (a small
    model spends much of its size on the vocabulary; in a large one the MLPs hold most of it)."""
    totals = part_totals(param_breakdown(model))
    total = sum(totals.values())
    mlp, emb = totals.get("MLP", 0) / total, totals.get("Embeddings", 0) / total
    if mlp > 0.5:
        return f"Most of this model's parameters live here: {mlp:.0%} of them."
    if mlp >= max(totals.values()) / total:
        return f"The MLPs are this model's largest part: {mlp:.0%} of its parameters (embeddings {emb:.0%})."
    return (f"In this model the MLPs hold {mlp:.0%} of the parameters and the embeddings {emb:.0%}: a small "
            "model spends much of its size on its vocabulary. In large models the MLPs hold most of them (about "
            "two thirds in GPT-3).")


def parameters(v: View) -> None:
    with error_boundary("counting the parameters"):
        groups = param_breakdown(v.choice.model)
        total = v.choice.model.num_params()
        totals = part_totals(groups)
        m = st.columns(4)
        m[0].metric("Parameters", f"{total:,}", help=define("parameters"))
        for col, part in zip(m[1:], ("MLP", "Attention", "Embeddings")):
            col.metric(f"{part}", f"{totals.get(part, 0) / total:.0%}")
        show_figure(params_treemap(groups, v.choice.name), name("parameters"))
        st.caption(f"Per block, the MLP holds 2 × {v.cfg.n_embd} × {v.cfg.d_mlp} weights (in and out) plus biases; "
                   f"attention holds 4 × {v.cfg.n_embd} × {v.cfg.n_embd}. The token embedding is also the output "
                   "layer (the weights are tied), so it is counted once.")
        st.dataframe(params_frame(groups, total), hide_index=True,
                     column_config={"share": st.column_config.NumberColumn(format="percent"),
                                    "parameters": st.column_config.NumberColumn(format="localized")})
        known = compare(total)
        sizes = {m.name: m.params for m, _ in known}
        st.markdown(f"GPT-2 small is **{sizes['GPT-2 small'] / total:,.0f} times** the size of this model "
                    f"({describe_size(total)} parameters), and GPT-3 is "
                    f"{sizes['GPT-3'] / sizes['GPT-2 small']:,.0f} times GPT-2 small.")
        show_figure(comparison_chart(total, v.choice.name, known), name("size-comparison"))
        csv_button("This comparison (CSV)", lambda: comparison_frame(total, v.choice.name, known),
                      f"{name('size-comparison')}.csv", PAGE.key("compare_csv"))
        st.caption("Sources: the GPT-2 and Llama 3 counts are those of the released weights; GPT-3 175B "
                   "(Brown et al. 2020), Llama 3.1 405B (Llama 3 report, 2024) and BERT-base 110M are the "
                   "papers' round numbers.")


# Lazy tabs: only the open tab runs, so the neuron explorer's reference set is built only when it is opened.
DRAW = dict(zip(TABS, (activations, neuron_explorer, residual_stream, lens_view, parameters, quantization_tab)))


def show_tabs(v: View) -> None:
    """The page's tabs; only the open one draws, and which one is open is remembered across pages."""
    tabs = st.tabs(list(TABS), **remembered("tab", TABS[0], list(TABS)))
    for tab, draw in zip(tabs, DRAW.values()):
        if tab.open:
            with tab:
                draw(v)
