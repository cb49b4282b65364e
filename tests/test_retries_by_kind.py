"""Retries by kind of operation, over real loopback HTTP (platform.md §1): a create that may
have taken effect is never sent twice (``maybe_committed`` says so), unless the caller gave
an ``idempotency_key``; what provably did not reach the server is retried; a DELETE retried
into a 404 succeeded; every attempt is the SDK's own (aiohttp's silent re-send is off)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient
from emissary.errors import (
    APIConnectionError,
    APIErrorNotFound,
    APITimeoutError,
    RequestValidationError,
    SDKError,
)
from emissary.testing import instant_retries

from .faults import FaultServer

pytestmark = pytest.mark.anyio

JOB = {"base_model": "m", "train_dataset_id": "ds-1"}
NOT_FOUND = {"status": 404, "error": "gone", "code": "training_job_not_found"}


def answers(*replies: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """A handler giving each reply in turn (the last one ever after)."""
    given = list(replies)

    async def handle(request: web.Request) -> web.StreamResponse:
        reply = given.pop(0) if len(given) > 1 else given[0]
        return await reply(request)

    return handle


def status(code: int, payload: dict[str, Any] | None = None, **headers: str) -> Any:
    async def reply(request: web.Request) -> web.StreamResponse:
        if payload is None:
            return web.Response(status=code, headers=headers)
        return web.json_response(payload, status=code, headers=headers)

    return reply


async def drop(request: web.Request) -> web.StreamResponse:
    """Read the whole request, then close the connection without an answer."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()


CREATED = status(201, {"id": "tr-1", "status": "Pending"})


async def test_a_create_answered_500_is_not_retried_and_may_have_been_committed() -> None:
    async with FaultServer(answers(status(500, {"error": "boom"}), CREATED)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(SDKError) as caught:
                await client.training_jobs.create(project_id="p", request_body=JOB)
    assert caught.value.status_code == 500 and caught.value.maybe_committed
    assert caught.value.retries_taken == 0 and len(server.requests) == 1


async def test_a_create_dropped_after_it_was_sent_is_not_retried() -> None:
    async with FaultServer(answers(drop, CREATED)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(APIConnectionError) as caught:
                await client.training_jobs.create(project_id="p", request_body=JOB)
    assert caught.value.maybe_committed and len(server.requests) == 1


async def test_a_create_that_timed_out_is_not_retried() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        import asyncio

        await asyncio.sleep(5)
        return web.Response()

    async with FaultServer(answers(slow, CREATED)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(APITimeoutError) as caught:
                await client.training_jobs.create(project_id="p", request_body=JOB, timeout_ms=200)
    assert caught.value.maybe_committed and len(server.requests) == 1


@pytest.mark.parametrize("code", [429, 503])
async def test_a_create_refused_for_now_is_retried(code: int) -> None:
    busy = status(code, {"status": code, "error": "busy"}, **{"Retry-After": "1"})
    async with FaultServer(answers(busy, CREATED)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client):
                raw = await client.training_jobs.with_raw_response.create(
                    project_id="p", request_body=JOB
                )
    assert raw.parse().id == "tr-1" and raw.retries_taken == 1
    keys = {r.headers["Idempotency-Key"] for r in server.requests}
    assert len(server.requests) == 2 and len(keys) == 1  # the same call, twice


async def test_a_create_on_a_refused_connection_is_retried_and_was_not_committed() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with AsyncEmissaryClient(api_key="k", server_url=f"http://127.0.0.1:{port}") as client:
        with instant_retries(client) as clock, pytest.raises(APIConnectionError) as caught:
            await client.projects.create(request={"name": "x"})
    assert not caught.value.maybe_committed
    assert caught.value.retries_taken == 2 and len(clock.sleeps) == 2  # retried, then gave up


async def test_an_idempotency_key_makes_a_create_retryable() -> None:
    async with FaultServer(answers(status(500, {"error": "boom"}), drop, CREATED)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client):
                job = await client.training_jobs.create(
                    project_id="p", request_body=JOB, idempotency_key="job-42"
                )
    assert job.id == "tr-1" and len(server.requests) == 3
    assert {r.headers["Idempotency-Key"] for r in server.requests} == {"job-42"}


async def test_a_delete_retried_into_a_404_succeeded() -> None:
    async with FaultServer(answers(status(500, {"error": "boom"}), status(404, NOT_FOUND))) as s:
        async with AsyncEmissaryClient(api_key="k", server_url=s.url) as client:
            with instant_retries(client):
                assert (
                    await client.training_jobs.delete(project_id="p", training_job_id="t") is None
                )
    assert [r.method for r in s.requests] == ["DELETE", "DELETE"]
    assert [r.headers["X-Emissary-Attempt"] for r in s.requests] == ["1", "2"]


async def test_a_first_404_is_an_error_unless_missing_ok() -> None:
    async with FaultServer(status(404, NOT_FOUND)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with pytest.raises(APIErrorNotFound) as caught:
                await client.training_jobs.delete(project_id="p", training_job_id="t")
            assert not caught.value.maybe_committed
            await client.training_jobs.delete(project_id="p", training_job_id="t", missing_ok=True)
            raw = await client.training_jobs.with_raw_response.delete(
                project_id="p", training_job_id="t", missing_ok=True
            )
    assert raw.status_code == 404 and raw.parse() is None


async def test_bad_input_was_not_committed() -> None:
    async with AsyncEmissaryClient(api_key="k", server_url="http://127.0.0.1:9") as client:
        with pytest.raises(RequestValidationError) as caught:
            await client.training_jobs.create(project_id="p", request_body={"base_model": "m"})
    assert caught.value.field == "request_body.train_dataset_id"
    assert not caught.value.maybe_committed


async def test_aiohttp_never_resends_an_attempt_by_itself() -> None:
    # aiohttp 3.14 sends a GET again, silently, when a kept-alive connection drops; the SDK
    # turns that off (a private flag of aiohttp's session): the server sees the retry as
    # the SDK's own second attempt, counted.
    served = 0

    async def second_call_dropped(request: web.Request) -> web.StreamResponse:
        nonlocal served
        served += 1
        if served == 2:
            return await drop(request)
        return web.json_response([])

    async with FaultServer(second_call_dropped) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client):
                await client.projects.list()
                await client.projects.list()  # its first attempt meets the drop
    attempts = [r.headers["X-Emissary-Attempt"] for r in server.requests]
    assert attempts == ["1", "1", "2"]
    assert "Idempotency-Key" not in server.requests[0].headers  # GETs carry none
