"""Next token: the model's probabilities for the next token, every stage of turning them into a choice,
generation one token at a time, how surprised the model is by a text, including past its window, and a hosted
model's candidates beside ours (off until an endpoint is set).

Moving a sampling control touches only the cached logits of the trace (a fragment reruns, the model does not).
"""
import streamlit as st

import ui
from engine import display_token, sampling_stages
from engine.generation.sampling_lab import blame, removed_by, top_tokens
from ui.next_token import BARS, PAGE, POSITION, POSITION_TEXT, STAGE, controls, draws, generation, surprise
from ui.next_token.figures import distribution_figure, token_label
from ui.next_token.hosted import hosted_section
from ui.next_token.stages import STAGES, show_stage
from ui.plots import fitted, plot_config
from ui.state import choose, kept_key, kept_value, remembered
from ui.text import md
from ui.workshop import define

choice = ui.setup_page("Next token", "🎲")
st.html(f"<style>{surprise.CSS}{draws.CSS}</style>")
st.title("Next token: from probabilities to text")
st.markdown("At the end of every forward pass the model gives a score (a *logit*) to every token in its "
            "vocabulary. Softmax turns the scores into probabilities, sampling settings reshape them, one token "
            "is drawn and appended, and the model runs again. Everything below is computed from the running "
            "model on your text.")

trace = None
with ui.error_boundary("running the model on your text"):
    text = ui.text_input_area("Your text: the model predicts what comes after it")
    trace = ui.trace_or_stop(text, choice)
if trace is None:
    st.stop()
vocab = choice.model.config.vocab_size
block = choice.model.config.block_size


def _position_picker() -> int:
    """Which position's prediction to show: the end of the text unless the user picks an earlier one."""
    end = len(trace) - 1
    if kept_value(PAGE, POSITION_TEXT) != trace.text:
        choose(PAGE, POSITION, end)
        st.session_state[kept_key(PAGE, POSITION_TEXT)] = trace.text
    if len(trace) < 2:
        return 0
    return st.select_slider(
        "Predict the token after…", range(len(trace)), **remembered(PAGE, POSITION, end, range(len(trace))),
        format_func=lambda i: f"{i}: {md(trace.tokens[i])}" + (" (end of your text)" if i == len(trace) - 1
                                                                        else ""),
        help="The model predicts a next token at every position at once; pick an earlier one to compare its "
             "guess with what your text actually says next.")


@st.fragment
def distribution_lab() -> None:
    with ui.error_boundary("drawing the distribution"):
        _distribution_lab()


def _distribution_lab() -> None:
    tok = choice.tokenizer
    controls.preset_buttons()
    summary = st.container()
    left, right = st.columns([1, 1.7], gap="large")
    with left:
        s = controls.settings_controls(vocab)
        pos = _position_picker()
        n_bars = st.slider("Tokens listed in the charts", 5, 40, **remembered(PAGE, BARS, 15, range(5, 41)))
    logits = trace.logits[pos]  # [vocab], cached: no model run from here on
    stages = sampling_stages(logits, s)
    masks = removed_by(logits, s)
    top = top_tokens(stages, n_bars)
    labels = [token_label(tok, t) for t in top.ids]
    actual = trace.ids[pos + 1] if pos + 1 < len(trace) else None
    with summary:
        m = st.columns(4)
        m[0].metric("Can be drawn", f"{top.n_kept:,}", help=f"tokens left after the filters, of {vocab:,}")
        m[1].metric("Entropy", f"{stages.entropy_after:.2f} bits",
                    help=f"bits of choice left after the filters ({stages.entropy_before:.2f} before them)")
        best = int(stages.order[0])
        m[2].metric("Top token", md(display_token(tok, best)),  # metric values are Markdown
                    help=f"the most likely token: {float(stages.probs_after[best]):.1%} after the filters")
        m[3].metric("Filtered out", f"{float(stages.probs_before[~stages.kept].sum()):.1%}",
                    help="probability (at this temperature) taken from the removed tokens and shared out "
                         "among the kept ones")
    with right:
        if s.greedy:
            st.info("**T = 0: greedy.** The most likely token gets probability 1 and every other token 0, "
                    "so generation always picks the same token.", icon=":material/target:")
        st.plotly_chart(fitted(distribution_figure(top, labels, blame(masks, top.ids), actual=actual,
                                                   title="What the next token is drawn from")),
                        key="next_token_distribution", config=plot_config("glassbox-next-token"))
        st.caption("Bars: the probability each token is drawn with after temperature and filters, renormalised "
                   "to add up to 100% (blue: can be drawn; orange, pink, light blue or grey: removed, by the "
                   "filter named). ◇: its probability before the filters. Colours: Okabe-Ito, colour-blind safe.")
        if actual is not None:
            # HTML, not Markdown: token text may hold *, _, $ or backticks; token_label escapes it.
            st.markdown(f'<div class="gb-nt-note">In your text the next token is <code>{token_label(tok, actual)}'
                        f"</code>: the model gave it {float(stages.probs_before[actual]):.2%} at this temperature "
                        f"({float(stages.probs_after[actual]):.2%} after the filters).</div>",
                        unsafe_allow_html=True)

    st.subheader("Stage by stage")
    stage = st.segmented_control("Stage", STAGES, label_visibility="collapsed", **remembered(PAGE, STAGE, STAGES[0]),
                                 help=define("logit", "Each stage of turning the model's scores into the "
                                                      "distribution above."))
    show_stage(stage or STAGES[0], stages, masks, s, [token_label(tok, t) for t in stages.order[:n_bars].tolist()])

    st.subheader("Draw from this distribution")
    draws.draw_panel(logits, s, pos, tok)
    draws.continuations_panel(choice.model, trace.ids[:pos + 1], s, pos, tok)


@st.fragment
def generation_lab() -> None:
    with ui.error_boundary("generating"):
        generation.generation_panel(choice, text)


st.header("1 · The distribution", help=define("softmax"))
distribution_lab()
st.header("2 · Generate step by step")
generation_lab()
st.header("3 · Surprise, and where the window ends", help=define("context window"))
with ui.error_boundary("scoring your text"):
    surprise.surprise_panel(text, choice)
st.header("4 · Compare with a hosted model")
hosted_section(choice, trace)
