"""Pre-training vs RLHF: how the built-in model was pre-trained, then preference tuning done for real: the
user marks which completions they prefer, and DPO tunes a copy of the running model on them in the background.
"""
import streamlit as st

import ui
from ui.rlhf import PAGE, base_vs_instruct, notes, pairs, pretraining, tuning
from ui.train import PAGE as TRAIN
from ui.text import md
from ui.terms import define

choice = ui.setup_page(PAGE)
st.title("Pre-training vs RLHF", help=define("rlhf"))
st.markdown(notes.INTRO)
st.markdown(notes.STAGES)

st.header("1. Pre-training: knowledge from text")
with ui.error_boundary("showing how the model was pre-trained"):
    pretraining.pretraining_section(choice)
ui.link_to(TRAIN, "Pre-train a model yourself on the Train page, and watch samples at every checkpoint as it "
           "learns.")

st.header("2. Preferences you give")
st.markdown(f"Tuning starts from **{md(choice.name)}**, the model chosen in the sidebar; the completions "
            "below are its own.")
with ui.error_boundary("setting up the built-in preference sets"):
    pairs.builtin_sets(choice)
st.subheader("Or mark your own")
with ui.error_boundary("writing completions"):
    pairs.your_pairs(choice)
st.subheader("Your pairs")
with ui.error_boundary("listing your pairs"):
    pairs.pair_table()

st.header("3. Tuning with DPO", help=define("dpo"))
st.markdown(notes.DPO)
run = tuning.current_run()
if run is not None and tuning.ensure_registered(run):
    st.rerun()  # a run that finished while this page was not open: redraw so the sidebar lists it
busy = run is not None and run.status().active
with ui.error_boundary("setting up the tuning run"):
    cfg = tuning.settings()
    tuning.show_notice()
    have = len(pairs.pairs())
    if tuning.tunable(choice):
        st.info(tuning.tunable(choice), icon=":material/info:")
    if st.button("Tune a copy of the model on these pairs", type="primary", icon=":material/tune:",
                 key=PAGE.key("start"), disabled=busy or have == 0 or bool(tuning.tunable(choice)),
                 help="A run is already tuning: stop it first." if busy else
                 "Add some pairs first." if have == 0 else tuning.tunable(choice)):
        tuning.start(choice, cfg)
        st.rerun()

if run is not None:
    with ui.error_boundary("showing the tuning run"):
        tuning.live_view(run)
    if not busy and run.model is not None and run.status().step:
        st.header("4. What changed")
        with ui.error_boundary("comparing the model before and after"):
            tuning.what_changed(run)
        st.header("5. The black box, honestly")
        with ui.error_boundary("measuring which parameters moved"):
            tuning.black_box(run)
        with ui.error_boundary("preparing the tuned model"):
            tuning.use_model(run)

st.header("Base vs instruct: what tuning did to a real model", help=define("instruct model"))
with ui.error_boundary("comparing the base and the instruct model"):
    base_vs_instruct.base_vs_instruct_section(run)

st.divider()
st.markdown(notes.REAL_RLHF)
