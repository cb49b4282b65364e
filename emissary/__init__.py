"""emissary: the Python SDK for the Emissary LLM deployment API.

    from emissary import EmissaryClient

    with EmissaryClient(api_key="...", server_url="https://...") as client:
        completion = client.deployments.completions.create(
            project_id="p", deployment_id="d", request_body={"prompt": "Hello"}
        )
        print(completion.response)

`AsyncEmissaryClient` is the same API for asyncio (``await client.deployments...``).
Errors live in `emissary.errors` (also under `emissary.models`), retry settings in
`emissary.utils`, and a local emulator of the API in `emissary.testing`.

The names here are loaded on first use, so ``import emissary.errors`` (say, in code that
only catches the SDK's errors) loads nothing else of the package. As in the generated SDK,
every model is named here too (``emissary.ServerType``), so that migrating code changes one
import line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from . import errors, models, utils
    from ._async import AsyncEmissaryClient
    from ._sync import EmissaryClient
    from .models import *  # noqa: F403  (every model, as the generated SDK's package names them)

__all__ = ["AsyncEmissaryClient", "EmissaryClient", "__version__", "errors", "models", "utils"]

_WHERE = {
    "AsyncEmissaryClient": "._async",
    "EmissaryClient": "._sync",
    "errors": ".errors",
    "models": ".models",
    "utils": ".utils",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        # Like the generated SDK's package, this one names every model too
        # (``emissary.ServerType.ON_DEMAND``), so migrating code changes one import line.
        models = importlib.import_module(".models", __name__)
        if name not in models.__all__:
            raise AttributeError(f"module 'emissary' has no attribute {name!r}")
        where = ".models"
    module = importlib.import_module(where, __name__)
    value = module if where.endswith(name) else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
