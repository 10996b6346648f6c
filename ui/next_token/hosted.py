"""Compare with a hosted model: a large model's next-token candidates for your text beside ours, its answer
step by step, and the same prompt sampled N times (the same prompt does not give the same output).

This module draws the section; ui.next_token.hosted_state holds what it draws from (the host's settings and the
limits, the endpoint form and the key, the rate limit, the requests and the answers kept), and its session and
widget keys are importable from here too.
"""
from __future__ import annotations

import html
import math
import re
from collections import Counter

import pandas as pd
import streamlit as st

from engine import display_bytes, sampling_stages
from engine.generation import hosted as client
from engine.generation.hosted import HostedCompletion, HostedError, HostedStep
from engine.generation.sampling_lab import RAW, top_tokens

from ..errors import error_boundary
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..text import csv_text, md, plotly_text
from ..inputs import whole_number
from .figures import distribution_figure, fmt_prob, reported_figure, spread_figure, token_label
from .hosted_state import (ANSWER, ENV, KEY, PAGE, REFUSED, SAMPLES, VIEW, ask, endpoint_form, limits,
                           sample_answers)
from .surprise import prob_colour

__all__ = ["ANSWER", "ENV", "KEY", "REFUSED", "SAMPLES", "VIEW", "hosted_section"]

TEMPERATURES = (0.0, 0.2, 0.5, 0.7, 1.0, 1.3, 1.6, 2.0)  # OpenAI accepts 0-2, Anthropic 0-1
TOPS = (1, 2, 3, 5, 8, 10, 15, 20)
SPREAD_BARS = 15  # distinct first tokens drawn; the rest are counted in "other"


def _label(token: str) -> str:
    """A hosted model's token shown as ours are (␣ a space, ↵ a line break); the figures escape it."""
    return display_bytes(token.encode("utf-8", "replace"))


def _ours(choice: ModelChoice, trace, top: int) -> None:
    """Our model's raw distribution after the whole text (T = 1, no filters: what an API's logprobs are)."""
    stages = sampling_stages(trace.logits[-1], RAW)
    tt = top_tokens(stages, top)
    labels = [token_label(choice.tokenizer, t) for t in tt.ids]
    st.plotly_chart(fitted(distribution_figure(tt, labels, title=f"Ours: {plotly_text(choice.name)}")),
                    key=PAGE.key("hosted_ours"), config=plot_config("glassbox-next-token-ours"))


def _theirs(step: HostedStep, key: str, title: str, chosen: bool = False) -> None:
    labels = [_label(c.token) for c in step.top]
    pick = next((i for i, c in enumerate(step.top) if c.token == step.token), None) if chosen else None
    st.plotly_chart(fitted(reported_figure(labels, [c.prob for c in step.top], pick, title=title)), key=key,
                    config=plot_config("glassbox-next-token-hosted"))


def _answer_html(steps: tuple[HostedStep, ...], upto: int) -> str:
    """The answer's first `upto` tokens, each coloured by its probability, the last outlined."""
    parts = ['<div class="gb-nt-text">']
    for i, s in enumerate(steps[:upto]):
        p = None if s.logprob is None else math.exp(s.logprob)
        style = "" if p is None else ' style="background:{};color:{}"'.format(*prob_colour(p))
        cls = "gb-nt-tok gb-nt-drawn" if i == upto - 1 else "gb-nt-tok"
        title = f"step {i + 1}: " + ("probability not reported" if p is None else f"probability {fmt_prob(p)}")
        parts.append(f'<span class="{cls}" title="{html.escape(title)}"{style}>'
                     f'{html.escape(display_bytes(s.token.encode("utf-8", "replace"), show_whitespace=False))}</span>')
    parts.append("</div>")
    return "".join(parts)


def _show_answer(answer: dict, choice: ModelChoice, trace) -> None:
    if "error" in answer:
        st.error(md(answer["error"]), icon=":material/cloud_off:")
        return
    done: HostedCompletion = answer["done"]
    left, right = st.columns(2, gap="large")
    with left:
        _ours(choice, trace, answer["top"])
    with right:
        _theirs(done.steps[0], PAGE.key("hosted_theirs"), f"Hosted: {plotly_text(done.model)}")
    first = done.steps[0]
    st.caption(f"Both: the {answer['top']} likeliest next tokens after your text. Hosted bars are "
               f"exp(log-probability) of the candidates {md(done.model)} reported; they hold "
               f"{fmt_prob(first.reported)}, and the other {fmt_prob(1 - first.reported)} is **not reported**: the API "
               "does not say how it is spread over the rest of its vocabulary. The two models have different "
               "tokenizers, so the same word can be one token in one and two in the other.")
    if answer["for"][0].api == "chat":
        st.caption("A chat endpoint answers your text as a message, so its first token starts a reply; a "
                   "completions endpoint continues the text as ours does.")
    st.markdown(f"**Its answer, token by token** (temperature {answer['temperature']:g}, {len(done.steps)} tokens)")
    n = len(done.steps)
    view = 1
    if n >= 2:
        if not 1 <= st.session_state.get(VIEW, 1) <= n:
            st.session_state[VIEW] = 1
        view = st.slider("Show step of the hosted answer", 1, n, key=VIEW)
    st.markdown(_answer_html(done.steps, view), unsafe_allow_html=True)
    step = done.steps[view - 1]
    rank = next((i + 1 for i, c in enumerate(step.top) if c.token == step.token), None)
    said = f"the server's #{rank} candidate" if rank else f"not among the {len(step.top)} candidates it reported"
    prob = "" if step.logprob is None else f" with probability {fmt_prob(math.exp(step.logprob))}"
    # HTML, not Markdown: the token is the server's text; escaped whole, it cannot format the page.
    st.markdown(f'<div class="gb-nt-note">Step {view} of {n}: it generated <code>{html.escape(_label(step.token))}'
                f"</code>{prob}, {said}.</div>", unsafe_allow_html=True)
    _theirs(step, PAGE.key("hosted_step"), f"Step {view}: the candidates it reported", chosen=True)


def _first(c: HostedCompletion) -> str:
    if c.steps:
        return c.steps[0].token
    m = re.match(r"\s*\S+", c.text)  # no tokens from this API: the first word stands in
    return m.group(0) if m else c.text


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _show_samples(samples: dict) -> None:
    done: list[HostedCompletion] = samples["done"]
    if samples["error"]:
        st.error(md(samples["error"]) + (f" ({len(done)} of {samples['asked']} answers came back first.)"
                                         if done else ""), icon=":material/cloud_off:")
    if not done:
        return
    by_token = all(c.steps for c in done)
    what = "first token" if by_token else "first word"
    firsts = Counter(_first(c) for c in done).most_common()
    shown = firsts[:SPREAD_BARS]
    labels = [_label(t) for t, _ in shown]
    counts = [c for _, c in shown]
    if len(firsts) > SPREAD_BARS:
        labels.append("other")
        counts.append(sum(c for _, c in firsts[SPREAD_BARS:]))
    answers = Counter(c.text for c in done).most_common()
    t = samples["temperature"]
    st.markdown(f"**{_count(len(answers), 'different answer')}** and **{_count(len(firsts), f'different {what}')}** "
                f"in {len(done)} samples of the same text at temperature {t:g}.")
    if t == 0:
        st.caption("At temperature 0 a model should pick its likeliest token every time. Hosted models often "
                   "still differ from run to run (requests batched with other people's, numbers summed in a "
                   "different order on different hardware), so even T = 0 does not promise the same answer.")
    if not by_token:
        st.caption("This API sent no tokens, so the spread is of first words.")
    left, right = st.columns([1, 1.3], gap="large")
    with left:
        st.plotly_chart(fitted(spread_figure(labels, counts, what, f"The {what} of each answer")),
                        key=PAGE.key("hosted_spread"), config=plot_config("glassbox-hosted-spread"))
    with right:
        st.dataframe(pd.DataFrame([{"answer": csv_text(a.replace("\n", "↵")), "times": n} for a, n in answers]),
                     hide_index=True, width="stretch")


def _panel(choice: ModelChoice, trace) -> None:
    st.markdown("The same mechanism runs the large models people use every day. Many hosted and local servers "
                "speak OpenAI's API and return the log-probabilities of their top candidate tokens (OpenAI, vLLM, "
                "llama.cpp's server, Ollama, ...): point this at one to see its candidates for your text beside "
                "ours, and to ask it the same thing several times.")
    lim = limits()
    target = endpoint_form()
    if target is None:
        st.info("**Off.** Nothing is sent until an endpoint is set. With one, this section shows a hosted model's "
                "likeliest next tokens after your text beside ours, its answer token by token with the "
                "candidates at each step, and N answers to the same text, which are rarely all the same. "
                "Type a base URL, a model id and your key above, or, as the host, set "
                f"`{ENV}BASE_URL`, `{ENV}MODEL` and `{ENV}API_KEY` (environment or Streamlit secrets).",
                icon=":material/cloud:")
        return
    try:
        client.check_endpoint(target.endpoint)
    except HostedError as e:
        whose = f"The host's settings ({ENV}*) are incomplete. " if target.host_key else ""
        st.error(md(whose + str(e)), icon=":material/link_off:")
        return
    prompt, ep = trace.text, target.endpoint
    c = st.columns([1, 1, 1.4])
    temps = TEMPERATURES if ep.api != "anthropic" else tuple(t for t in TEMPERATURES if t <= 1)
    temperature = c[0].select_slider("Temperature (hosted)", temps, format_func=lambda t: f"{t:g}",
                                     **PAGE.remembered("hosted_temperature", 1.0, temps))
    top = c[1].select_slider("Candidates listed", TOPS,
                             **PAGE.remembered("hosted_top", 5 if ep.api == "completions" else 10, TOPS),
                             help="How many top candidates to ask for (OpenAI's chat allows 20, its completions 5).",
                             disabled=not ep.has_logprobs)
    cont = True
    if ep.api != "completions":
        with c[2]:
            cont = st.toggle("Ask it to continue the text", help=f"Sends the instruction “{client.CONTINUE}” as a "
                             "system message, so a chat model continues your text instead of replying to it.",
                             **PAGE.remembered("hosted_continue", True))
    instruction = client.CONTINUE if cont and ep.api != "completions" else None
    st.caption(f"Limits: {lim.per_minute} requests a minute for this session, at most {lim.max_samples} samples "
               f"a click, {lim.timeout_s:g} s a request.")
    b = st.columns([1, 1, 1])
    asked = b[0].button("Ask for its next-token candidates", key=PAGE.key("hosted_ask"), type="primary",
                        disabled=not ep.has_logprobs, width="stretch", help="One request.")
    n = whole_number("Answers to sample", 1, lim.max_samples, where=b[1], label_visibility="collapsed",
                     **PAGE.remembered("hosted_n", min(5, lim.max_samples), range(1, lim.max_samples + 1)))
    sampled = b[2].button(f"Sample {n} answers", key=PAGE.key("hosted_sample"), width="stretch",
                          help=f"{n} requests with the same text at this temperature.")
    if asked or sampled:
        st.session_state.pop(REFUSED, None)
    if asked:
        ask(target, prompt, top, temperature, instruction, lim)
    if sampled:
        sample_answers(target, prompt, n, temperature, instruction, lim)
    if REFUSED in st.session_state:
        st.warning(st.session_state[REFUSED], icon=":material/hourglass:")
    if not ep.has_logprobs:
        st.info("Anthropic's Messages API does not return log-probabilities, so there are no bars of its "
                "candidates to draw. Sampling still shows how much its answers vary.", icon=":material/info:")
    answer, samples = st.session_state.get(ANSWER), st.session_state.get(SAMPLES)
    if answer and answer["for"] == (ep, prompt):
        _show_answer(answer, choice, trace)
    if samples and samples["for"] == (ep, prompt):
        st.markdown("**The same text, sampled again and again**")
        _show_samples(samples)


@st.fragment
def hosted_section(choice: ModelChoice, trace) -> None:
    """The whole section, as one fragment: its buttons rerun it alone, and a failure stays inside it."""
    with error_boundary("talking to the hosted model"):
        _panel(choice, trace)
