"""Intervene: change one thing inside the model and watch what it does (patching, ablation, steering, forcing a
token, which input tokens mattered). The tabs are ui/intervene/."""
import streamlit as st

import ui
from ui.intervene import HEAT_CSS, PAGE, show_tabs
from ui.terms import define

choice = ui.setup_page(PAGE)
st.html(f"<style>{HEAT_CSS}</style>")
st.title("Intervene: change one thing, see what the model does", help=define("activation patching"))
st.markdown("The other pages show what the model computed. But a number lighting up on a heatmap is a "
            "correlation, not an explanation. To find out what a part of the model *does*, change it and watch "
            "the output: copy an activation in from another prompt (**patching**), switch a part off "
            "(**ablation**), push the residual stream in a direction (**steering**), force another token and let "
            "the model go on, or take each input token away in turn. Every change is made inside one forward pass "
            "of the running model, for you only; the shared model itself is never touched.")

text = ""
with ui.error_boundary("reading your text"):
    text = ui.text_input_area()
show_tabs(choice, text)
