"""The Feed-forward page's wing: MLP activations, single neurons, the residual stream, the logit lens,
where the parameters live, and the weights in fewer bits.

- state: the page's declaration (PAGE), its tabs and link settings
- sections: the page's tabs (`show_tabs`), each a fragment over a `View` of the cached trace
- figures: figure builders for single neurons; residual: for the residual stream and parameters (the activations
  and the logit lens are drawn in the browser: ui/views)
- data: what is derived from a trace or a model once and cached (the lens, contributions, the neuron atlas)
- quantization: the Quantization tab, the model with its weights in 8, 4, 3 or 2 bits against itself
- facts: what the page measures for the tour to quote (how mixed a neuron is, what quantizing does)
"""
from . import facts  # registers the page's facts (the tour quotes them)
from .figures import SNIPPET_CSS
from .sections import View, mlp_shape_text, mlp_share_text, show_tabs, start_marker_toggle
from .state import PAGE, TABS

__all__ = ["PAGE", "facts", "SNIPPET_CSS", "TABS", "View", "mlp_shape_text", "mlp_share_text", "show_tabs",
           "start_marker_toggle"]
