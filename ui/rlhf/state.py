"""The page's name and its remembered widgets: values survive a visit to another page (ui.state.remembered)."""
from functools import partial

from .. import state

PAGE = "Pre-training vs RLHF"  # as the page's setup_page title, so widget keys read "Pre-training vs RLHF.beta"
remembered = partial(state.remembered, PAGE)
