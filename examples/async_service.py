"""An asyncio service: one shared AsyncEmissaryClient, many completions in flight.

    python examples/async_service.py [--requests 200] [--concurrency 32]

Runs against the bundled emulator, serving on the same event loop. Shows the pattern for
services: one client for the process's lifetime (one connection pool), a semaphore bounding
concurrency, typed errors handled per request.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from emissary import AsyncEmissaryClient
from emissary.errors import APIConnectionError, APIErrorNotFound, SDKError
from emissary.testing import Emulator


async def handle(
    client: AsyncEmissaryClient, limit: asyncio.Semaphore, question: str
) -> str | None:
    """What a request handler does: ask for a completion, degrade gracefully on errors."""
    async with limit:
        try:
            completion = await client.deployments.completions.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"prompt": question, "max_new_tokens": 8},
            )
        except SDKError as error:  # the API answered with an error
            print(f"{question!r}: API error {error.status_code}")
            return None
        except APIConnectionError as error:  # no answer (after retries)
            print(f"{question!r}: unreachable ({error})")
            return None
        return completion.response


async def main(requests: int, concurrency: int) -> int:
    """Serve `requests` questions with at most `concurrency` in flight."""
    async with Emulator() as emulator:
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
            limit = asyncio.Semaphore(concurrency)
            start = time.perf_counter()
            answers = await asyncio.gather(
                *(handle(client, limit, f"question {i}") for i in range(requests))
            )
            elapsed = time.perf_counter() - start
            # The last request asks for something that does not exist: a typed error.
            try:
                await client.deployments.completions.create(
                    project_id="demo-project",
                    deployment_id="no-such-deployment",
                    request_body={"prompt": "hello"},
                )
            except APIErrorNotFound as error:
                print(f"as expected: {type(error).__name__} ({error.data.code}): {error.message}")
    ok = sum(answer is not None for answer in answers)
    print(f"{ok}/{requests} completions in {elapsed:.2f} s ({requests / elapsed:.0f}/s)")
    print(f"first answer: {answers[0]}")
    return 0 if ok == requests else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    options = parser.parse_args()
    raise SystemExit(asyncio.run(main(options.requests, options.concurrency)))
