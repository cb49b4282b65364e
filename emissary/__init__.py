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
"""

from . import errors, models, utils
from ._async import AsyncEmissaryClient
from ._sync import EmissaryClient
from ._version import __version__

__all__ = ["AsyncEmissaryClient", "EmissaryClient", "__version__", "errors", "models", "utils"]
