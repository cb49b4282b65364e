"""The retry policy against real loopback servers, with the clock and sleep injected."""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from emissary import AsyncEmissaryClient
from emissary.errors import (
    APIConnectionError,
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    APITimeoutError,
    APITLSError,
    RequestValidationError,
    ResponseValidationError,
    SDKError,
)
from emissary.testing import Emulator, RetryClock
from emissary.utils import BackoffStrategy, RetryBudget, RetryConfig

from .conftest import DEPLOYMENT, PROJECT, fake_time
from .faults import open_sockets, serve_async, stop_async

pytestmark = pytest.mark.anyio

BODY = {"prompt": "retry me"}


def config(
    initial: int = 100,
    maximum: int = 1000,
    budget: int = 60_000,
    connections: bool = True,
    attempts: int | None = None,
) -> RetryConfig:
    """Retries bounded by time alone unless `attempts` is given (the default caps at 3)."""
    strategy = BackoffStrategy(initial, maximum, 2.0, budget)
    return RetryConfig("backoff", strategy, connections, max_attempts=attempts)


@pytest.fixture
async def fake_client(emulator: Emulator) -> AsyncIterator[tuple[AsyncEmissaryClient, RetryClock]]:
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        yield client, fake_time(client)


async def create(client: AsyncEmissaryClient, **options: object) -> object:
    return await client.deployments.completions.create(
        project_id=PROJECT,
        deployment_id=DEPLOYMENT,
        request_body=BODY,
        **options,  # type: ignore[arg-type]
    )


# --- what is retried ------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock], status: int
) -> None:
    client, clock = fake_client
    emulator.faults.fail(2, status=status)
    result = await create(client)
    assert result is not None
    assert [r.fault for r in emulator.requests] == ["fail", "fail", None]
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("fault", ["drop", "truncate"])
async def test_dropped_and_truncated_responses_are_retried(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock], fault: str
) -> None:
    client, _ = fake_client
    getattr(emulator.faults, fault)(2)
    result = await create(client)
    assert result is not None
    assert [r.fault for r in emulator.requests] == [fault, fault, None]


async def test_a_timed_out_attempt_is_retried(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.hang()
    result = await create(client, timeout_ms=150)  # the request gets there well within it
    assert result is not None
    assert [r.fault for r in emulator.requests] == ["hang", None]


async def test_connection_refused_is_retried_until_the_budget_ends() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncEmissaryClient(
        api_key="k", server_url=f"http://127.0.0.1:{port}", retry_config=config(budget=5_000)
    ) as client:
        clock = fake_time(client)
        with pytest.raises(APIConnectionError):
            await create(client)
    assert len(clock.sleeps) >= 3
    assert clock.now < 5.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, APIErrorInvalidInput),
        (401, APIErrorUnauthorized),
        (404, APIErrorNotFound),
        (403, SDKError),
        (409, SDKError),
        (422, SDKError),
        (501, SDKError),
    ],
)
async def test_other_statuses_are_not_retried(
    emulator: Emulator,
    fake_client: tuple[AsyncEmissaryClient, RetryClock],
    status: int,
    error: type[Exception],
) -> None:
    client, clock = fake_client
    emulator.faults.fail(3, status=status)
    with pytest.raises(error):
        await create(client)
    assert len(emulator.requests) == 1
    assert clock.sleeps == []


async def test_an_invalid_2xx_body_is_not_retried(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.fail(3, status=200, body=b"<html>")
    with pytest.raises(ResponseValidationError):
        await create(client)
    assert len(emulator.requests) == 1


async def test_bad_input_is_not_sent_at_all(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    with pytest.raises(RequestValidationError):
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p", "top_k": -1}
        )
    assert emulator.requests == []


async def test_tls_failures_are_not_retried() -> None:
    # An https:// URL pointed at a plain-HTTP socket: the TLS handshake fails.
    server = await serve_async(
        lambda conn: conn.sendall(b"HTTP/1.1 400 Bad\r\n\r\n"), read_first=False
    )
    try:
        url = server.url.replace("http://", "https://")
        async with AsyncEmissaryClient(api_key="k", server_url=url) as client:
            clock = fake_time(client)
            with pytest.raises(APITLSError):
                await create(client)
        assert clock.sleeps == []
        assert server.connections == 1
    finally:
        await stop_async(server)
    assert issubclass(APITLSError, APIConnectionError)


async def test_connection_errors_not_retried_when_turned_off(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.drop(2)
    with pytest.raises(APIConnectionError):
        await create(client, retries=config(connections=False))
    assert len(emulator.requests) == 1


async def test_strategy_none_turns_retries_off(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.fail(2, status=503)
    with pytest.raises(SDKError):
        await create(client, retries=RetryConfig.disabled())
    assert len(emulator.requests) == 1


async def test_per_client_config_is_used_and_per_call_overrides_it(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url, retry_config=RetryConfig.disabled()
    ) as client:
        fake_time(client)
        emulator.faults.fail(1, status=503)
        with pytest.raises(SDKError):
            await create(client)
        emulator.faults.fail(1, status=503)
        assert await create(client, retries=config()) is not None
    assert [r.fault for r in emulator.requests] == ["fail", "fail", None]


# --- how long it waits ------------------------------------------------------------------


async def test_waits_grow_exponentially_with_full_jitter(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        clock = fake_time(client)
        emulator.faults.fail(6, status=503)
        await create(client, retries=config(initial=100, maximum=1000))
    bounds = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(clock.sleeps) == 6
    for wait, bound in zip(clock.sleeps, bounds, strict=True):
        assert 0 <= wait <= bound
    assert len(set(clock.sleeps)) == 6  # jittered, not fixed


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry_after": 2}, 2.0),
        ({"retry_after": "7"}, 7.0),
        ({"retry_after_ms": 1500}, 1.5),
        ({"retry_after_ms": "250.5"}, 0.2505),
        ({"retry_after": 9, "retry_after_ms": 300}, 0.3),  # the precise one wins
    ],
)
async def test_retry_after_is_a_floor_even_above_max_interval(
    emulator: Emulator,
    fake_client: tuple[AsyncEmissaryClient, RetryClock],
    headers: dict[str, object],
    expected: float,
) -> None:
    client, clock = fake_client
    emulator.faults.fail(1, status=429, **headers)  # type: ignore[arg-type]
    await create(client, retries=config(initial=10, maximum=100))
    assert clock.sleeps == [pytest.approx(expected)]


async def test_retry_after_as_an_http_date(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, clock = fake_client
    emulator.faults.fail(
        1, status=503, retry_after=email.utils.formatdate(time.time() + 30, usegmt=True)
    )
    await create(client, retries=config(initial=10, maximum=100))
    (wait,) = clock.sleeps
    assert 27 <= wait <= 30


@pytest.mark.parametrize("garbage", ["soon", "-5", "1e999", "", "Mon, 99 Foo 2024", "١٢"])
async def test_garbage_retry_after_is_ignored(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock], garbage: str
) -> None:
    client, clock = fake_client
    emulator.faults.fail(1, status=503, retry_after=garbage, retry_after_ms="nan")
    await create(client, retries=config(initial=100, maximum=100))
    (wait,) = clock.sleeps
    assert 0 <= wait <= 0.1


@pytest.mark.parametrize(("retry_after", "budget_ms"), [(30, 10_000), (86_400, 10**9)])
async def test_a_retry_after_beyond_the_budget_fails_at_once(
    emulator: Emulator,
    fake_client: tuple[AsyncEmissaryClient, RetryClock],
    retry_after: int,
    budget_ms: int,
) -> None:
    client, clock = fake_client
    emulator.faults.fail(1, status=429, retry_after=retry_after)
    with pytest.raises(SDKError) as caught:
        await create(client, retries=config(budget=budget_ms))
    assert caught.value.status_code == 429
    assert caught.value.retry_after == retry_after
    assert clock.sleeps == []
    assert len(emulator.requests) == 1


async def test_max_elapsed_time_bounds_the_whole_call(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, clock = fake_client
    emulator.faults.fail(1000, status=503)
    with pytest.raises(SDKError):
        await create(client, retries=config(initial=500, maximum=2000, budget=10_000))
    assert clock.now < 10.0
    assert sum(clock.sleeps) == pytest.approx(clock.now)
    assert len(emulator.requests) == len(clock.sleeps) + 1 >= 5


async def test_no_attempt_runs_past_the_budget(emulator: Emulator) -> None:
    # Real time: the attempt's own timeout (10 s) is cut to the call's budget (0.3 s).
    emulator.faults.hang(10)
    async with AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url, timeout_ms=10_000
    ) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError):
            await create(client, retries=config(budget=300))
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


async def test_an_attempt_deadline_over_5_s_is_not_rounded_up() -> None:
    # aiohttp rounds a timeout of 5 s or more up to the next whole second of loop time
    # unless told not to: an attempt could then outlive its limit, and the call's budget,
    # by up to a second. Pick a limit that would end half-way through a second, and look at
    # the deadline the loop holds for the attempt while the server says nothing.
    server = await serve_async(lambda conn: server.wait_for_peer_close(conn))
    loop = asyncio.get_running_loop()
    try:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            limit_s = 7.0 + (0.5 - loop.time()) % 1.0  # loop.time() + limit_s ends in .5
            start = loop.time()
            call = asyncio.ensure_future(create(client, timeout_ms=limit_s * 1000))
            assert await asyncio.to_thread(server.accepted.wait, 10)
            deadlines = [timer.when() for timer in loop._scheduled]  # type: ignore[attr-defined]
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
    finally:
        await stop_async(server)
    expected = start + limit_s
    assert any(expected <= when < expected + 0.2 for when in deadlines), (expected, deadlines)
    assert not any(abs(when - math.ceil(expected)) < 0.01 for when in deadlines)


async def test_a_dripped_body_times_out_on_schedule(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.drip(0.02)  # ~200 bytes at 20 ms each: 4 s if nothing stopped it
    result = await create(client, timeout_ms=100)
    assert result is not None
    assert [r.fault for r in emulator.requests] == ["drip", None]


# --- the retry budget and idempotency ---------------------------------------------------


async def test_the_retry_budget_caps_retries_in_an_outage(emulator: Emulator) -> None:
    emulator.faults.fail(100_000, status=503)
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        fake_time(client)
        calls = 300
        for _ in range(calls):
            with pytest.raises(SDKError):
                await create(client)
        attempts = len(emulator.requests)
        # 100 tokens / 5 per retry: at most 20 retries in all, not 300 x (1 + retries).
        assert attempts <= calls + 20
        emulator.faults.clear()
        # A failing call now is not retried: the bucket is empty.
        emulator.faults.fail(3, status=503)
        sent = len(emulator.requests)
        with pytest.raises(SDKError):
            await create(client)
        assert len(emulator.requests) == sent + 1
        emulator.faults.clear()
        # 100 successes refill it: the next outage gets its 20 retries again.
        for _ in range(100):
            await create(client)
        emulator.faults.fail(100_000, status=503)
        sent = len(emulator.requests)
        for _ in range(30):
            with pytest.raises(SDKError):
                await create(client)
        assert len(emulator.requests) - sent == 30 + 20
        emulator.faults.clear()


async def test_an_unlimited_budget_keeps_retrying(emulator: Emulator) -> None:
    emulator.faults.fail(60, status=503)
    async with AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url, retry_budget=RetryBudget.unlimited()
    ) as client:
        clock = fake_time(client)
        assert await create(client, retries=config(initial=1, maximum=1)) is not None
    assert len(emulator.requests) == 61  # 60 retries: far past the default budget's 20
    assert len(clock.sleeps) == 60


async def test_one_idempotency_key_per_call_and_numbered_attempts(
    emulator: Emulator, fake_client: tuple[AsyncEmissaryClient, RetryClock]
) -> None:
    client, _ = fake_client
    emulator.faults.fail(2, status=503)
    await create(client)
    await create(client)
    keys = [r.headers["Idempotency-Key"] for r in emulator.requests]
    attempts = [r.headers["X-Emissary-Attempt"] for r in emulator.requests]
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert attempts == ["1", "2", "3", "1"]
    assert all(uuid.UUID(k).version == 4 for k in keys)


# --- cancellation -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["task.cancel", "wait_for", "anyio"])
async def test_cancellation_stops_at_once_and_closes_the_connection(how: str) -> None:
    server = await serve_async(lambda conn: server.wait_for_peer_close(conn))
    try:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            before = open_sockets()
            call = create(client, timeout_ms=60_000)
            if how == "task.cancel":
                task = asyncio.ensure_future(call)
                await asyncio.to_thread(server.accepted.wait, 10)
                start = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            elif how == "wait_for":
                start = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(call, 0.2)
            else:
                start = time.monotonic()
                with anyio.move_on_after(0.2):
                    await call
            stopped = time.monotonic() - start
            assert await asyncio.to_thread(server.closed_by_peer.wait, 5)
            await asyncio.sleep(0.05)  # room for a wrongly scheduled retry to show up
            assert server.connections == 1
            # Only the server's end of the cancelled connection is still open (it keeps it
            # until it stops); the client's end is closed and nothing new was opened.
            assert open_sockets() == before + 1
        assert stopped < 0.5 + (0.2 if how != "task.cancel" else 0)
    finally:
        await stop_async(server)


# --- deadlines that always hold, and failing fast -------------------------------------


async def test_a_call_whose_budget_is_spent_in_a_late_wakeup_ends_with_a_timeout(
    emulator: Emulator,
) -> None:
    # The loop wakes from the backoff sleep after the budget has run out (a stalled loop):
    # the next attempt must not start with a limit of <= 0, which aiohttp reads as "none"
    # (it would wait on the hanging server forever).
    emulator.faults.fail(status=503).hang()
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        clock = fake_time(client, lag=5.0)
        with anyio.fail_after(10), pytest.raises(APITimeoutError) as caught:
            await create(client, retries=config(budget=1_000))
    assert [r.fault for r in emulator.requests] == ["fail"]  # no attempt after the budget
    error = caught.value
    assert "time budget" in str(error) and "max_elapsed_time 1000 ms" in str(error)
    assert "attempt 1 failed with SDKError" in str(error)
    assert error.retries_taken == 0
    assert len(clock.sleeps) == 1
    assert error.elapsed is not None and error.elapsed.total_seconds() >= 1.0
    assert isinstance(error.__cause__, SDKError)  # the attempt that did fail


async def test_a_server_that_is_down_fails_within_seconds_by_default() -> None:
    # Real time, default settings: 3 attempts, waits of at most 0.5 s and 1 s.
    port = _free_port()
    async with AsyncEmissaryClient(api_key="k", server_url=f"http://127.0.0.1:{port}") as client:
        start = time.monotonic()
        with pytest.raises(APIConnectionError) as caught:
            await create(client)
        elapsed = time.monotonic() - start
    assert elapsed < 3.0
    error = caught.value
    assert error.retries_taken == 2
    assert error.elapsed is not None and error.elapsed.total_seconds() == pytest.approx(
        elapsed, abs=0.2
    )
    assert "could not connect" in str(error) and "[3 attempts over" in str(error)


async def test_a_hanging_server_gets_three_attempts_each_bounded_by_timeout_ms() -> None:
    server = await serve_async(lambda conn: server.wait_for_peer_close(conn))
    try:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            fake_time(client)
            start = time.monotonic()
            with pytest.raises(APITimeoutError) as caught:
                await create(client, timeout_ms=100)
            elapsed = time.monotonic() - start
    finally:
        await stop_async(server)
    assert server.connections == 3
    assert 0.3 <= elapsed < 2.0
    assert "within 0.1 s (timeout_ms)" in str(caught.value)
    assert "[3 attempts over" in str(caught.value)


async def test_an_overloaded_server_that_paces_the_client_is_waited_for(
    emulator: Emulator,
) -> None:
    # 429 / 503 with Retry-After: the server says when; the attempt cap does not apply,
    # the time budget does.
    emulator.faults.fail(4, status=503, retry_after=2).fail(2, status=429, retry_after_ms=500)
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        clock = fake_time(client)
        assert await create(client) is not None
    assert len(emulator.requests) == 7
    assert len(clock.sleeps) == 6
    assert min(clock.sleeps[:4]) >= 2.0  # Retry-After is a floor
    assert min(clock.sleeps[4:]) >= 0.5


@pytest.mark.parametrize("fault", ["fail_500", "fail_503_no_retry_after", "drop"])
async def test_failures_without_retry_after_stop_at_max_attempts(
    emulator: Emulator, fault: str
) -> None:
    if fault == "drop":
        emulator.faults.drop(10)
    else:
        emulator.faults.fail(10, status=500 if fault == "fail_500" else 503)
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        fake_time(client)
        with pytest.raises((SDKError, APIConnectionError)) as caught:
            await create(client)
        assert len(emulator.requests) == 3
        assert caught.value.retries_taken == 2
        assert "[3 attempts over" in str(caught.value)
        with pytest.raises((SDKError, APIConnectionError)):
            await create(client, retries=config(attempts=5))
        assert len(emulator.requests) == 3 + 5
    emulator.faults.clear()


async def test_an_error_of_a_call_that_was_not_retried_says_nothing_of_attempts(
    emulator: Emulator,
) -> None:
    emulator.faults.fail(status=404)
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        with pytest.raises(APIErrorNotFound) as caught:
            await create(client)
    assert caught.value.retries_taken == 0
    assert caught.value.elapsed is not None
    assert "attempts" not in str(caught.value)


def test_a_host_that_does_not_exist_is_a_configuration_error_never_retried() -> None:
    # Name resolution is not exercised end to end here: it would query the machine's DNS
    # server, which tests must not reach. aiohttp's DNS error, as its resolver raises it:
    import socket
    import types

    import aiohttp
    import yarl

    from emissary._retry import is_retryable
    from emissary._transport import transport_error
    from emissary.errors import APIHostNotFoundError, ConfigurationError
    from emissary.utils import DEFAULT_RETRY_CONFIG

    key = types.SimpleNamespace(host="api.exmaple.com", port=443, ssl=True, is_ssl=True)
    url = yarl.URL("https://api.exmaple.com/v1/x")
    gone = aiohttp.ClientConnectorDNSError(
        key,  # type: ignore[arg-type]
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    )
    error = transport_error(gone, url)
    assert isinstance(error, APIHostNotFoundError)
    assert isinstance(error, ConfigurationError) and isinstance(error, APIConnectionError)
    assert "api.exmaple.com" in str(error) and "server_url" in str(error)
    assert not is_retryable(error, DEFAULT_RETRY_CONFIG)
    flaky = aiohttp.ClientConnectorDNSError(
        key,  # type: ignore[arg-type]
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    )
    error = transport_error(flaky, url)
    assert type(error) is APIConnectionError and "Temporary failure" in str(error)
    assert is_retryable(error, DEFAULT_RETRY_CONFIG)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
