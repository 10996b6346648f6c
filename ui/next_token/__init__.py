"""The Next token page's wing.

- controls: the temperature, top-k, top-p and min-p sliders and presets
- figures: the distribution and draws figures; stages: the sampling pipeline stage by stage
- draws: one distribution drawn from over and over
- generation: step-by-step generation, replayable
- surprise: how surprised the model is by a text, and the context limit
- hosted: a hosted model's candidates beside ours, its answers sampled N times (engine.generation.hosted)
- hosted_state: that section's settings, endpoint and key, rate limit, requests and the answers kept
"""
from . import controls, draws, figures, generation, hosted, hosted_state, stages, surprise

__all__ = ["controls", "draws", "figures", "generation", "hosted", "hosted_state", "stages", "surprise"]
