"""A built-in training corpus that needs no download: short children's stories generated from a small
template grammar, in the spirit of TinyStories. Every word comes from the tables below, so the text is
written by this module and free of any licence; the same seed always gives the same stories.

The grammar is small on purpose: a tiny model trained for half a minute can learn its words, a model
trained for a few minutes its sentences, which is exactly the progression the Train page shows.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..model.tokenizer import EOT

SOURCE = ("Generated on this machine by Glassbox's story grammar (engine/train/stories.py): simple children's stories "
          "built from word tables in the code, no download and no licence needed.")


@dataclass(frozen=True)
class Character:
    name: str
    kind: str  # "girl", "dog", ...
    pronoun: str  # "she", "he" or "it"

    @property
    def possessive(self) -> str:
        return {"she": "her", "he": "his", "it": "its"}[self.pronoun]

    @property
    def object(self) -> str:
        return {"she": "her", "he": "him", "it": "it"}[self.pronoun]


NAMES = {
    "she": ["Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Zoe", "Rosa", "Kim", "Ella"],
    "he": ["Tom", "Ben", "Max", "Sam", "Leo", "Tim", "Jack", "Finn", "Joe", "Ned"],
}
KINDS = {
    "she": ["girl", "cat", "bunny", "bird", "duck", "mouse"],
    "he": ["boy", "dog", "bear", "fox", "frog", "puppy"],
}
SIZES = ["little", "small", "happy", "brave", "kind", "curious", "shy", "funny"]
PLACES = ["park", "garden", "forest", "beach", "farm", "pond", "yard", "meadow", "hill", "river"]
THINGS = ["ball", "kite", "box", "hat", "toy car", "book", "shell", "rock", "flower", "cake", "drum", "boat"]
COLOURS = ["red", "blue", "green", "yellow", "big", "shiny", "soft", "pretty", "tiny", "old"]
WHERE = ["under a tree", "near the water", "in the grass", "behind a bush", "on a bench", "next to a rock"]
PROBLEMS = [
    ("the {thing} was stuck in a tree", "climbed up and got the {thing} down"),
    ("the {thing} fell into the water", "used a long stick to pull the {thing} out"),
    ("the {thing} was too heavy to carry", "carried the {thing} home together"),
    ("the {thing} was broken", "fixed the {thing} with some string"),
    ("the wind blew the {thing} away", "ran fast and caught the {thing}"),
    ("the {thing} was very dirty", "washed the {thing} until it was clean"),
]
FEELINGS = ["happy", "glad", "proud", "excited"]
SAD = ["sad", "worried", "upset"]
SAYINGS = [
    "Thank you for helping me!", "You are a good friend!", "Let us play again tomorrow!",
    "We did it together!", "This is the best day!",
]
MORALS = [
    "From that day on, they always helped each other.",
    "{name} learned that friends make hard things easy.",
    "{name} learned that it is good to share.",
    "They played until the sun went down, and then they went home.",
    "And they lived happily ever after.",
]
WEATHER = ["The sun was warm.", "The sky was blue.", "It was a windy day.", "It was a cool morning.",
           "The birds were singing."]


def _a(word: str) -> str:
    """The word with its indefinite article: "a red ball", "an old book"."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _character(rng: random.Random, avoid: str = "") -> Character:
    pronoun = rng.choice(["she", "he"])
    name = rng.choice([n for n in NAMES[pronoun] if n != avoid])
    return Character(name, rng.choice(KINDS[pronoun]), pronoun)


def story(rng: random.Random) -> str:
    """One story: a hero finds a thing, something goes wrong, a friend helps, everyone is happy."""
    hero = _character(rng)
    friend = _character(rng, avoid=hero.name)
    thing, colour, place = rng.choice(THINGS), rng.choice(COLOURS), rng.choice(PLACES)
    problem, fix = (s.format(thing=thing) for s in rng.choice(PROBLEMS))
    he, his = hero.pronoun.capitalize(), hero.possessive
    opening = rng.choice([
        f"Once upon a time, there was {_a(rng.choice(SIZES))} {hero.kind} named {hero.name}.",
        f"One day, {_a(rng.choice(SIZES))} {hero.kind} named {hero.name} went to the {place}.",
        f"{hero.name} was {_a(rng.choice(SIZES))} {hero.kind} who lived near the {place}.",
    ])
    lines = [
        opening,
        f"{rng.choice(WEATHER)} {hero.name} liked to play at the {place}.",
        f"{he} found {_a(colour)} {thing} {rng.choice(WHERE)}. {he} loved the {thing} very much.",
        f"But then {problem}. {hero.name} was {rng.choice(SAD)}.",
        f"{hero.name} saw {his} friend {friend.name}, {_a(rng.choice(SIZES))} {friend.kind}.",
        f"{friend.name} said, \"Do not be sad, {hero.name}. I will help you.\"",
        f"{hero.name} and {friend.name} {fix}.",
        f"{hero.name} was very {rng.choice(FEELINGS)}. {he} said, \"{rng.choice(SAYINGS)}\"",
        rng.choice(MORALS).format(name=hero.name),
    ]
    # Two paragraphs, as in TinyStories: the setting, then what happened.
    return " ".join(lines[:3]) + "\n" + " ".join(lines[3:])


def generate_stories(n: int = 3000, seed: int = 0) -> list[str]:
    """`n` stories; the same (n, seed) always gives the same list."""
    rng = random.Random(seed)
    return [story(rng) for _ in range(n)]


def stories_text(n: int = 3000, seed: int = 0) -> str:
    """The stories as one corpus text: each followed by an `<|endoftext|>` line (the engine's corpus format)."""
    return "".join(f"{s}\n{EOT}\n" for s in generate_stories(n, seed))
