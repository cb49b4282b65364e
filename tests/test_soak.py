"""Soak: thousands of calls through a mix of injected faults.

Every call must end in a completion or a typed `EmissaryError`, and open sockets, threads
and traced memory must stay flat between the first and the last third of the run. Run with
``-s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import random
import threading
import tracemalloc

import pytest

from emissary import AsyncEmissaryClient
from emissary.errors import EmissaryError
from emissary.testing import Emulator, RetryClock

from .conftest import DEPLOYMENT, PROJECT
from .faults import open_sockets

pytestmark = pytest.mark.anyio

CALLS = 3000
CONCURRENCY = 64
FAULT_RATE = 0.1


def add_random_fault(emulator: Emulator, rng: random.Random) -> None:
    faults = emulator.faults
    choice = rng.randrange(9)
    if choice == 0:
        faults.fail(status=503, retry_after=0)
    elif choice == 1:
        faults.fail(status=500)
    elif choice == 2:
        faults.fail(status=429, retry_after_ms=1)
    elif choice == 3:
        faults.drop()
    elif choice == 4:
        faults.truncate()
    elif choice == 5:
        faults.fail(status=400)  # not retried: a typed error
    elif choice == 6:
        faults.fail(status=200, body=b"<html>oops</html>")  # not retried: a typed error
    elif choice == 7:
        faults.hang()  # ends by the attempt timeout
    else:
        faults.delay(0.005)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
async def test_soak_with_mixed_faults() -> None:
    rng = random.Random(20261124)
    outcomes: collections.Counter[str] = collections.Counter()
    checkpoints: list[tuple[int, int, int]] = []
    async with Emulator() as emulator:
        async with AsyncEmissaryClient(
            api_key=emulator.api_key, server_url=emulator.url, timeout_ms=500
        ) as client:
            RetryClock().install(client)
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(i: int) -> None:
                async with limit:
                    if rng.random() < FAULT_RATE:
                        add_random_fault(emulator, rng)
                    try:
                        result = await client.deployments.completions.create(
                            project_id=PROJECT,
                            deployment_id=DEPLOYMENT,
                            request_body={"prompt": f"soak {i}", "max_new_tokens": 4},
                        )
                    except EmissaryError as error:
                        outcomes[type(error).__name__] += 1
                    else:
                        assert result.response is not None
                        assert len(result.response.split()) == 4
                        outcomes["ok"] += 1

            tracemalloc.start()
            requests = 0
            for third in range(3):
                await asyncio.gather(*(one(third * 1000 + i) for i in range(CALLS // 3)))
                requests += len(emulator.requests)
                emulator.requests.clear()
                gc.collect()
                checkpoints.append(
                    (open_sockets(), threading.active_count(), tracemalloc.get_traced_memory()[0])
                )
            tracemalloc.stop()
            emulator.faults.clear()

    assert sum(outcomes.values()) == CALLS  # every call ended, in a result or a typed error
    assert outcomes["ok"] > CALLS * 0.6  # the rest: injected faults not retried
    (sockets1, threads1, memory1), _, (sockets3, threads3, memory3) = checkpoints
    print(
        f"\nsoak: {CALLS} calls, {requests} requests, outcomes {dict(outcomes)}; "
        f"sockets {sockets1} -> {sockets3}, threads {threads1} -> {threads3}, "
        f"traced memory {memory1 / 1e6:.2f} MB -> {memory3 / 1e6:.2f} MB"
    )
    assert sockets3 <= sockets1 + 8
    assert sockets3 <= 2 * 100 + 10  # never more than the pool (both ends counted)
    assert threads3 == threads1
    assert memory3 - memory1 < 1_000_000
