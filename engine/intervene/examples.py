"""The built-in material of the interventions, in the story model's world: prompt pairs for patching, prompt
sets for steering, and a short held-out story for the loss.

Every text here was written for Glassbox (none is copied from a corpus). The pairs differ in one word that
decides what comes next, and each word is one token of the default model's vocabulary, so the two prompts
line up token for token (a pair whose words split differently under another model's tokenizer is refused by
`make_pair`, in a sentence).
"""
from __future__ import annotations

# name -> (clean prompt, corrupted prompt). The clean one is the seed's example: "bank" by a river.
PAIRS: dict[str, tuple[str, str]] = {
    "bank: by the river or in town": ("Lily went to the river. She sat on the bank and looked at the",
                                      "Lily went to the town. She sat on the bank and looked at the"),
    "she or he: who found the ball": ("Lily found a red ball in the garden. Then",
                                      "Tom found a red ball in the garden. Then"),
    "girl or boy: the pronoun later": ("Once upon a time, there was a little girl. One day,",
                                       "Once upon a time, there was a little boy. One day,"),
    "happy or sad: what she did": ("The girl was very happy, so she",
                                   "The girl was very sad, so she"),
}

# name -> (set A, set B): the steering direction is A's mean activation minus B's.
STEERING_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "happy − sad": (
        ("Lily was very happy. She smiled and laughed all day.",
         "It was a happy day, and everyone was glad.",
         "Tom laughed and played with his friends. He was so happy.",
         "The sun was bright, and the children were happy and excited.",
         "Mom gave Lily a big hug. Lily felt happy and loved."),
        ("Lily was very sad. She cried and cried all day.",
         "It was a sad day, and everyone was upset.",
         "Tom cried because he lost his friends. He was so sad.",
         "The sky was dark, and the children were sad and scared.",
         "Mom was gone. Lily felt sad and alone."),
    ),
    "the sea − the forest": (
        ("They went to the beach and played in the sand by the sea.",
         "The boat sailed on the big blue sea, and the fish swam below.",
         "Waves came up on the beach, and the water was cold.",
         "Tom found a shell in the sand near the water.",
         "The sea was calm, and the boat was slow."),
        ("They went to the forest and walked under the tall trees.",
         "The bear lived in a big green forest with many trees.",
         "Leaves fell from the trees, and the path was dark.",
         "Tom found a stick under a tree in the woods.",
         "The forest was quiet, and the birds sang in the trees."),
    ),
}

# A story written for Glassbox, in the style the default model was trained on, that no model here was trained
# on: the "held-out" text whose loss an ablation changes.
HELDOUT_STORY = """Once upon a time, there was a little duck named Pip. Pip lived by a pond with her mom and \
her four brothers. Every morning, they swam in a line across the water.

One day, Pip saw a shiny stone at the bottom of the pond. She wanted it very much. She put her head under the \
water, but the stone was too deep. Pip was sad.

A big frog sat on a leaf near her. "Why are you sad?" asked the frog. Pip told him about the stone. The frog \
smiled. "I can swim deep," he said. He jumped into the water and came back with the stone.

Pip was so happy. "Thank you, frog!" she said. She showed the stone to her mom and her brothers. That night, \
Pip put the stone next to her bed, and she dreamed of the frog and the pond."""
