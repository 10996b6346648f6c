"""An error boundary: an unexpected exception becomes a plain message in the page, its traceback goes to the
server log. `st.stop()` and `st.rerun()` pass through (they are BaseExceptions, not Exceptions).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

LOG = logging.getLogger("glassbox.ui")


@contextmanager
def error_boundary(what: str = "drawing this part of the page") -> Iterator[None]:
    """Use as `with error_boundary("drawing the attention map"):` or as a decorator `@error_boundary(...)`.

    `what` completes the sentence "Something went wrong while ...".
    """
    try:
        yield
    except Exception:
        LOG.exception("Glassbox: unexpected error while %s", what)
        st.error(f"Something went wrong while {what}. The rest of the page still works; "
                 "the details are in the server log.", icon=":material/error:")
