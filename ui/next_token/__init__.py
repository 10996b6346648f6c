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

PAGE = "Next token"  # remembered widgets (ui.state.remembered) survive a visit to another page:
POSITION = "position"  # the position whose prediction is shown (widget key "Next token.position")
POSITION_TEXT = "position_text"  # the text that position belongs to (a new text starts at its end)
BARS = "bars"  # how many tokens the charts list
STAGE = "stage"  # which stage of the pipeline is drawn

__all__ = ["BARS", "PAGE", "POSITION", "POSITION_TEXT", "STAGE", "controls", "draws", "figures", "generation",
           "hosted", "hosted_state", "stages", "surprise"]
