"""The Attention page's wing: one section per tab, all drawn from one cached trace.

- state: the page's declaration (PAGE) and link settings; the chosen layer, head and query token (`head_picker`)
- figures: figure builders (every head at once, one head large, one query's lines, differences)
- views: the "All heads" tab (drawn in the browser by ui/views) and "Compare two prompts"
- steps: "How a weight is made", from q and k to the weights
- heads: "What kind of head?"
- context: "Context changes meaning"
- facts: what the page measures for the tour to quote (the strongest induction head, a word's drift)
- remote: the page on a model that runs on NDIF (one layer's heads at a time, asked for as picked)
"""
from . import facts  # registers the page's facts (the tour quotes them)
from .context import context_section
from .heads import head_types_section
from .remote import remote_view
from .state import PAGE, TABS, Pick, current_pick, head_picker
from .steps import weight_steps_section
from .views import compare_section, heads_section

# The page's tabs, in order: name -> the function that draws it.
SECTIONS = dict(zip(TABS, (heads_section, weight_steps_section, head_types_section, context_section,
                           compare_section)))


def draw_tab(name: str, trace, choice) -> None:
    """One tab: "All heads" picks its layer, head and query in the browser; the others, whose figures the server
    computes, with the selectboxes at their top."""
    section = SECTIONS[name]
    pick = current_pick(trace, choice.key) if section is heads_section else head_picker(trace, choice.key)
    section(trace, choice, pick)


__all__ = ["PAGE", "facts", "SECTIONS", "TABS", "Pick", "compare_section", "context_section", "draw_tab", "head_picker",
           "head_types_section", "heads_section", "remote_view", "weight_steps_section"]
