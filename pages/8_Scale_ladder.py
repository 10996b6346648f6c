"""Scale ladder: the same prompt's next token and logit lens on models of every size, side by side: the model you
trained, the built-in one, the server's (GPT-2), and on NDIF GPT-2 and Llama-3.1-8B, 70B and 405B."""
import streamlit as st

import ui
from ui.plots import fitted, plot_config
from ui.scale import PAGE, figures, ladder
from ui.terms import define

ui.setup_page(PAGE)
st.title("Scale ladder", help=define("logit lens"))
st.markdown("The same text, the same questions, models of every size: what each predicts next, how sure it is, "
            "and from which layer on it already knows its answer. Every number comes from the model that gave it; "
            "the models on NDIF answer from NDIF, one request each.")
text = ui.text_input_area("Your text: each model predicts what comes after it")
values = ladder.rungs()
chosen = st.multiselect("Models on the ladder", values, default=ladder.default_rungs(values), key=PAGE.key("rungs"),
                        format_func=lambda v: f"{v.removeprefix('ndif:')} ({ladder.where(v)})")
answers = []
for value in chosen:
    with ui.error_boundary(f"asking {value.removeprefix('ndif:')}"):
        found = ladder.answer(value, text)
        if found is not None:
            answers.append(found)
if answers:
    st.dataframe(figures.rungs_table(answers), hide_index=True, key=PAGE.key("table"))
    big, small = max(a.n_params for a in answers), min(a.n_params for a in answers)
    st.caption((f"The largest model here has {big / small:,.0f} times the parameters of the smallest. " if big > small
                else "") + "Time: one forward pass on this server for the models here, measured now; for NDIF's, "
               "the whole job (NDIF's queue and the network included). NDIF's values come back in bf16: they show "
               "at most 3 significant digits. *Answer from*: the layer after which the logit lens's top token is "
               "the model's final answer at every later layer.")
    st.plotly_chart(fitted(figures.settle_figure(answers)), key=PAGE.key("settle"),
                    config=plot_config("scale-ladder"))
    st.caption("The logit lens: the model's own final norm and unembedding applied after each layer, at the last "
               "token; each line is the probability that model gives its own final answer at that depth. A line "
               "that rises early settles on its answer in its first layers.")
    for a, b, diff in ladder.twins(answers):
        same = "pick the same next token" if a.top_ids[:1] == b.top_ids[:1] else "pick different next tokens"
        st.info(f"{a.name} here (float32) and on NDIF (bf16) {same}; their probabilities for NDIF's top "
                f"{len(b.top)} differ by at most {diff:.2g} (bf16 keeps about 3 significant digits, and NDIF "
                "computes in it throughout).", icon=":material/balance:")
    for a in answers:
        with st.expander(f"{a.name}: the lens layer by layer"):
            st.dataframe(figures.lens_table(a), hide_index=True)
