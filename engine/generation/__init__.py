"""Generation on the model: turning logits into the next token, and text one token at a time.

- sampling: temperature, top-k, top-p and min-p as pure functions over logits, composed by `sample`;
  `sampling_stages` keeps every stage for drawing; `generate_steps` yields each step's distribution
- sampling_lab: the Next token page's helpers (presets, which filter removed a token, N draws, a replayable run)
- window: one sequence's context window on a key/value cache (what generate_steps and advance run on)
- decode: batched generation with a key/value cache
  Both use only the model's generation contract, `decode_step` (engine/model/gpt.py), so any model class
  that offers it generates the same way.
- hosted: a client for hosted models behind an OpenAI-compatible API (their top candidates and log-probabilities):
  the transport and `complete`; hosted_api: the formats it sends and parses, its data types and errors

(The wing is `generation`, not `generate`: `engine.generate` is the function that writes text.)
"""
from .decode import generate_batch
from .sampling import SamplingSettings, SamplingStages, Step, generate, generate_steps, sample, sampling_stages

__all__ = ["SamplingSettings", "SamplingStages", "Step", "generate", "generate_batch", "generate_steps", "sample",
           "sampling_stages"]
