"""Views drawn in the browser from data sent once (Streamlit Components v2, no drawing library: js/).

- component: registering a view and `show`, the round trip that sends a view's numbers once and takes its
  choices back into the page's session keys without resending them
- payload: numbers as base64 typed arrays, built once per trace
- attention: every head at once, one head large, the line view (the Attention page's "All heads")
- sampling: the sampling lab on one position's logits (the Next token page's distribution and stages)
- lens: the logit lens heatmap and table; activations: one layer's MLP activations and every layer at a glance
  (the Feed-forward page)
"""
from .attention import show_heads
from .component import show

__all__ = ["show", "show_heads"]
