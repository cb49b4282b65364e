"""The emulator's fault knobs, checked with plain aiohttp (independently of the SDK)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from emissary import EmissaryClient
from emissary.errors import APIConnectionError
from emissary.testing import DEFAULT_API_KEY, Emulator, RetryClock

from .conftest import DEPLOYMENT, PROJECT

pytestmark = pytest.mark.anyio
PATH = f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"


async def post(emulator: Emulator, timeout: float = 5) -> aiohttp.ClientResponse:
    """POST a completion request; the body is read (``response._body``) before returning."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(
            emulator.url + PATH, json={"prompt": "f"}, headers={"X-API-Key": DEFAULT_API_KEY}
        ) as response:
            await response.read()
            return response


async def test_fail_with_status_and_retry_after(emulator: Emulator) -> None:
    emulator.faults.fail(2, status=429, retry_after=3, retry_after_ms=2500)
    for _ in range(2):
        response = await post(emulator)
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert response.headers["retry-after-ms"] == "2500"
        assert (await response.json())["status"] == 429
    assert (await post(emulator)).status == 200
    assert [r.fault for r in emulator.requests] == ["fail", "fail", None]
    assert emulator.faults.pending == 0


async def test_fail_with_a_custom_body(emulator: Emulator) -> None:
    emulator.faults.fail(status=502, body=b"<html>bad gateway</html>")
    response = await post(emulator)
    assert response.status == 502
    assert response._body == b"<html>bad gateway</html>"


async def test_drop(emulator: Emulator) -> None:
    emulator.faults.drop()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(emulator)


async def test_truncate(emulator: Emulator) -> None:
    emulator.faults.truncate()
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(emulator)


async def test_hang_until_the_client_leaves(emulator: Emulator) -> None:
    emulator.faults.hang()
    with pytest.raises(asyncio.TimeoutError):
        await post(emulator, timeout=0.1)
    assert (await post(emulator)).status == 200  # the next request is served normally


async def test_delay_then_answer(emulator: Emulator) -> None:
    emulator.faults.delay(0.1)
    start = time.monotonic()
    response = await post(emulator)
    assert response.status == 200
    assert time.monotonic() - start >= 0.1


async def test_drip_sends_the_body_byte_by_byte(emulator: Emulator) -> None:
    emulator.faults.drip(0.0)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            emulator.url + PATH, json={"prompt": "f"}, headers={"X-API-Key": DEFAULT_API_KEY}
        ) as response:
            chunks = [chunk async for chunk in response.content.iter_any()]
    body = b"".join(chunks)
    assert b'"response"' in body
    assert len(chunks) > 1


async def test_clear(emulator: Emulator) -> None:
    emulator.faults.fail(5)
    emulator.faults.clear()
    assert emulator.faults.pending == 0
    assert (await post(emulator)).status == 200


def test_faults_from_another_thread_with_the_sync_client(thread_emulator: Emulator) -> None:
    thread_emulator.faults.drop(2)  # two retries: the default 3 attempts
    with EmissaryClient(
        api_key=thread_emulator.api_key,
        server_url=thread_emulator.url,
        retry_config=None,
    ) as client:
        RetryClock().install(client)
        result = client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "x"}
        )
        assert result.response
        thread_emulator.faults.drop(1)
        from emissary.utils import RetryConfig

        with pytest.raises(APIConnectionError):
            client.deployments.completions.create(
                project_id=PROJECT,
                deployment_id=DEPLOYMENT,
                request_body={"prompt": "x"},
                retries=RetryConfig.disabled(),
            )
    assert [r.fault for r in thread_emulator.requests] == ["drop"] * 2 + [None, "drop"]
    assert all(r.headers["X-API-Key"] == thread_emulator.api_key for r in thread_emulator.requests)


def test_bad_fault_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="times"):
        Emulator().faults.fail(0)
