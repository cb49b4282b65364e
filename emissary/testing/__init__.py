"""A local emulator of the Emissary API, for tests, examples and offline development.

    from emissary import EmissaryClient
    from emissary.testing import Emulator

    with Emulator() as emu:  # serves on 127.0.0.1, a free port, in a background thread
        client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
        completion = client.deployments.completions.create(
            project_id="demo-project", deployment_id="demo-deployment",
            request_body={"prompt": "Hi", "max_new_tokens": 5},
        )

Inject faults into the next requests with ``emu.faults`` (`FaultPlan`): ``fail``, ``drop``,
``truncate``, ``delay``, ``hang``, ``drip``; check what arrived in ``emu.requests``.

In async tests use ``async with Emulator() as emu:``, which serves on the running loop.
From a shell: ``python -m emissary.testing --port 8000`` (see ``--help``).

Retries without waiting: ``with instant_retries(client) as clock:`` runs the client's
retries on a virtual clock (`RetryClock`); ``clock.sleeps`` lists the waits it chose.
"""

from ._clock import RetryClock, instant_retries
from ._faults import Fault, FaultPlan
from ._generator import (
    CANDIDATES_PER_WORD,
    DEFAULT_MAX_NEW_TOKENS,
    MAX_NEW_TOKENS_LIMIT,
    VOCABULARY_SIZE,
    choose_words,
    generate_completion,
)
from ._server import (
    DEFAULT_API_KEY,
    DEFAULT_DEPLOYMENTS,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    Emulator,
    RecordedRequest,
)

__all__ = [
    "CANDIDATES_PER_WORD",
    "DEFAULT_API_KEY",
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_READ_TIMEOUT_S",
    "MAX_NEW_TOKENS_LIMIT",
    "VOCABULARY_SIZE",
    "Emulator",
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "RetryClock",
    "choose_words",
    "generate_completion",
    "instant_retries",
]
