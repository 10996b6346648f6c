"""Base vs instruct: what preference tuning did to a real model, on the Pre-training vs RLHF page.

With a pair on the server (a base model and its instruct model: SmolLM2-135M and SmolLM2-135M-Instruct,
Qwen2.5-0.5B and -Instruct, as server folders or Hub downloads), the same prompt goes through both: the chat
template shown as the tokens the instruct model reads (engine.model.chat), the next-token distributions side
by side with the KL at every position, where along the layers their logit-lens predictions part, and
completions from the same seeds (engine.inspect.model_pair). Without a pair, the section says which to add and
how, and runs the same comparison on the built-in model before and after this session's DPO run.

Both models are loaded only when "Compare" is pressed (each through the server's shared, budgeted set of
models), and what is drawn is kept: process-wide for server pairs, in the session for its tuned model.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from engine import display_token, encode
from engine.inspect.model_pair import PairComparison, compare_pair, completions
from engine.model.chat import (ChatPrompt, ChatTemplateError, chat_prompt, has_template, load_checked_tokenizer,
                               special_ids)
from engine.model.cost import config_cost, size_text
from engine.model.tokenizer import start_id
from engine.settings import current as current_settings

from ..errors import Refused
from ..lru import ByteLRU
from ..models import SHARED, ServerModel, server_models
from ..plots import fitted, plot_config
from ..server import model_work
from ..terms import define
from ..text import md, plotly_text
from .figures import before_after_figure
from .state import PAGE, remembered

SUGGESTED = ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct")
INSTRUCT_SUFFIXES = ("-instruct", "-chat", "-it")
SEEDS = (11, 12)
N_TOKENS = 32
MAX_PROMPT_CHARS = 500
DEFAULT_PROMPT = "What should I pack for a day at the beach?"
RESULTS: ByteLRU[tuple, dict] = ByteLRU(max_entries=16)  # server pairs: (pair ids, token ids) -> drawn data
_SESSION = PAGE.key("bvi_results")  # session key: ByteLRU of this session's before/after-DPO comparisons
CSS = (".gb-bvi { font-family: ui-monospace, Menlo, Consolas, monospace; line-height: 2.2; white-space: pre-wrap; }"
       " .gb-bvi span { border: 1px solid #999; border-radius: 3px; padding: 0 0.15em; margin-right: 2px; }"
       " .gb-bvi .sp { border: 2px dashed #D55E00; background: #fbe3d4; font-weight: 700; }")


@dataclass(frozen=True)
class Pair:
    base: ServerModel
    instruct: ServerModel

    @property
    def label(self) -> str:
        return f"{self.base.name} and {self.instruct.name}"


def find_pairs(models: list[ServerModel] | None = None) -> list[Pair]:
    """Every base model on the server whose instruct model is there too (same name plus -Instruct, -Chat, -it)."""
    models = [m for m in (server_models() if models is None else models) if m.facts is not None]
    by_name = {m.name.lower(): m for m in models}
    pairs = []
    for m in models:
        for suffix in INSTRUCT_SUFFIXES:
            if m.name.lower().endswith(suffix) and (base := by_name.get(m.name.lower()[:-len(suffix)])):
                pairs.append(Pair(base, m))
    return pairs


def prompt_ids(tokenizer, prompt: str, template: bool) -> tuple[list[int], ChatPrompt | None]:
    """The token ids both models read: the instruct model's chat template around the prompt, or the prompt after
    the start marker as a base model reads text."""
    if template:
        chat = chat_prompt(tokenizer, prompt)
        return list(chat.ids), chat
    return [start_id(tokenizer), *encode(tokenizer, prompt).ids], None


def template_html(tokens: list[str], ids: list[int], special: list[bool]) -> str:
    """The tokens as chips; special tokens (markers nobody types) outlined and named as they are written."""
    out = ['<div class="gb-bvi">']
    for i, (tok, token_id, sp) in enumerate(zip(tokens, ids, special)):
        title = html.escape(f"position {i}, id {token_id}" + (", a special token" if sp else ""), quote=True)
        shown = html.escape(tok.replace("\n", "↵"))
        out.append(f'<span class="{"sp" if sp else ""}" title="{title}">{shown}</span>' + ("<br>" if "\n" in tok
                                                                                         else ""))
    out.append("</div>")
    return "".join(out)


def _check_budget(models: list, n_pos: int) -> None:
    for m in models:
        need = config_cost(m.config, n_pos=n_pos).bytes
        budget = current_settings().trace_budget_bytes
        if need > budget:
            raise Refused(f"Looking inside both models at {n_pos:,} tokens would hold {size_text(need)} each, more "
                          f"than the {size_text(budget)} this server allows per trace: shorten the prompt.")
        if n_pos > m.config.block_size:
            raise Refused(f"The prompt is {n_pos:,} tokens, more than the {m.config.block_size:,} the models read.")


def compute(model_a, model_b, tokenizer, ids: list[int]) -> dict:
    """Everything the section draws for one prompt (small: kept after the models are let go)."""
    _check_budget([model_a, model_b], len(ids))
    stops = special_ids(tokenizer) | {t for t in (getattr(tokenizer, "eos_token_id", None),) if t is not None}
    with model_work():
        cmp = compare_pair(model_a, model_b, tokenizer, ids)
        texts = [completions(m, ids, SEEDS, N_TOKENS, stops) for m in (model_a, model_b)]
    return {"cmp": cmp, "texts": [[tokenizer.decode(t) for t in texts[0]], [tokenizer.decode(t) for t in texts[1]]],
            "tokens": [display_token(tokenizer, i) for i in ids]}


def kl_figure(cmp: PairComparison, tokens: list[str], special: list[bool], names: tuple[str, str]) -> go.Figure:
    x = list(range(cmp.n_pos))
    colours = ["#D55E00" if sp else "#0072B2" for sp in special]
    hover = [f"after {plotly_text(tokens[i])} (position {i}): KL {float(cmp.kl[i]):.3f} nats" for i in x]
    fig = go.Figure(go.Bar(x=x, y=cmp.kl.tolist(), marker_color=colours, hovertext=hover, hoverinfo="text"))
    fig.update_layout(title=dict(text=f"How far {plotly_text(names[1])}'s next token moved from "
                                      f"{plotly_text(names[0])}'s, at every position", font=dict(size=16)),
                      height=320, font=dict(size=14), plot_bgcolor="white", showlegend=False,
                      margin=dict(l=10, r=20, t=60, b=10),
                      xaxis=dict(title="position (orange: a special token of the template)", gridcolor="#e5e5e5"),
                      yaxis=dict(title="KL (nats)", gridcolor="#e5e5e5", rangemode="tozero"))
    return fig


def lens_figure(cmp: PairComparison, tokens: list[str]) -> go.Figure:
    """[stage x position]: KL between the two models' logit-lens predictions; diamonds where they part for good."""
    z = cmp.lens_kl.numpy()
    hover = [[f"{cmp.stages[s]}, after {plotly_text(tokens[p])} (position {p}): KL {z[s, p]:.3f}" for p in
              range(cmp.n_pos)] for s in range(len(cmp.stages))]
    fig = go.Figure(go.Heatmap(z=z, colorscale="Viridis", zmin=0, hovertext=hover, hoverinfo="text",
                               colorbar=dict(title=dict(text="KL", font=dict(size=13)), thickness=12)))
    parts = [(p, s) for p, s in enumerate(cmp.parting) if s is not None]
    if parts:
        fig.add_scatter(x=[p for p, _ in parts], y=[s for _, s in parts], mode="markers", showlegend=False,
                        marker=dict(symbol="diamond", size=9, color="white", line=dict(color="#000", width=1.5)),
                        hovertemplate="position %{x}: apart from here on<extra></extra>")
    fig.update_layout(title=dict(text="Where their logit-lens predictions part", font=dict(size=16)),
                      height=min(440, 140 + 16 * len(cmp.stages)), font=dict(size=14), plot_bgcolor="white",
                      margin=dict(l=10, r=20, t=60, b=10), xaxis=dict(title="position"),
                      yaxis=dict(tickvals=list(range(len(cmp.stages))), ticktext=list(cmp.stages),
                                 autorange="reversed"))
    return fig


def show(data: dict, names: tuple[str, str], special: list[bool], tokenizer, key: str) -> None:
    """Draw one comparison: distributions at a chosen position, KL per position, the lens, completions."""
    cmp: PairComparison = data["cmp"]
    tokens = data["tokens"]
    last = cmp.n_pos - 1
    pos = st.select_slider("Next token after position", range(cmp.n_pos), value=last, key=PAGE.key(f"{key}_pos"),
                           format_func=lambda p: f"{p}: {md(tokens[p])}" + (" (the end)" if p == last else ""))
    seen: dict[int, int] = {}
    for j, t in enumerate(cmp.top_ids[pos].tolist()):
        seen.setdefault(t, j)
    cols = list(seen.values())[:10]
    labels = [display_token(tokenizer, int(cmp.top_ids[pos, j])) for j in cols]
    st.plotly_chart(fitted(before_after_figure(labels, [float(cmp.probs_a[pos, j]) for j in cols],
                                               [float(cmp.probs_b[pos, j]) for j in cols],
                                               f"The next token after position {pos}: {names[0]} and {names[1]}")),
                    key=PAGE.key(f"{key}_dist"), config=plot_config("glassbox-base-vs-instruct"))
    st.caption(f"Grey: **{md(names[0])}**. Blue: **{md(names[1])}**. The most likely tokens of either are listed. "
               f"KL at this position: {float(cmp.kl[pos]):.3f} nats.")
    st.plotly_chart(fitted(kl_figure(cmp, tokens, special, names)), key=PAGE.key(f"{key}_kl"),
                    config=plot_config("glassbox-base-vs-instruct-kl"))
    st.plotly_chart(fitted(lens_figure(cmp, tokens)), key=PAGE.key(f"{key}_lens"),
                    config=plot_config("glassbox-base-vs-instruct-lens"))
    stage = cmp.parting[last]
    end_a, end_b = (md(display_token(tokenizer, int(t[-1, last]))) for t in (cmp.lens_top_a, cmp.lens_top_b))
    if stage is None:
        st.markdown(f"At the end of the prompt both models' final predictions agree: *{end_b}*. The heatmap shows "
                    "where along the layers their distributions still differ.")
    else:
        st.markdown(f"At the end of the prompt their logit-lens predictions part at **{cmp.stages[stage]}** and "
                    f"stay apart to the output: {md(names[0])} ends on *{end_a}*, {md(names[1])} on *{end_b}*. "
                    "Before that stage the two networks, which started from the same weights, still agree.")
    st.caption("Each cell: the KL divergence between the two models' logit-lens distributions (each model's own final "
               "norm and output layer applied after that stage) at that position. Diamonds: from that stage on, the "
               "two models' most likely next tokens differ all the way to the output.")
    st.markdown(f"**Completions with the same seeds** ({', '.join(map(str, SEEDS))}; temperature 0.7, at most "
                f"{N_TOKENS} tokens): the only difference is the weights.")
    for seed, a, b in zip(SEEDS, *data["texts"]):
        c1, c2 = st.columns(2)
        c1.code(a.strip() or "(it ended at once)", language=None, wrap_lines=True)
        c2.code(b.strip() or "(it ended at once)", language=None, wrap_lines=True)
        c1.caption(f"{names[0]} · seed {seed}")
        c2.caption(f"{names[1]} · seed {seed}")


@st.cache_resource(max_entries=4, show_spinner=False)
def pair_tokenizer(folder: str, stamp: int):
    """The instruct model's tokenizer (its chat template with it), loaded alone: no weights needed to show it."""
    return load_checked_tokenizer(folder)


def _tokenizer_of(model: ServerModel):
    config = model.path / "tokenizer_config.json"
    return pair_tokenizer(str(model.path), config.stat().st_mtime_ns if config.is_file() else 0)


def _prompt(default: str) -> str:
    return st.text_input("Prompt", max_chars=MAX_PROMPT_CHARS, **remembered("bvi_prompt", default),
                         help="The same text goes to both models.") or default


def _template_view(tokenizer, prompt: str) -> tuple[list[int], list[bool]]:
    """The toggle, the tokens both models read (shown as chips), and which of them are special."""
    can = has_template(tokenizer)
    wrap = st.toggle("Wrap it in the instruct model's chat template", disabled=not can,
                     **remembered("bvi_template", True), help=define("chat template"))
    chat = None
    if wrap and can:
        try:
            ids, chat = prompt_ids(tokenizer, prompt, True)
        except ChatTemplateError as e:
            st.warning(f"The instruct model's chat template is not used: {md(str(e))}.", icon=":material/block:")
    if chat is None:
        ids, _ = prompt_ids(tokenizer, prompt, False)
    specials = special_ids(tokenizer)
    special = list(chat.special) if chat else [i in specials for i in ids]
    tokens = list(chat.tokens) if chat else [display_token(tokenizer, i) for i in ids]
    st.markdown(template_html(tokens, ids, special), unsafe_allow_html=True)
    st.caption(f"What both models read: {len(ids):,} tokens, {sum(special):,} of them special (outlined, dashed): "
               "markers written as they are, which no one can type"
               + (", laid out by the instruct model's own chat template (rendered by transformers in a sandboxed "
                  "Jinja environment)." if chat else "."))
    return ids, special


def _server_pair(pair: Pair) -> None:
    tok = _tokenizer_of(pair.instruct)
    ids, special = _template_view(tok, _prompt(DEFAULT_PROMPT))
    key = (pair.base.id, pair.instruct.id, tuple(ids))
    data = RESULTS.get(key)
    need = pair.base.facts.weights_bytes + pair.instruct.facts.weights_bytes
    if st.button("Compare both models", type="primary", icon=":material/compare_arrows:", key=PAGE.key("bvi_go"),
                 help=f"Loads both ({size_text(need)} of weights together, if not loaded yet) and runs the prompt "
                      "through each."):
        try:
            base, instruct = SHARED.get(pair.base), SHARED.get(pair.instruct)
            if len(base.tokenizer) != len(tok):
                raise Refused(f"{pair.base.name} and {pair.instruct.name} have different tokenizers "
                              f"({len(base.tokenizer):,} and {len(tok):,} tokens): not a base and its instruct model.")
            data = compute(base.model, instruct.model, tok, ids)
            RESULTS.put(key, data)
        except (Refused, ValueError) as e:
            st.error(md(str(e)), icon=":material/block:")
            return
    if data is None:
        st.caption(f"Press **Compare both models**: it runs this prompt through {md(pair.base.name)} and "
                   f"{md(pair.instruct.name)}.")
        return
    show(data, (pair.base.name, pair.instruct.name), special, tok, "pair")


def _no_pair_line() -> None:
    base, instruct = SUGGESTED
    st.info(f"No base and instruct pair on this server. To compare a real one, add **{base}** and **{instruct}** "
            "(about 270 MB each) from the sidebar's *Add a model from the Hugging Face Hub*, or put both folders in "
            "the server's `GLASSBOX_MODELS_DIR` (Qwen/Qwen2.5-0.5B and Qwen/Qwen2.5-0.5B-Instruct work too, on a "
            "server with the memory). Meanwhile, the same comparison on the built-in model, before and after your "
            "DPO run:", icon=":material/add_circle:")


def _dpo_pair(run) -> None:
    """The built-in model (or the one tuned) before and after this session's DPO run."""
    if run is None or run.model is None or run.status().active or not run.status().step:
        st.caption("Tune a copy of the model with DPO in section 3 first: this section then compares it with the "
                   "original, token by token and layer by layer.")
        return
    tok = run.tokenizer
    first = next(iter(dict.fromkeys(p.prompt for p in run.pairs)), "Once upon a time")
    ids, special = _template_view(tok, _prompt(first))
    cache: ByteLRU = st.session_state.setdefault(_SESSION, ByteLRU(max_entries=4))
    key = (run.id, tuple(ids))
    data = cache.get(key)
    if data is None:
        try:
            data = compute(run.reference, run.model, tok, ids)
        except (Refused, ValueError) as e:
            st.error(md(str(e)), icon=":material/block:")
            return
        cache.put(key, data)
    show(data, (f"{run.reference_name} (before DPO)", "tuned model (after DPO)"), special, tok, "dpo")


def base_vs_instruct_section(run) -> None:
    """The whole section; `run`: this session's tuning run, if any (the offline comparison's pair)."""
    st.html(f"<style>{CSS}</style>")
    pairs = find_pairs()
    with st.container(key=PAGE.key("bvi_lead")):  # the tour's step scrolls to this
        st.markdown("Real assistants are made the same way as the tuned model above, at scale: a **base model** "
                    "pre-trained on text is tuned further on conversations and preferences into an **instruct "
                    "model**. Same architecture, same vocabulary, different weights: put one prompt through both.",
                    help=define("instruct model"))
        if pairs:
            labels = [p.label for p in pairs]
            label = st.selectbox("Pair", labels, **remembered("pair", labels[0], labels))
        else:
            _no_pair_line()
    if pairs:
        _server_pair(pairs[labels.index(label)])
    else:
        _dpo_pair(run)


def pair_facts() -> dict[str, object]:
    """What the tour quotes of this section: the pair (or the one to add), and the template's tokens."""
    pairs = find_pairs()
    if not pairs:
        return {"found": False, "base": SUGGESTED[0], "instruct": SUGGESTED[1], "tokens": "", "special": ""}
    labels = [p.label for p in pairs]
    pair = pairs[labels.index(PAGE.kept("pair"))] if PAGE.kept("pair") in labels else pairs[0]
    tok = _tokenizer_of(pair.instruct)
    prompt = PAGE.kept("bvi_prompt") or DEFAULT_PROMPT
    try:
        ids, chat = prompt_ids(tok, prompt, bool(PAGE.kept("bvi_template", True)) and has_template(tok))
    except ChatTemplateError:
        ids, chat = prompt_ids(tok, prompt, False)
    specials = special_ids(tok)
    special = list(chat.special) if chat else [i in specials for i in ids]
    return {"found": True, "base": pair.base.name, "instruct": pair.instruct.name, "tokens": f"{len(ids):,}",
            "special": f"{sum(special):,}"}


__all__ = ["Pair", "SUGGESTED", "base_vs_instruct_section", "compute", "find_pairs", "pair_facts", "prompt_ids",
           "show"]
