"""Behind every generation step: the key/value cache (engine.inspect.kv), drawn under step-by-step generation.

For the step the generation section shows, this section rebuilds the cache as generation held it and draws it:
a strip per layer and key/value head that grows by one column per step, the key and value the step appended,
the check that the cached step's logits equal a full recompute, the bytes per token beside known models' (from
their config.json numbers, engine.inspect.kv_shapes), the time per token measured here with and without the
cache, and what happens once the context is full (the window slides and the whole window runs again).

To draw step s, the positions before it are run in one pass and the step's token alone on that cache: what
the earlier positions hold does not depend on how they were split into steps, and the check on screen is that
claim, at every step the user looks at ("Check every step" replays the whole run one token at a time).
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from engine import display_token
from engine.generation.sampling_lab import Run
from engine.inspect.kv import PREFILL, Replay, Slid, Timing, model_bytes_per_token, replay, slid_view, time_per_token
from engine.inspect.kv_shapes import DEPLOYED_BYTES, KVShape, published, shape_of
from engine.model.cost import size_text

from ..errors import error_boundary
from ..lru import ByteLRU
from ..models import ModelChoice
from ..plots import fitted, plot_config
from ..server import model_work
from ..terms import define
from ..text import md
from .kv_figures import appended_figure, bytes_figure, strip_figure, timing_figure, tokens_run_figure
from .state import PAGE

VIEWS = PAGE.key("kv_views")  # session key: ByteLRU {(model key, tokens fed): Replay or Slid}
TIMINGS = PAGE.key("kv_timings")  # session key: {model key: (Timing, load average)} measured on request
CHECKED = PAGE.key("kv_checked")  # session key: (model key, tokens, Replay) of "Check every step"
WHAT = PAGE.key("kv_what")  # widget key: keys or values in the strip
TIME_TOKENS = 32  # new tokens the timing generates each way
TIME_BUDGET_S = 3.0  # the recompute (the slow one) stops after this long
CHECK_BUDGET = 2e8  # parameters x steps that "Check every step" replays one token at a time (the rest in one pass)


def fed(run: Run, step: int) -> list[int]:
    """The tokens generation had given the model when it drew step `step` (step 0 or 1: the prompt)."""
    if step <= PREFILL:
        return list(run.prompt_ids)
    return run.ids[:len(run.prompt_ids) + step - 1]


def shown_step(run: Run, chosen: int | None) -> int:
    """The step the generation section shows (its slider's value, else the last), 0 before the first."""
    n = len(run.steps)
    return chosen if isinstance(chosen, int) and 1 <= chosen <= n else n


def _views() -> ByteLRU:
    return st.session_state.setdefault(VIEWS, ByteLRU(max_entries=6))


def cache_at(choice: ModelChoice, run: Run, step: int) -> Replay | Slid:
    """What the cache held at `step`: a Replay whose last position is the step's own (run alone on the cache
    of the others; the prompt's prefill for step 0 or 1), or a Slid when the window had slid."""
    tokens = fed(run, step)
    block = choice.model.config.block_size
    key = (choice.key, tuple(tokens))
    hit = _views().get(key)
    if hit is None:
        with model_work():
            if len(tokens) > block and step > PREFILL:
                hit = slid_view(choice.model, tokens)
            elif step <= PREFILL:  # the prefill: nothing cached before it (a prompt past the window: its end)
                window = tokens[-block:]
                hit = replay(choice.model, window, len(window))
            else:
                hit = replay(choice.model, tokens, len(run.prompt_ids), start=len(tokens) - 1)
        _views().put(key, hit)
    return hit


def comparison(choice: ModelChoice) -> list[tuple[KVShape, int]]:
    """(shape, bytes per number) of the model in use as it runs here, then the published models at 16 bits."""
    here = next(choice.model.parameters()).element_size()
    return [(shape_of(choice.name, choice.model.config), here)] + [(s, DEPLOYED_BYTES) for s in published()]


def comparison_frame(rows: list[tuple[KVShape, int]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "model": s.name, "layers": s.n_layer, "query heads": s.n_head, "key/value heads": s.n_kv_head,
        "head size": s.d_head, "bytes per number": b, "per token": size_text(s.per_token(b)),
        "per token (bytes)": s.per_token(b), "context (tokens)": s.context, "full context": size_text(s.full(b)),
        "source": s.source} for s, b in rows])


def kv_section(choice: ModelChoice, run: Run, chosen: int | None) -> None:
    """The whole section, for the step the generation section shows."""
    st.subheader("Behind every step: the key/value cache", help=define("kv cache"))
    with error_boundary("drawing the key/value cache"):
        _section(choice, run, shown_step(run, chosen))


def _section(choice: ModelChoice, run: Run, step: int) -> None:
    cfg, tok = choice.model.config, choice.tokenizer
    n_prompt, block = len(run.prompt_ids), cfg.block_size
    state = cache_at(choice, run, step)
    slid = isinstance(state, Slid)
    ids = list(state.window if slid else state.ids)
    n_pos = len(ids)
    per_token = model_bytes_per_token(choice.model)
    if step == 0:
        st.markdown(f"Attention at a new position needs the key and the value of every earlier token, in every "
                    f"layer. Those never change, so generation keeps them: **step 1** will run your text's "
                    f"{n_pos:,} tokens in one pass and cache {n_pos:,} positions per layer; every later step runs "
                    "the model on **one** new token and appends one column. Press **Next token** above to watch "
                    "the strips grow.")
    elif slid:
        st.markdown(f"**Step {step}**: the sequence is longer than the model's context of {block:,} tokens. The "
                    f"window slid by one, which gives every token a new position, so nothing cached is valid any "
                    f"more: the model ran all {n_pos:,} tokens of the window again (outlined: all of them).")
    else:
        ran = n_pos if step == PREFILL else 1
        st.markdown(f"**Step {step}** ran the model on {ran:,} token{'s' if ran > 1 else ''} and appended "
                    f"{'them' if ran > 1 else 'its key and value'} (outlined) in each of the {cfg.n_layer} layers "
                    f"to the {n_pos - ran:,} positions already cached: {n_pos:,} now.")
    what = st.radio("Strip", ["keys", "values"], horizontal=True, key=WHAT, label_visibility="collapsed")
    norms = state.key_norms if what == "keys" else state.value_norms
    tokens = [display_token(tok, i) for i in ids]
    steps = [step] * n_pos if slid else [state.step_of(p) for p in range(n_pos)]
    newest = (0, n_pos) if slid or step <= PREFILL else (n_pos - 1, n_pos)
    st.plotly_chart(fitted(strip_figure(norms, tokens, steps, newest, what,
                                        f"The cache at step {max(step, 1)}: one row per layer and head")),
                    key=PAGE.key("kv_strip"), config=plot_config("glassbox-kv-cache"))
    st.caption(f"One row per layer and key/value head ({cfg.n_layer} × {cfg.n_kv_head}), one column per cached "
               f"position; colour: viridis, the length of the stored {what[:-1]} (yellow = long). Hover a cell for "
               f"its token and the step that appended it. Drag **Show step** above to watch the strips grow.")
    if not slid:
        _appended_and_proof(choice, state, step)
    else:
        _stale(state)
    _bytes(choice, n_pos, per_token, state)
    _timing(choice, run)
    st.markdown("**At the context limit**")
    if run.steps:
        st.plotly_chart(fitted(tokens_run_figure(n_prompt, len(run.steps), block, step,
                                                 "Tokens the model ran on at each step")),
                        key=PAGE.key("kv_runs"), config=plot_config("glassbox-kv-tokens-run"))
    room = block - min(n_prompt, block)
    st.caption(f"Step 1 runs the prompt, then each step one token, until the sequence fills the context of "
               f"{block:,} tokens ({room:,} more after your text). From then on each new token slides the window: "
               "every token moves one position, its cached keys and values (computed at the old positions, and "
               "from the second layer on holding what the dropped token added) no longer fit, and the whole window "
               f"runs again, {block:,} tokens for one. A model served for long chats limits or compresses the cache "
               "instead (a sliding window of keys, attention sinks, summaries); this one recomputes.")


def _appended_and_proof(choice: ModelChoice, state: Replay, step: int) -> None:
    left, right = st.columns([1.3, 1], gap="large")
    last = len(state.ids) - 1
    with left:
        k, v = state.last  # a step's new key and value; the prefill's last position's
        st.plotly_chart(fitted(appended_figure(k, v, f"What step {max(step, 1)} appended at position {last}")),
                        key=PAGE.key("kv_appended"), config=plot_config("glassbox-kv-appended"))
        st.caption("The new key and value in every layer and key/value head (colour: blue positive, red negative, "
                   "white zero). Later steps read them and never compute them again.")
    with right:
        st.markdown("**Is the cache exact?**")
        if not state.cached_diff:
            st.markdown("Step 1 runs the whole prompt at once: nothing was cached before it. From step 2 on, each "
                        "step's logits on the cache are checked here against a full recompute.")
        else:
            diff, same = state.cached_diff[-1], state.same_top[-1]
            st.metric("Largest difference in any logit", f"{diff:.2e}",
                      help="max |logits on the cache − logits of one full forward pass over every token so far|, "
                           f"over all {choice.model.config.vocab_size:,} tokens of the vocabulary")
            st.markdown(f"Step {step} on the cache against a full recompute of all {len(state.ids):,} tokens: the "
                        f"{choice.model.config.vocab_size:,} logits differ by at most **{diff:.2e}** (float rounding: "
                        f"the two sum the same numbers in another order), and the most likely next token is "
                        f"{'the same' if same else '**not** the same'}.")
        _check_every_step(choice, state)


def _check_every_step(choice: ModelChoice, state: Replay) -> None:
    """Replay the whole sequence one token at a time, as generation built it, and check every step."""
    ids = state.ids
    if len(ids) <= state.n_prompt:
        return
    key = (choice.key, ids)
    done = st.session_state.get(CHECKED)
    if st.button("Check every step", key=PAGE.key("kv_check"), icon=":material/fact_check:",
                 help="Build the cache again exactly as generation did (the prompt in one pass, then one token at a "
                      "time) and compare every step's logits with the full recompute."):
        steps = max(8, int(CHECK_BUDGET // max(1, choice.n_params)))
        with model_work():
            full = replay(choice.model, list(ids), state.n_prompt,
                          start=max(state.n_prompt, len(ids) - steps))
        done = (choice.key, ids, full)
        st.session_state[CHECKED] = done
    if done and done[:2] == key:
        full = done[2]
        worst = max(full.cached_diff)
        older = full.start - full.n_prompt
        st.caption(f"Every one of the last {len(full.cached_diff):,} steps, replayed one token at a time: largest "
                   f"difference {worst:.2e}, the same top token at {sum(full.same_top):,} of them."
                   + (f" The {older:,} steps before them ran in one pass with the prompt (to bound the work on a "
                      "large model)." if older else ""))


def _stale(state: Slid) -> None:
    true_p, stale_p = state.stale_probs
    st.markdown("**Why not keep the cache and drop its oldest column?**")
    st.markdown(f"Because it would be wrong. Keeping the previous window's cache without its oldest entry and running "
                f"only the new token gives logits that differ from the true window's by up to "
                f"**{state.stale_diff:.3g}**; the true most likely token's probability would be {stale_p:.1%} "
                f"instead of {true_p:.1%}, and the top token "
                f"{'stays the same here' if state.stale_same_top else '**changes**'}. Every kept key sits at its old "
                "position, and from the second layer on still carries what the dropped token added to it.")


def _bytes(choice: ModelChoice, n_pos: int, per_token: int, state: Replay | Slid) -> None:
    cfg = choice.model.config
    st.markdown("**What the cache costs**")
    here = next(choice.model.parameters()).element_size()
    real = getattr(state, "bytes", None)
    c = st.columns(3)
    c[0].metric("Per token", size_text(per_token),
                help=f"2 (a key and a value) × {cfg.n_layer} layers × {cfg.n_kv_head} key/value heads × "
                     f"{cfg.d_head} numbers × {here} bytes = {per_token:,} bytes")
    c[1].metric("Cached now", size_text(per_token * n_pos), help=f"{n_pos:,} positions × {per_token:,} bytes")
    c[2].metric("Full context", size_text(per_token * cfg.block_size),
                help=f"{cfg.block_size:,} positions: the most one sequence ever caches here")
    if real is not None:
        st.caption(f"2 × {cfg.n_layer} layers × {cfg.n_kv_head} key/value heads × {cfg.d_head} numbers × {here} "
                   f"bytes = {per_token:,} bytes per token; × {n_pos:,} positions = {per_token * n_pos:,} bytes. The "
                   f"cache's tensors hold {real:,} bytes.")
    rows = comparison(choice)
    frame = comparison_frame(rows)
    names = [f"{s.name} (in use, {b * 8}-bit)" if i == 0 else s.name for i, (s, b) in enumerate(rows)]
    notes = [f"{s.n_layer} layers × {s.n_kv_head} key/value heads × {s.d_head} × {b} bytes" for s, b in rows]
    st.plotly_chart(fitted(bytes_figure(names, [s.per_token(b) for s, b in rows], notes,
                                        "Bytes per token of context, model by model")),
                    key=PAGE.key("kv_bytes"), config=plot_config("glassbox-kv-bytes"))
    st.dataframe(frame.drop(columns=["per token (bytes)"]), hide_index=True, key=PAGE.key("kv_table"))
    old, new = (next(s for s in published() if s.name == n) for n in ("Llama 2 7B", "Llama 3.1 8B"))
    st.markdown(
        f"**Why grouped-query attention exists.** {md(old.name)} gives each of its {old.n_head} query heads its own "
        f"keys and values: {size_text(old.per_token())} per token at 16 bits, {size_text(old.per_token() * 8192)} for "
        f"one 8,192-token conversation. {md(new.name)} has the same {new.n_layer} layers and {new.n_head} query "
        f"heads but lets every {new.groups} of them share one set ({new.n_kv_head} key/value heads): "
        f"{size_text(new.per_token())} per token, {old.per_token() // new.per_token()} times less, which is what "
        f"makes its {new.context:,}-token context ({size_text(new.full())} per sequence) servable at all. The "
        "attention pattern is still computed per query head; only what is stored is shared.")
    st.caption("Published models' numbers are read from their config.json (the table's source column), through the "
               "same family table that reads every model Glassbox loads; they are served at 16 bits (bf16 or fp16), "
               "this model at the precision it runs in here.")


def _timing(choice: ModelChoice, run: Run) -> None:
    st.markdown("**Time per token, measured here**")
    timings: dict = st.session_state.setdefault(TIMINGS, {})
    block = choice.model.config.block_size
    start = list(run.prompt_ids)[-max(1, block - TIME_TOKENS):]
    if st.button(f"Time {TIME_TOKENS} tokens both ways", key=PAGE.key("kv_time"), icon=":material/timer:",
                 help="Generate the same greedy tokens after your text on the cache, then by a full forward pass "
                      "over the whole context for each token, on this server, now."):
        with st.spinner("Timing…"), model_work():
            timings[choice.key] = (time_per_token(choice.model, start, TIME_TOKENS, TIME_BUDGET_S), _load())
    hit = timings.get(choice.key)
    if hit is None:
        st.caption("Press the button to measure on this server (a few seconds at most).")
        return
    t, load = hit
    st.plotly_chart(fitted(timing_figure(t, "Milliseconds per new token")), key=PAGE.key("kv_timing"),
                    config=plot_config("glassbox-kv-timing"))
    n = min(len(t.cached), len(t.recomputed))
    cached, full = sum(t.cached[1:n]) / max(1, n - 1), sum(t.recomputed[1:n]) / max(1, n - 1)
    st.caption(f"Measured on this server ({_load_words(load)}): after the first token (a prefill of "
               f"{t.start_len:,} tokens either way), {1000 * cached:.2f} ms per token on the cache and "
               f"{1000 * full:.2f} ms recomputing the whole context, {full / cached:.1f}× as long, over "
               f"{n - 1:,} tokens. The recompute grows with the context; the cached step reads the cache, so it "
               "grows far more slowly. Only the model's work is timed.")


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # not every system reports a load average
        return None


def _load_words(load: float | None) -> str:
    return "load average unknown" if load is None else f"load average {load:.1f} on {os.cpu_count() or 1} cores"


def fact_values(choice: ModelChoice, run: Run, chosen: int | None) -> dict[str, object]:
    """What the tour quotes of this section, as it draws it."""
    step = shown_step(run, chosen)
    state = cache_at(choice, run, step)
    n_pos = len(state.window if isinstance(state, Slid) else state.ids)
    cfg = choice.model.config
    per_token = model_bytes_per_token(choice.model)
    shapes = {s.name: s for s in published()}
    gpt2, old, new = shapes["GPT-2 small"], shapes["Llama 2 7B"], shapes["Llama 3.1 8B"]
    return {"per_token": size_text(per_token), "positions": f"{n_pos:,}", "cached": size_text(per_token * n_pos),
            "layers": cfg.n_layer, "kv_heads": cfg.n_kv_head, "heads": cfg.n_head, "gpt2": size_text(gpt2.per_token()),
            "llama2": size_text(old.per_token()), "llama3": size_text(new.per_token()), "groups": new.groups,
            "llama3_kv": new.n_kv_head}


__all__ = ["Timing", "cache_at", "comparison", "comparison_frame", "fact_values", "fed", "kv_section", "shown_step"]
