"""Tokens and vectors: a text becomes tokens, each token an id, each id a vector the first block receives.

Nothing on this page runs the transformer: splitting text and looking up embedding rows is all it takes, so
a new text updates the chips at tokenizer speed.
"""
import streamlit as st

import ui
from ui.tokens import PAGE, TABS, bpe, pitfalls, splitting, vectors
from ui.terms import define

choice = ui.setup_page(PAGE)
st.title("Tokens and vectors")
st.markdown("A model cannot read text. It cuts the text into **tokens**, looks up each token's **id**, and "
            "turns each id into a **vector** of numbers: that is all the first layer ever receives.")

text, show_whitespace = "", True  # what the tabs use if drawing the chips fails
with ui.error_boundary("splitting your text into tokens"):
    text = ui.text_input_area(live=True)
    show_whitespace = splitting.show_whitespace_toggle()
    enc = splitting.live_tokens(text, choice, show_whitespace)
    if enc is not None:
        splitting.show_token_table(text, enc, choice.tokenizer)

# Only the open tab runs (its on_change reruns): typing never trains BPE or draws a map nobody is looking at.
# The open tab is remembered across page changes (ui.state.remembered).
compare_tab, bpe_tab, pitfalls_tab, vectors_tab = st.tabs(TABS, **PAGE.remembered("tab", TABS[0], TABS))
with compare_tab:
    if compare_tab.open:
        with ui.error_boundary("comparing tokenizers"):
            splitting.compare_tokenizers(text, choice, show_whitespace)
with bpe_tab:
    if bpe_tab.open:
        st.markdown("Byte-pair encoding (BPE) builds a vocabulary by starting from single bytes and repeatedly "
                    "merging the pair of neighbouring tokens that occurs most often. Train one here and watch.")
        with ui.error_boundary("training BPE"):
            bpe.show_bpe()
with pitfalls_tab:
    if pitfalls_tab.open:
        with ui.error_boundary("splitting the examples"):
            pitfalls.show_pitfalls(choice)
with vectors_tab:
    if vectors_tab.open:
        mi = None
        with ui.error_boundary("drawing the input vectors"):
            st.subheader("From ids to vectors", help=define("embedding"))
            mi = vectors.show_input_vectors(text, choice)
        if mi is not None:
            with ui.error_boundary("finding nearest neighbours"):
                st.subheader("Nearest neighbours in the embedding table")
                vectors.show_neighbours(mi, choice)
            with ui.error_boundary("drawing the embedding map"):
                st.subheader("A map of the whole vocabulary")
                vectors.show_vocab_map(mi, choice)
        with ui.error_boundary("drawing the position similarities"):
            st.subheader("How alike are the positions?")
            vectors.show_position_similarity(mi, choice)
