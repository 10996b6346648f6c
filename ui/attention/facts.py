"""What the Attention page can measure for the tour to quote (ui.view.Fact): the model's strongest induction
head and what it does on the text, and how far a word's two meanings drift apart layer by layer.

Every figure here is the page's own: the induction score is the "What kind of head?" tab's, the weights are
the patterns the "All heads" tab draws, the similarities the "Context changes meaning" tab's.
"""
from __future__ import annotations

from engine.inspect.heads import INDUCTION_MIN
from engine.inspect.word_context import cosine_by_layer, residual_stages, word_positions

from ..cache import get_trace
from ..state import MAX_CHARS
from ..view import FOUND, Context, Unusable, spoken
from .heads import stats_for
from .state import PAGE, PAIRS

DRIFT_MIN = 0.05  # a word's two meanings "drift apart" when the layers lower their similarity by at least this


def repeated_token(ids: list[int], tokens: list[str], has_bos: bool) -> tuple[int, int] | None:
    """(earlier, later): the last position whose token is a word seen before with another token after it, and
    that earlier occurrence. Induction looks from `later` to `earlier + 1`. None if no word repeats."""
    first = 1 if has_bos else 0
    for q in range(len(ids) - 1, first, -1):
        if not any(ch.isalnum() for ch in tokens[q]):
            continue  # punctuation repeats everywhere; a word is what a reader notices
        for p in range(q - 2, first - 1, -1):
            if ids[p] == ids[q]:
                return p, q
    return None


@PAGE.fact("induction", ("layer", "head", "score", "word", "target", "target_weight", "top", "top_weight",
                         "token", "threshold"))
def induction(ctx: Context) -> dict[str, object]:
    """The head with the highest induction score (measured on a repeated random sequence, as the "What kind
    of head?" tab does), and where it looks from the text's repeated word."""
    choice = ctx.choice
    trace = get_trace(ctx.text[:MAX_CHARS], choice)
    pair = repeated_token(trace.ids, trace.tokens, trace.has_bos)
    if pair is None:
        raise Unusable("the text repeats no word")
    stats = stats_for(trace, choice)
    if stats.induction is None:
        raise Unusable("this model's context is too short to measure induction")
    flat = int(stats.induction.flatten().argmax())
    layer, head = divmod(flat, stats.induction.shape[1])
    score = float(stats.induction[layer, head])
    earlier, later = pair
    row = trace.act[f"blocks.{layer}.attn.hook_pattern"][head, later]  # [pos]: where `later` looks
    top = int(row[:later + 1].argmax())
    def say(i: int) -> str:
        return spoken(choice.tokenizer, trace.ids[i])
    return {FOUND: score >= INDUCTION_MIN, "layer": layer, "head": head, "score": f"{score:.2f}",
            "threshold": f"{INDUCTION_MIN:.1f}", "word": say(later), "target": say(earlier + 1),
            "target_weight": f"{float(row[earlier + 1]):.0%}", "top": say(top), "top_weight": f"{float(row[top]):.0%}",
            "token": later}


@PAGE.fact("context", ("word", "embed", "position", "last", "lowest", "lowest_at"))
def context(ctx: Context) -> dict[str, object]:
    """The chosen pair's shared word: its similarity across the two sentences at each stage (the tab's line)."""
    name = PAGE.kept("pair")
    a, b, word = PAIRS[name] if name in PAIRS else (PAGE.kept("sentence_a", ""), PAGE.kept("sentence_b", ""),
                                                    PAGE.kept("word", ""))
    ta, tb = get_trace(a, ctx.choice), get_trace(b, ctx.choice)
    pos_a, pos_b = word_positions(ta, word), word_positions(tb, word)
    if not pos_a or not pos_b:
        raise Unusable(f"“{word}” is not in both sentences")
    cosines = cosine_by_layer(ta, pos_a[0], tb, pos_b[0])
    stages = [label for label, _ in residual_stages(ta.config.n_layer)]
    low = min(range(len(cosines)), key=cosines.__getitem__)
    return {FOUND: cosines[1] - cosines[-1] >= DRIFT_MIN, "word": word, "embed": f"{cosines[0]:.2f}",
            "position": f"{cosines[1]:.2f}", "last": f"{cosines[-1]:.2f}", "lowest": f"{cosines[low]:.2f}",
            "lowest_at": stages[low]}
