"""Built-in preference sets, so a workshop can tune at once: the model writes completions, and a simple rule
stands in for the human raters of RLHF, preferring one completion of each pair over the other.

Every pair says which rule labelled it (`PreferencePair.labelled_by`), and the page says so too: these are a
rule's preferences, not a person's.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..model.gpt import GPT
from .preference import PreferencePair, write_completions

COMPLETIONS = 6  # completions written per prompt, of which the rule picks a pair
TOKENS = 40  # tokens per completion
NAMES = ("Jane", "Max", "Sue", "Ben")  # names the default model knows as single tokens after a space

HAPPY = {"happy", "smiled", "smile", "laughed", "fun", "love", "loved", "hug", "hugged", "glad", "joy", "friends",
         "kind", "thank", "proud", "excited", "best", "together"}
SAD = {"sad", "cried", "cry", "angry", "scared", "lost", "hurt", "broke", "broken", "alone", "afraid", "mad",
       "upset", "never", "bad", "sorry", "fell"}


@dataclass(frozen=True)
class PreferenceSet:
    key: str
    title: str  # what the rule prefers, in a few words
    rule: str  # the rule, in a sentence, as the page shows it
    prompts: tuple[str, ...]
    label: Callable[[str, list[str], str], PreferencePair | None]  # (prompt, completions, option) -> a pair


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _happiness(text: str) -> int:
    words = _words(text)
    return sum(w in HAPPY for w in words) - sum(w in SAD for w in words)


def _sentence_length(text: str) -> float:
    """Mean words per sentence (a sentence ends at . ! or ?; a cut-off last one counts too)."""
    sentences = [s for s in re.split(r"[.!?]+", text) if _words(s)]
    return sum(len(_words(s)) for s in sentences) / max(1, len(sentences))


def _by_score(score: Callable[[str], float], min_gap: float) -> Callable[[str, list[str], str], PreferencePair | None]:
    def label(prompt: str, completions: list[str], option: str) -> PreferencePair | None:
        ranked = sorted(completions, key=score, reverse=True)  # stable: ties keep the model's order
        best, worst = ranked[0], ranked[-1]
        if score(best) - score(worst) < min_gap or best == worst:
            return None  # the rule cannot tell these apart: no pair from this prompt
        return PreferencePair(prompt, best, worst, labelled_by=f"rule: {option or 'built-in'}")
    return label


def _name_label(prompt: str, completions: list[str], name: str) -> PreferencePair | None:
    """Rejected: the model's own completion; chosen: the same story with its character renamed to `name`."""
    for text in completions:
        m = re.match(r"\s*([A-Z][a-z]+)\b", text)
        if m and m.group(1) != name:
            chosen = re.sub(rf"\b{m.group(1)}\b", name, text)
            return PreferencePair(prompt, chosen, text, labelled_by=f"rule: the character is called {name}")
    return None


SETS: tuple[PreferenceSet, ...] = (
    PreferenceSet(
        "name", "A chosen character name",
        "The rule prefers the story in which the character has the name you pick: it takes the model's own "
        "story and writes the preferred side by swapping in that name.",
        ("Once upon a time, there was a little girl named", "Once upon a time, there was a little boy named",
         "One day, a girl named", "There once was a kind boy named",
         "Once upon a time, in a small town, there lived a girl named", "Once upon a time, there was a cat named"),
        _name_label),
    PreferenceSet(
        "happy", "Stories that end happily",
        "The rule counts happy words (happy, smiled, laughed, hug, ...) minus sad words (sad, cried, lost, "
        "scared, ...) and prefers the happiest of the model's completions over the saddest.",
        ("Tom lost his red ball in the park. He", "Lily was walking home when it started to rain. She",
         "The little dog could not find its mom. It", "Sam wanted to play with the big kids. They",
         "One day, Mia broke her favourite toy. She", "The bird fell out of its nest. It"),
        _by_score(_happiness, 1)),
    PreferenceSet(
        "short", "Shorter sentences",
        "The rule measures the average number of words per sentence and prefers the completion with the "
        "shortest sentences over the one with the longest.",
        ("Once upon a time, there was a little girl.", "One day, Tom went to the park.",
         "The sun was shining and the birds were singing.", "Ben had a big red box.",
         "Lucy liked to play in the garden.", "There was a old man who lived in a small house."),
        _by_score(lambda t: -_sentence_length(t), 3)),
)


def find_set(key: str) -> PreferenceSet:
    for s in SETS:
        if s.key == key:
            return s
    raise KeyError(f"no built-in preference set {key!r}")


def build_pairs(model: GPT, tokenizer, key: str, option: str = "", seed: int = 0) -> list[PreferencePair]:
    """The set's pairs for this model: its completions of every prompt (seeded), labelled by the set's rule.

    A prompt whose completions the rule cannot tell apart gives no pair, so a set may have fewer pairs than
    prompts. `option` is the set's parameter (the name, for the name set).
    """
    pref = find_set(key)
    if key == "name" and option not in NAMES:
        option = NAMES[0]
    pairs = []
    for i, prompt in enumerate(pref.prompts):
        completions = write_completions(model, tokenizer, prompt, COMPLETIONS, TOKENS, seed=seed * 1000 + i)
        pair = pref.label(prompt, completions, option)
        if pair is not None:
            pairs.append(pair)
    return pairs
