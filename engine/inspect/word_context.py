"""Context changes meaning: one word in two texts, and two texts token by token.

- `cosine_by_layer`: how alike a word's residual vector is in two sentences, stage by stage. At the token
  embedding the same token has the same vector (cosine 1.0); each block mixes in context through attention,
  so the vectors drift apart as far as the model thinks the word means different things.
- `align_tokens` / `aligned_difference`: where two prompts share tokens, the difference between one head's
  weights on the shared part.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import torch

from ..model.trace import Trace

WORD = re.compile(r"\w+(?:['’]\w+)*")  # a word, with inner apostrophes ("don't")


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for m in WORD.finditer(text):
        seen.setdefault(m.group().lower(), None)
    return list(seen)


def shared_words(text_a: str, text_b: str) -> list[str]:
    """Words (lower-cased) in both texts, in the order they first appear in `text_a`."""
    in_b = set(words(text_b))
    return [w for w in words(text_a) if w in in_b]


def word_positions(trace: Trace, word: str) -> list[int]:
    """Positions of the last token of each whole-word occurrence of `word` (any case) in `trace.text`.

    The last token is where the model has read the whole word (a word may be split into several tokens).
    Occurrences cut off by the context limit are left out.
    """
    word = word.strip()
    if not word:
        return []
    first_text = 1 if trace.has_bos else 0  # the start marker spans no text
    found = []
    for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", trace.text, flags=re.IGNORECASE):
        s, e = m.span()
        inside = [i for i in range(first_text, len(trace)) if trace.offsets[i][0] < e and trace.offsets[i][1] > s]
        if inside:
            found.append(inside[-1])
    return found


def residual_stages(n_layer: int) -> list[tuple[str, str]]:
    """(label, hook name) of the residual vector at each stage: the token embedding alone, plus the position
    embedding (what layer 0 reads: position differs between sentences, context does not yet), then after
    each layer."""
    return ([("token embedding", "hook_embed"), ("+ position", "blocks.0.hook_resid_pre")]
            + [(f"after layer {i}", f"blocks.{i}.hook_resid_post") for i in range(n_layer)])


def cosine_by_layer(trace_a: Trace, pos_a: int, trace_b: Trace, pos_b: int) -> list[float]:
    """Cosine similarity of the residual vectors at `pos_a` in `trace_a` and `pos_b` in `trace_b`, one per
    stage of `residual_stages` (both traces must come from the same model)."""
    if trace_a.config != trace_b.config:
        raise ValueError("the two traces come from different models")
    out = []
    for _, hook in residual_stages(trace_a.config.n_layer):
        a, b = trace_a.act[hook][pos_a], trace_b.act[hook][pos_b]  # [d_model] each
        out.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    return out


@dataclass(frozen=True)
class Alignment:
    a: list[int]  # positions in the first sequence that have a partner
    b: list[int]  # their partners in the second sequence (same token, same order)

    def __len__(self) -> int:
        return len(self.a)


def align_tokens(ids_a: list[int], ids_b: list[int]) -> Alignment:
    """Line up equal tokens of two sequences in order (the longest matching blocks, as `diff` does)."""
    matcher = difflib.SequenceMatcher(a=ids_a, b=ids_b, autojunk=False)
    a, b = [], []
    for block in matcher.get_matching_blocks():
        a += range(block.a, block.a + block.size)
        b += range(block.b, block.b + block.size)
    return Alignment(a, b)


def aligned_difference(pattern_a: torch.Tensor, pattern_b: torch.Tensor, alignment: Alignment) -> torch.Tensor:
    """[n, n] with n = len(alignment): pattern_a minus pattern_b on the tokens both share.

    Entry [i, j] is the weight the i-th shared query puts on the j-th shared key in A, minus the same in B.
    """
    ia, ib = torch.tensor(alignment.a, dtype=torch.long), torch.tensor(alignment.b, dtype=torch.long)
    return pattern_a[ia][:, ia] - pattern_b[ib][:, ib]
