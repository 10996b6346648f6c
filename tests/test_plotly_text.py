"""Token text in Plotly figures is escaped once, the way Plotly reads it: `<`, `>` and `&` as entities, a quote
left as a quote (Plotly decodes only &amp; &lt; &gt; and numeric entities, so "&quot;" would show literally),
and a long label is shortened by the characters it shows, never inside an entity ("<|endoftext|&g…").

Every figure builder that draws token text is rendered here for a text holding each special character."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import ROOT

from engine import SamplingSettings, display_token, load_pretrained, run_trace, sampling_stages
from engine.generation.sampling_lab import Run, advance, blame, draw, removed_by, top_tokens
from engine.inspect.attention_steps import weight_steps
from engine.inspect.embeddings import model_input, pca_2d, token_table
from engine.inspect.lens import contributions
from ui.attention import context as att_context
from ui import patterns as att
from ui.attention import steps as att_steps
from ui.feedforward import figures as ff
from ui.feedforward import residual as rs
from ui.next_token.figures import distribution_figure, draws_figure, token_label
from ui.next_token.generation import step_figure
from ui.text import plotly_text
from ui.tokens import vectors
from ui.train.figures import next_token_figure

MODEL = ROOT / "models" / "glassbox-stories"
TEXT = 'Tom said "hi" & <b>bold</b> for $5, then <|endoftext|> came.'
# Plotly's own markup, which our figures use on purpose (bold, line breaks, the hover's side label).
PLOTLY_TAGS = re.compile(r"</?(b|i|br|sup|sub|extra|span)\b[^>]*>")


@pytest.fixture(scope="module")
def loaded():
    model, tok = load_pretrained(MODEL)
    return model, tok, run_trace(model, tok, TEXT)


def strings(fig) -> list[str]:
    """Every string in a figure's JSON (labels, hover text, titles, custom data)."""
    found: list[str] = []

    def walk(x):
        if isinstance(x, str):
            found.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(json.loads(fig.to_json()))
    return found


def assert_plotly_safe(fig) -> str:
    """No escaped quote, no double escape, no cut entity, and every `<` begins one of Plotly's tags."""
    all_text = strings(fig)
    for s in all_text:
        assert "&quot;" not in s and "&#34;" not in s and "&#x27;" not in s, s
        assert "&amp;lt;" not in s and "&amp;gt;" not in s and "&amp;amp;" not in s, s
        assert not re.search(r"&[a-z]{0,3}…", s), f"an entity cut by shortening: {s!r}"
        assert "<" not in PLOTLY_TAGS.sub("", s), f"raw token text reaches Plotly as markup: {s!r}"
    return "\n".join(all_text)


def test_plotly_text_escapes_markup_and_keeps_quotes():
    assert plotly_text('"<|endoftext|> & <b>$') == '"&lt;|endoftext|&gt; &amp; &lt;b&gt;$'


def test_next_token_figures(loaded):
    model, tok, trace = loaded
    special = [i for i in range(len(tok)) if set(display_token(tok, i)) & set('"<>&$')][:12]
    assert special, "the tokenizer has tokens with special characters"
    s = SamplingSettings(temperature=0.8, top_k=5)
    stages = sampling_stages(trace.logits[-1], s)
    top = top_tokens(stages, len(special))
    labels = [token_label(tok, t) for t in special]
    shown = assert_plotly_safe(distribution_figure(top, labels, blame(removed_by(trace.logits[-1], s), top.ids)))
    assert '"' in shown and "&lt;|endoftext|&gt;" in shown  # hover holds the whole token
    drawn = draw(stages, s, 50, 0)
    labels_of = {t: token_label(tok, t) for t in set(drawn.tolist()) | set(stages.order[:15].tolist())}
    labels_of.update({int(t): token_label(tok, special[i % len(special)]) for i, t in enumerate(stages.order[:15])})
    assert_plotly_safe(draws_figure(drawn, stages, labels_of))
    run = advance(model, Run("test", tuple(tok.encode('Tom said "')), 0), 2, s)
    for i in range(1, 3):
        assert_plotly_safe(step_figure(run.steps[i - 1], i, tok))


def test_attention_figures(loaded):
    _, tok, trace = loaded
    tokens = trace.tokens
    assert tokens[0] == "<|endoftext|>" and any('"' in t for t in tokens)
    pattern = trace.pattern(0, 0)  # [pos, pos]
    shown = assert_plotly_safe(att.head_figure(pattern, tokens, "head"))
    assert "&lt;|endoftext…" in shown or "&lt;|endoftext|&gt;" in shown
    assert_plotly_safe(att.difference_figure(pattern - pattern.T, tokens, list(range(len(tokens))), "diff"))
    s = weight_steps(trace, 0, 0, len(tokens) - 1)
    assert_plotly_safe(att_steps.weights_bar(s, tokens, range(len(tokens))))
    assert_plotly_safe(att_steps.scores_figure(trace.act["blocks.0.attn.hook_attn_scores"][0], tokens,
                                               len(tokens) - 1))
    assert_plotly_safe(att_context.attention_bars(pattern[-1], tokens, len(tokens) - 1, "bars"))
    assert_plotly_safe(att_context.cosine_figure([0.5, 0.4], ["a", "b"], '"<b>&'))


def test_feedforward_figures(loaded):
    model, tok, trace = loaded
    tokens = trace.tokens
    post = trace.act["blocks.0.mlp.hook_post"]  # [pos, d_mlp]
    assert_plotly_safe(ff.neuron_trace_bars(post[:, 0], tokens, 0, 0))
    decode = lambda i: display_token(tok, i)  # noqa: E731
    c = contributions(model, trace)
    assert_plotly_safe(rs.part_heatmap(c.direct.numpy(), c.parts, tokens, True, "parts"))
    for pos in range(len(tokens)):
        assert_plotly_safe(rs.contribution_waterfall(c, pos, decode))


def test_tokens_and_train_figures(loaded):
    model, tok, _ = loaded
    mi = model_input(model, tok, TEXT)
    assert_plotly_safe(vectors.input_figure(mi))
    table = token_table(model)
    pieces = [display_token(tok, i) for i in range(table.shape[0])]
    vm = vectors.VocabMap(table, pieces, pca_2d(table))
    assert_plotly_safe(vectors.map_figure(vm, mi))
    frame = pd.DataFrame({"token": ['␣"', "<|endoftext|>", "&", "<b>"], "probability": [0.4, 0.3, 0.2, 0.1]})
    assert_plotly_safe(next_token_figure(frame))


@pytest.mark.parametrize("raw", ['␣"', "<|endoftext|>", "&", "<b>", "$", "a" * 30 + "&"])
def test_shortened_labels_never_cut_an_entity(raw):
    from ui.next_token.figures import short
    label = short(plotly_text(raw))
    assert not re.search(r"&[a-z]{0,3}…", label) and "&quot;" not in label
    assert label.endswith("…") or label == plotly_text(raw)
