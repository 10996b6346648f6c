"""Next token: the model's probabilities for the next token, every stage of turning them into a choice,
generation one token at a time, how surprised the model is by a text, including past its window, and a hosted
model's candidates beside ours (off until an endpoint is set).

Moving a sampling control touches only the cached logits of the trace (a fragment reruns, the model does not).
"""
import streamlit as st

import ui
from ui.next_token import CSS, PAGE, lab, remote, surprise
from ui.next_token.hosted import hosted_section
from ui.terms import define

choice = ui.setup_page(PAGE)
st.html(f"<style>{CSS}</style>")
st.title("Next token: from probabilities to text")
st.markdown("At the end of every forward pass the model gives a score (a *logit*) to every token in its "
            "vocabulary. Softmax turns the scores into probabilities, sampling settings reshape them, one token "
            "is drawn and appended, and the model runs again. Everything below is computed from the running "
            "model on your text.")

if choice.remote:  # runs on NDIF: the distribution at one position, from its logits
    st.header("1 · The distribution", help=define("softmax"))
    with ui.error_boundary("asking NDIF for the distribution"):
        remote.remote_view(ui.text_input_area("Your text: the model predicts what comes after it"), choice)
    st.stop()
trace = None
with ui.error_boundary("running the model on your text"):
    text = ui.text_input_area("Your text: the model predicts what comes after it")
    trace = ui.trace_or_stop(text, choice)
if trace is None:
    st.stop()

st.header("1 · The distribution", help=define("softmax"))
lab.distribution_lab(trace, choice)
st.header("2 · Generate step by step")
lab.generation_lab(choice, text)
st.header("3 · Surprise, and where the window ends", help=define("context window"))
with ui.error_boundary("scoring your text"):
    surprise.surprise_panel(text, choice)
st.header("4 · Compare with a hosted model")
hosted_section(choice, trace)
