"""Feed-forward layers and the residual stream: what each layer adds to every token.

Every view draws from the cached Trace (and results derived from it once); choosing a layer, a neuron or a
position reruns only its fragment, never the model. The tabs are ui/feedforward/sections.py.
"""
import streamlit as st

import ui
from ui.feedforward import PAGE, SNIPPET_CSS, View, mlp_shape_text, mlp_share_text, show_tabs, start_marker_toggle
from ui.intervene import PAGE as INTERVENE
from ui.terms import define

choice = ui.setup_page(PAGE)
st.html(f"<style>{SNIPPET_CSS}</style>")
st.title("Feed-forward layers and the residual stream", help=define("residual stream"))
st.markdown(
    "After attention has mixed information between tokens, every token passes on its own through a "
    "**feed-forward network** (an *MLP*): " + mlp_shape_text(choice.model.config) +
    " Each unit of the wide layer is a **neuron**. " + mlp_share_text(choice.model) +
    " Attention and MLP blocks never replace a token's vector: each **adds** its output to a running "
    "sum, the **residual stream**, and the model's prediction is read from that sum at the end. Everything below "
    "is computed from the running model on your text.")

trace = None
with ui.error_boundary("running the model on your text"):
    text = ui.text_input_area()
    trace = ui.trace_or_stop(text, choice)
if trace is None:
    st.stop()
show_tabs(View(choice, trace, start_marker_toggle(trace)))
ui.link_to(INTERVENE, "A neuron's examples show what it fires on, not what it does. Switch a neuron or a whole MLP "
                      "layer off (ablation), or push the residual stream in a direction (steering), and watch the "
                      "model's output.")
