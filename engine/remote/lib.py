"""nnsight, imported the one way this project imports it.

Importing nnsight mounts a `.save()` method on every Python object, process-wide (its C extension; the NDIF
idiom `value.save()` needs it). A class whose definition checks its attributes and is first defined after that
breaks: anyio's TypedAttributeSet subclasses refuse the unannotated `save` ("Attribute 'save' is missing its
type annotation"). nnsight warms `anyio` itself, but anyio loads its socket classes and its asyncio backend
lazily, later; Streamlit's server (Starlette on anyio) may reach them after the first NDIF request. So they are
loaded first, here. The app imports nnsight only where NDIF is turned on.
"""
from __future__ import annotations

import importlib
from types import ModuleType

_WARM_FIRST = ("anyio", "anyio.abc", "anyio._backends._asyncio")


def import_nnsight() -> ModuleType:
    """The nnsight module, with what its import-time mount would break already defined."""
    for name in _WARM_FIRST:
        try:
            importlib.import_module(name)
        except ImportError:  # anyio is not a dependency of nnsight: nothing of it to break then
            pass
    return importlib.import_module("nnsight")
