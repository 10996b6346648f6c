"""The Attention page's wing: one section per tab, all drawn from one cached trace.

- state: the chosen layer, head and query token (`head_picker`), kept across reruns
- figures: figure builders (every head at once, one head large, one query's lines, differences)
- views: the "All heads" and "Compare two prompts" tabs
- steps: "How a weight is made", from q and k to the weights
- heads: "What kind of head?"
- context: "Context changes meaning"
"""
from .context import context_section
from .heads import head_types_section
from .state import Pick, head_picker
from .steps import weight_steps_section
from .views import compare_section, heads_section

SECTIONS = {  # the page's tabs, in order: name -> the function that draws it
    "All heads": heads_section,
    "How a weight is made": weight_steps_section,
    "What kind of head?": head_types_section,
    "Context changes meaning": context_section,
    "Compare two prompts": compare_section,
}

__all__ = ["SECTIONS", "Pick", "compare_section", "context_section", "head_picker", "head_types_section",
           "heads_section", "weight_steps_section"]
