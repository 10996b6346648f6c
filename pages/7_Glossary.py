"""Glossary and key takeaways: every term the pages use in plain words, and the explainer's takeaways, each
linked to the view that shows it on the running model (the words are ui/glossary.toml)."""
import streamlit as st

import ui
from ui.registry import GLOSSARY
from ui.workshop import glossary

ui.setup_page(GLOSSARY)
st.title("Key takeaways and glossary")
st.markdown("What to take home from a look inside a small GPT, and every term its pages use, each in plain "
            "words. Every link opens the view that shows it on the running model.")

st.header("Key takeaways")
with ui.error_boundary("listing the takeaways"):
    glossary.show_takeaways()

st.header("Glossary")
st.caption("The same definitions show when you hover a ⓘ next to a term on the other pages.")
with ui.error_boundary("listing the glossary"):
    glossary.show_terms()
