"""The Intervene page's wing: change one thing inside the model and see what it does.

- state: the page's declaration (PAGE), tabs and link settings
- data: results computed once per model and inputs, kept (process-wide for the server's shared models)
- figures: the patching grid, runs side by side, how a distribution moved, a text shaded token by token
- controls: how completions are drawn, and a before / after comparison
- patching, ablation, steering, forcing, attribution: one tab each
"""
from __future__ import annotations

import streamlit as st

from engine import Trace

from ..cache import context_message, get_trace
from ..errors import error_boundary
from ..models import ModelChoice
from .ablation import ablation_tab
from .attribution import attribution_tab
from .figures import HEAT_CSS
from .forcing import forcing_tab
from .patching import GRID_CHART, patching_tab
from .state import PAGE, TABS
from .steering import steering_tab

__all__ = ["GRID_CHART", "HEAT_CSS", "PAGE", "TABS", "show_tabs"]

_ON_TEXT = {TABS[1]: ablation_tab, TABS[2]: steering_tab, TABS[3]: forcing_tab, TABS[4]: attribution_tab}


@st.fragment
def show_tabs(choice: ModelChoice, text: str) -> None:
    """Every tab; only the open one computes. Patching runs on its own pair of prompts; the others on the text
    in the box, through its cached trace. Changing a control reruns this fragment, not the page."""
    tabs = st.tabs(TABS, **PAGE.remembered("tab", TABS[0], TABS))
    for tab, name in zip(tabs, TABS):
        if not tab.open:
            continue
        with tab, error_boundary(f"drawing “{name}”"):
            if name == TABS[0]:
                patching_tab(choice)
                continue
            if not text:
                st.info("Type some text above: this tab changes the model while it reads it.",
                        icon=":material/keyboard:")
                continue
            trace: Trace = get_trace(text, choice)
            if trace.n_dropped:
                st.info(context_message(len(trace) - int(trace.has_bos) + trace.n_dropped, trace.config.block_size),
                        icon=":material/straighten:")
            _ON_TEXT[name](choice, trace)
