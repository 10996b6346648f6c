"""The Next token page's wing.

- state: the page's declaration (PAGE), its session keys, the canonical sampling settings and link settings
- lab: the distribution and every stage (drawn in the browser by ui/views/sampling.py), and step-by-step generation
- controls: the temperature, top-k, top-p and min-p sliders' options, the presets, and the callback the browser's
  sliders report to
- figures: the figures of generation steps, draws and a hosted model's answers
- draws: one distribution drawn from over and over
- generation: step-by-step generation, replayable
- kv_cache: under it, the key/value cache of the step shown (figures: kv_figures)
- surprise: how surprised the model is by a text, and the context limit
- hosted: a hosted model's candidates beside ours, its answers sampled N times (engine.generation.hosted)
- hosted_state: that section's settings, endpoint and key, rate limit, requests and the answers kept
- facts: what the page measures for the tour to quote (N draws, the window, the key/value cache)
- remote: the page on a model that runs on NDIF (one position's logits per request)
"""
from . import (controls, draws, facts, figures, generation, hosted, hosted_state, kv_cache, kv_figures, lab, remote,
               surprise)
from .state import PAGE

CSS = surprise.CSS + draws.CSS  # the page's styles, drawn once at its top

__all__ = ["CSS", "PAGE", "controls", "draws", "facts", "figures", "generation", "hosted", "hosted_state", "kv_cache",
           "kv_figures", "lab", "remote", "surprise"]
