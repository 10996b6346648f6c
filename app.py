"""Glassbox home page: what the app is, your text split into tokens, links to every page."""
import streamlit as st

import ui
from ui.registry import HOME

choice = ui.setup_page(HOME)
st.title("Glassbox")
st.markdown("Glassbox lets you look inside a small GPT language model while it reads your text: "
            "every number on every page comes straight from the model.")

with ui.error_boundary("splitting your text into tokens"):
    text = ui.text_input_area(live=True)
    ui.token_overview(text, choice)

st.subheader("Look inside")
ui.page_links()
