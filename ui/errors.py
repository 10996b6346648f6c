"""An error boundary: an unexpected exception becomes a plain message in the page, its traceback goes to the
server log; a `Refused` shows its own message, which is meant for the user.

`st.stop()` and `st.rerun()` pass through: they raise BaseExceptions (Streamlit's ScriptControlException),
as do KeyboardInterrupt, SystemExit and GeneratorExit, none of which is an error. Every other BaseException is
caught: native libraries raise those when they fail (the tokenizers library's pyo3 `PanicException` derives
from BaseException, so `except Exception` lets it take the whole page down with no message).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from engine.model.trace import NonFiniteTrace

LOG = logging.getLogger("glassbox.ui")
PASS_THROUGH = (ScriptControlException, KeyboardInterrupt, SystemExit, GeneratorExit)


class Refused(ValueError):
    """Something the app will not do, such as a trace too big for this session; the message says why in one
    plain sentence and is shown as it is (it must not quote user text unescaped)."""


@contextmanager
def error_boundary(what: str = "drawing this part of the page") -> Iterator[None]:
    """Use as `with error_boundary("drawing the attention map"):` or as a decorator `@error_boundary(...)`.

    `what` completes the sentence "Something went wrong while ...".
    """
    try:
        yield
    except (Refused, NonFiniteTrace) as e:  # a pass holding NaN says so in its own sentence, wherever it ran
        st.error(str(e), icon=":material/block:")
    except Exception:
        LOG.exception("Glassbox: unexpected error while %s", what)
        st.error(f"Something went wrong while {what}. The rest of the page still works; "
                 "the details are in the server log.", icon=":material/error:")
    except PASS_THROUGH:
        raise
    except BaseException:  # a native library failed (e.g. a Rust panic): the page must still say something
        LOG.exception("Glassbox: a native library failed while %s", what)
        st.error(f"A library Glassbox uses failed while {what}. The rest of the page still works; "
                 "the details are in the server log.", icon=":material/error:")
