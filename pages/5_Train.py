"""Train a transformer and watch it learn: pick a text and a model shape, train in the background while the
loss falls and samples turn from noise into sentences, scrub through the checkpoints, compare before and
after, then look inside your own model on every other page.
"""
import streamlit as st

import ui
from engine.train.corpus import CorpusError
from engine.train.runspec import make_spec
from ui.text import md
from ui.train import PAGE, circuits, lapse
from ui.train import run as train_run
from ui.train import setup

choice = ui.setup_page(PAGE)
st.title("Train a transformer and watch it learn")
st.markdown("Training adjusts every parameter of the model, a little at each step, by backpropagation, so that "
            "the next token of real text gets more probable. Train a small model here, watch it go from noise to "
            "words to sentences, then look inside **the model you trained** on every page of Glassbox.")

run = train_run.current_run()
if run is not None and train_run.ensure_registered(run):
    st.rerun()  # a run that finished while this page was not open: redraw so the sidebar lists "my model"
busy = run is not None and run.status().active

st.header("1. The text to learn from")
with ui.error_boundary("reading the training text"):
    corpus = setup.corpus_picker()

st.header("2. The model and its training")
with ui.error_boundary("setting up the model"):
    base = setup.base_model_picker(choice)
    settings = setup.settings_form(base)
    data = problem = spec = None
    if corpus is not None:
        try:
            data = setup.prepared_data(corpus, settings.vocab, base)
            data.check(settings.block_size)
        except CorpusError as e:
            problem = str(e)
    if settings.n_embd % settings.n_head:
        problem = (f"The width ({settings.n_embd}) must divide evenly between the {settings.n_head} heads: "
                   "choose another width or number of heads.")
    if data is not None and problem is None:
        cfg = base.model.config if base is not None else settings.model_config(len(data.tokenizer))
        spec = make_spec(cfg, settings.max_steps, settings.batch_size, settings.learning_rate)
        problem = setup.cost_panel(spec, data, fine_tune=base is not None)
    if problem:
        st.error(md(problem), icon=":material/block:")  # may quote a file name or book title
    elif corpus is None:
        st.caption("Choose the text to learn from (above) to see the model's size and the time it will take.")
    train_run.show_notice()
    if st.button("Start training", type="primary", icon=":material/play_arrow:", key=PAGE.key("start"),
                 disabled=busy or spec is None or problem is not None,
                 help="A run is already training: stop it first." if busy else None):
        train_run.start_run(spec, data, init=base.model if base is not None else None)
        st.rerun()

if run is None or run.model is None:
    st.subheader("What to watch for: an induction head forming")
    with ui.error_boundary("measuring the built-in model's heads"):
        circuits.preview()

if run is not None:
    st.header("3. Watch it learn")
    with ui.error_boundary("showing the training run"):
        train_run.live_view(run)
    if not busy and run.model is not None:
        st.header("4. Time-lapse: scrub through training")
        with ui.error_boundary("drawing the time-lapse"):
            lapse.timelapse(run)
        st.header("5. Before and after")
        with ui.error_boundary("comparing the untrained and the trained model"):
            lapse.before_after(run)
        st.header("6. Use your model")
        with ui.error_boundary("preparing your model for download"):
            train_run.use_model(run)

with st.expander("Load a model you trained before (.zip)"):
    with ui.error_boundary("loading your zip"):
        train_run.upload_model()
