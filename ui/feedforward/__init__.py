"""The Feed-forward page's wing: MLP activations, single neurons, the residual stream, the logit lens and
where the parameters live.

- sections: the page's tabs (`TABS`), each a fragment over a `View` of the cached trace
- figures: figure builders for activations and neurons; residual: for the residual stream and parameters
- data: what is derived from a trace or a model once and cached (the lens, contributions, the neuron atlas)
"""
from .figures import SNIPPET_CSS
from .sections import TABS, View, start_marker_toggle

__all__ = ["SNIPPET_CSS", "TABS", "View", "start_marker_toggle"]
