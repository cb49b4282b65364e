"""Take a list of floats out of the cycle collector's sight.

A list of floats holds no reference that could close a cycle, yet CPython tracks every
list, and each pass of the collector visits every item of every tracked list it reaches.
An embeddings batch over a corpus keeps two 384-float vectors per row: tracked, they make
each full pass visit millions of floats (and the young passes visit each new vector), so
the collector's share of the batch grows with what it keeps. Untracked, a kept vector costs
the collector nothing, as the `gc=False` result Structs that hold it already do.

CPython has no Python-level way to untrack an object; its C API does
(``PyObject_GC_UnTrack``, part of the stable ABI), called here through `ctypes`, which is
imported on the first vector, not with the package. Elsewhere than CPython this
does nothing. An untracked list is still freed by reference counting as usual; only a
reference cycle through it (a container put inside a vector) would never be collected.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_untrack: Callable[[object], object] | None = None


def untrack(vector: list[float] | None) -> None:
    """Stop the cycle collector tracking `vector`, a list that holds only floats (None is
    let be). Safe on a list that is already untracked."""
    if vector is not None:
        (_untrack or _load())(vector)


def _load() -> Callable[[object], object]:
    global _untrack
    _untrack = _nothing
    if sys.implementation.name == "cpython":
        try:
            import ctypes

            # A prototype of our own (PYFUNCTYPE: called holding the GIL), so that the
            # shared `ctypes.pythonapi.PyObject_GC_UnTrack` keeps whatever argtypes its
            # other users gave it.
            prototype = ctypes.PYFUNCTYPE(None, ctypes.py_object)
            _untrack = prototype(("PyObject_GC_UnTrack", ctypes.pythonapi))
        except (ImportError, AttributeError, OSError):  # a build without ctypes
            pass
    return _untrack


def _nothing(vector: object) -> None:
    return None
