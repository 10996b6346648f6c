"""Attention: which earlier tokens each position looks at, head by head, with the real weights of one run."""
import streamlit as st

import ui
from engine import Trace
from ui.attention import PAGE, TABS, draw_tab, remote_view
from ui.intervene import PAGE as INTERVENE
from ui.terms import define

choice = ui.setup_page(PAGE)
st.title("Attention", help=define("transformer"))
st.markdown("A transformer reads the whole text at once. In every layer, each **head** lets every token look "
            "back at the tokens before it and take in some of what they carry: that is how a word's meaning "
            "comes to depend on its context. Below are the real attention weights of one run of the model on "
            "your text.")


@st.fragment
def explore(trace: Trace, choice: ui.ModelChoice) -> None:
    """Everything that only reads the trace: a tab, or a head picked on a tab the server draws, reruns this,
    not the model; on "All heads" picking happens in the browser."""
    tabs = st.tabs(TABS, **PAGE.remembered("tab", TABS[0], TABS))  # kept across pages
    for tab, name in zip(tabs, TABS):
        if tab.open:
            with tab, ui.error_boundary(f"drawing “{name}”"):
                draw_tab(name, trace, choice)


if choice.remote:  # runs on NDIF: one layer's heads at a time, asked for as they are picked
    with ui.error_boundary("asking NDIF for the attention"):
        remote_view(ui.text_input_area(), choice)
    st.stop()
trace = None
with ui.error_boundary("running the model on your text"):
    trace = ui.trace_or_stop(ui.text_input_area(), choice)
if trace is not None:
    explore(trace, choice)
ui.link_to(INTERVENE, "A head that lights up on a word is a correlation. To test what a head does, switch it off "
                      "(ablation) or copy it in from another prompt (activation patching).")
