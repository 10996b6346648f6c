"""The Feed-forward page's Quantization tab: the model in use with its weights in fewer bits (engine.inspect.quantize),
against itself in float32 on a held-out story or the user's text.

The user picks the bit width: 8 is PyTorch's real int8 dynamic quantization, 4, 3 and 2 are simulated
(rounded weights held in float32), and the tab says which. Quantized copies are never the shared model: a
deepcopy per (model, bits), kept process-wide for the server's models within GLASSBOX_QUANT_BUDGET_MB (a copy
of a bigger model is made, used and let go), in the session for the session's own models; results are kept
per (model, bits, tokens) the same way, so switching tabs or bit widths back and forth reruns nothing.
"""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import display_token, settings
from engine.inspect.quantize import BITS, GROUP, HELDOUT_STORY, INT8, Comparison, Quantized, compare, quantized_copy
from engine.model.cost import size_text
from engine.model.trace import encode_for_model

from ..errors import error_boundary
from ..lru import ByteLRU
from ..models import ModelChoice, model_bytes
from ..server import model_work
from ..state import MAX_CHARS
from ..terms import define
from ..text import plotly_text
from .figures import csv_button, show_figure
from .state import PAGE

COPIES: ByteLRU[tuple[str, int], Quantized] = ByteLRU(lambda: settings.current().quant_budget_bytes)
RESULTS: ByteLRU[tuple[str, int, tuple[int, ...]], Comparison] = ByteLRU(max_entries=32)
_SESSION_COPIES = PAGE.key("quant_copies")  # session key: ByteLRU of the session's own models' copies
_SESSION_RESULTS = PAGE.key("quant_results")  # session key: ByteLRU of their comparisons
SOURCES = ("A held-out story", "Your text")
FLIP, SAME = "#D55E00", "#0072B2"  # Okabe-Ito: top token changed / kept
WEIGHTS, STREAM = "#E69F00", "#0072B2"


def bits_words(bits: int) -> str:
    return "8 · real int8" if bits == INT8 else f"{bits} · simulated"


def _caches(choice: ModelChoice) -> tuple[ByteLRU, ByteLRU]:
    if choice.shared:
        return COPIES, RESULTS
    copies = st.session_state.setdefault(_SESSION_COPIES, ByteLRU(settings.current().quant_budget_bytes, 2))
    return copies, st.session_state.setdefault(_SESSION_RESULTS, ByteLRU(max_entries=8))


def comparison(choice: ModelChoice, bits: int, ids: list[int]) -> Comparison:
    """The model and its `bits`-bit copy on `ids`, computed once per (model, bits, tokens)."""
    copies, results = _caches(choice)
    key = (choice.key, bits, tuple(ids))
    hit = results.get(key)
    if hit is not None:
        return hit
    q = copies.get((choice.key, bits))
    with model_work():
        if q is None:
            with st.spinner(f"Quantizing a copy of the model to {bits} bits…"):
                q = quantized_copy(choice.model, bits)
            size = model_bytes(choice.model)
            if size <= settings.current().quant_budget_bytes:  # a bigger copy is used once and let go
                copies.put((choice.key, bits), q, nbytes=size)
        result = compare(choice.model, q, ids)
    results.put(key, result)
    return result


def tokens_for(choice: ModelChoice, source: str, text: str) -> list[int]:
    """The token ids compared: the held-out story or the user's text, with the start marker, within the context."""
    raw = HELDOUT_STORY if source == SOURCES[0] else text[:MAX_CHARS]
    enc, _ = encode_for_model(choice.tokenizer, raw, choice.model.config.block_size)
    return enc.ids


def kl_figure(c: Comparison, tokens: list[str]) -> go.Figure:
    """Bars: the KL divergence of the next-token distribution at every position, orange where the top token
    flips."""
    x = list(range(len(c.kl)))
    colours = [FLIP if f else SAME for f in c.flips.tolist()]
    hover = [f"after “{plotly_text(tokens[i])}” (position {i})<br>KL {float(c.kl[i]):.4f} nats<br>"
             + ("top token changed" if c.flips[i] else "same top token") for i in x]
    fig = go.Figure(go.Bar(x=x, y=c.kl.tolist(), marker_color=colours, hovertext=hover, hoverinfo="text"))
    kind = "8-bit, real int8" if c.bits == INT8 else f"{c.bits}-bit, simulated"
    fig.update_layout(title=dict(text=f"How far each next-token distribution moved ({kind})",
                                 font=dict(size=17)), height=320, font=dict(size=14), showlegend=False,
                      margin=dict(l=10, r=20, t=60, b=10), plot_bgcolor="white",
                      xaxis=dict(title="position in the text", gridcolor="#e5e5e5"),
                      yaxis=dict(title="KL (nats)", gridcolor="#e5e5e5", rangemode="tozero"))
    return fig


def error_figure(c: Comparison) -> go.Figure:
    """Per layer: the weights' relative rounding error and the residual stream's relative error after it."""
    fig = go.Figure()
    fig.add_bar(x=list(c.parts), y=[100 * e for e in c.weight_error], name="weights rounded (relative error)",
                marker_color=WEIGHTS, hovertemplate="%{x}: %{y:.2f}% of the weights' size<extra></extra>")
    layers = [p for p in c.parts if p != "output layer"]
    fig.add_bar(x=layers, y=[100 * e for e in c.resid_error], name="residual stream after the layer",
                marker_color=STREAM, marker_pattern_shape="/",
                hovertemplate="after %{x}: %{y:.2f}% of the stream's size<extra></extra>")
    fig.update_layout(title=dict(text="The error, layer by layer", font=dict(size=17)), height=340,
                      font=dict(size=14), barmode="group", margin=dict(l=10, r=20, t=90, b=10),
                      plot_bgcolor="white", legend=dict(orientation="h", y=1.12, x=0, font=dict(size=13)),
                      yaxis=dict(title="relative error (%)", gridcolor="#e5e5e5", rangemode="tozero"))
    return fig


def flips_html(c: Comparison, choice: ModelChoice) -> str:
    """The text, each token outlined where the prediction made after it flipped; the title says both guesses."""
    tok = choice.tokenizer
    parts = ['<div class="gb-q-text">']
    for i, token_id in enumerate(c.ids[:-1]):
        shown = html.escape(display_token(tok, token_id, show_whitespace=False).replace("\n", "↵"))
        if c.flips[i]:
            title = (f"after this token the float model predicts “{display_token(tok, int(c.top_float[i]))}”, the "
                     f"quantized one “{display_token(tok, int(c.top_quant[i]))}”")
            parts.append(f'<span class="gb-q-flip" title="{html.escape(title, quote=True)}">{shown}</span>')
        else:
            parts.append(f"<span>{shown}</span>")
    parts.append("</div>")
    return "".join(parts)


CSS = (".gb-q-text { font-family: ui-monospace, Menlo, Consolas, monospace; line-height: 2; white-space: pre-wrap; "
       "max-height: 14em; overflow-y: auto; } .gb-q-flip { outline: 2px solid #D55E00; border-radius: 3px; "
       "background: #fbe3d4; }")


def layer_frame(c: Comparison) -> pd.DataFrame:
    resid = dict(zip([p for p in c.parts if p != "output layer"], c.resid_error))
    return pd.DataFrame([{"part": p, "weights: relative error": w, "residual stream after it: relative error":
                          resid.get(p)} for p, w in zip(c.parts, c.weight_error)])


@st.fragment
def quantization_tab(v) -> None:
    """The tab; `v` is the page's View (choice, trace)."""
    with error_boundary("quantizing the model"):
        _tab(v.choice, v.trace.text)


def _tab(choice: ModelChoice, text: str) -> None:
    st.html(f"<style>{CSS}</style>")
    st.markdown("Every weight of this model is a 32-bit float. Served models often keep them in 8 or 4 bits: "
                "two to eight times less memory, at some cost in accuracy. Here the model in use is quantized (a "
                "copy: the shared model is never changed) and compared with itself, token by token.",
                help=define("quantization"))
    c1, c2 = st.columns([2, 1])
    with c1:
        bits = st.segmented_control("Bits per weight", BITS, format_func=bits_words,
                                    **PAGE.remembered("bits", INT8, BITS)) or INT8
    with c2:
        source = st.radio("Compared on", SOURCES, horizontal=True, **PAGE.remembered("quant_source", SOURCES[0],
                                                                                     SOURCES))
    if bits == INT8:
        st.info("**Real int8.** PyTorch's dynamic quantization: each weight matrix is stored as 8-bit integers with "
                "one scale; at run time each layer's input is rounded to 8 bits too, the matrix product runs in "
                "integer arithmetic (32-bit sums) and the result is scaled back to float. Embeddings and norms "
                "stay float32.", icon=":material/memory:")
    else:
        st.warning(f"**Simulated {bits}-bit.** Each row of every weight matrix is cut into groups of {GROUP}; each "
                   f"group's numbers are rounded to the nearest of {2 ** bits} evenly spaced levels between its "
                   "minimum and maximum (round-to-nearest), then stored back as float32. The rounding error is "
                   "real; the arithmetic is float32, so the memory below is what a packed format would take, an "
                   "estimate, and the time is not a quantized kernel's.", icon=":material/science:")
    ids = tokens_for(choice, source, text)
    if len(ids) < 3:
        st.info("Type a longer text, or compare on the held-out story.", icon=":material/keyboard:")
        return
    c = comparison(choice, bits, ids)
    tokens = [display_token(choice.tokenizer, i) for i in ids]
    m = st.columns(4)
    m[0].metric("Weights in memory", size_text(c.bytes_quant),
                f"{c.bytes_quant / c.bytes_float - 1:+.0%} vs {size_text(c.bytes_float)}", delta_color="inverse",
                help="As torch saves the weights (int8: measured)" if c.real else
                "Estimated for a packed format: here the rounded weights are held in float32")
    m[1].metric("Perplexity", f"{c.ppl_quant:.2f}", f"{c.ppl_quant - c.ppl_float:+.2f} vs {c.ppl_float:.2f}",
                delta_color="inverse", help=define("perplexity"))
    m[2].metric("Mean KL", f"{float(c.kl.mean()):.4f} nats",
                help="How far the quantized model's next-token distribution is from the float model's, averaged "
                     "over the positions (0: identical)")
    m[3].metric("Top token flips", f"{c.flip_rate:.1%}",
                help=f"Positions where the most likely next token changed: {int(c.flips.sum()):,} of {len(c.flips):,}")
    show_figure(kl_figure(c, tokens), "glassbox-quantization-kl", key=PAGE.key("quant_kl"))
    st.caption("One bar per position: the KL divergence from the float model's next-token distribution to the "
               "quantized one's. Orange: the most likely next token changed; blue: it stayed.")
    st.markdown(f"**Where the top token flips** ({int(c.flips.sum()):,} of {len(c.flips):,} positions, outlined; "
                "hover for both guesses)")
    st.markdown(flips_html(c, choice), unsafe_allow_html=True)
    show_figure(error_figure(c), "glassbox-quantization-layers", key=PAGE.key("quant_layers"))
    st.caption("Orange: how far each layer's weights moved when rounded, relative to their size. Blue, hatched: "
               "how far the residual stream after that layer is from the float model's, relative to its size, "
               "averaged over the positions: rounding errors add up as the layers stack.")
    csv_button("Layer by layer (CSV)", lambda: layer_frame(c), f"glassbox-quantization-{c.bits}bit-layers.csv",
               PAGE.key("quant_csv"))
    st.caption(f"Time for one forward pass over these {len(ids):,} tokens, measured here: "
               f"{1000 * c.seconds_float:.1f} ms in float32, {1000 * c.seconds_quant:.1f} ms quantized"
               + (" (int8 kernels)." if c.real else " (float32 arithmetic: simulated rounding saves no time)."))
    sweep(choice, ids)


def sweep(choice: ModelChoice, ids: list[int]) -> None:
    """Every bit width on the same tokens, on request: one table."""
    if st.button("Compare every bit width", key=PAGE.key("quant_sweep"), icon=":material/stacked_line_chart:"):
        st.session_state[PAGE.key("quant_swept")] = True
    if not st.session_state.get(PAGE.key("quant_swept")):
        return
    rows = []
    for bits in BITS:
        c = comparison(choice, bits, ids)
        rows.append({"bits": "8 (int8, real)" if bits == INT8 else f"{bits} (simulated)",
                     "weights": size_text(c.bytes_quant), "perplexity": round(c.ppl_quant, 2),
                     "float perplexity": round(c.ppl_float, 2), "mean KL (nats)": round(float(c.kl.mean()), 4),
                     "top token flips": f"{c.flip_rate:.1%}"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=PAGE.key("quant_table"))
