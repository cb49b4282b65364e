"""Ray and Dask on this machine (``nox -s distributed``): every process on loopback."""

from __future__ import annotations

import os

# Before Ray is imported: a local Ray otherwise binds the machine's interface address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
