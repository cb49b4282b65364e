"""Batches over real loopback HTTP to the emulator: order and completeness under faults,
bad rows, the in-flight cap as the server sees it, adaptive concurrency against a
deployment's capacity, the Retry-After gate, the rate cap, laziness, cancellation and
Ctrl-C; and the adaptive limit's rules on their own."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary._batch import AIMDLimit, Pacer
from emissary._retry import RetryRuntime
from emissary.errors import (
    APIConnectionError,
    APITimeoutError,
    BatchInputError,
    ClientClosedError,
    ConfigurationError,
    EmissaryError,
    RequestValidationError,
    SDKError,
)
from emissary.models import BatchFailure, BatchResult
from emissary.testing import Emulator, RetryClock, instant_retries
from emissary.utils import BackoffStrategy, RetryConfig

from .conftest import DEPLOYMENT, PROJECT
from .faults import FaultServer, connections_to, run_python, until

pytestmark = pytest.mark.anyio

IDS = {"project_id": PROJECT, "deployment_id": DEPLOYMENT}
PATIENT = RetryConfig(
    "backoff", BackoffStrategy(100, 1000, 2.0, 600_000), retry_connection_errors=True,
    max_attempts=12,
)  # fmt: skip
"""Enough attempts that a 5 % fault rate never fails a row (0.05 ** 12)."""


def bodies(n: int) -> list[dict[str, Any]]:
    return [{"prompt": f"prompt number {i}", "max_new_tokens": 4} for i in range(n)]


async def expected_texts(client: AsyncEmissaryClient, rows: list[dict[str, Any]]) -> list[str]:
    """Each row's completion by a plain call, one after another."""
    return [
        (await client.deployments.completions.create(**IDS, request_body=row)).response or ""
        for row in rows
    ]


# --- results ---------------------------------------------------------------------------


async def test_every_row_once_in_input_order_with_5_percent_faults(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    rows = bodies(300)
    expected = await expected_texts(client, rows)
    emulator.requests.clear()
    emulator.faults.at_random(0.05, seed=3)
    with instant_retries(client):
        results = await client.deployments.completions.batch(
            **IDS, requests=rows, concurrency=16, retries=PATIENT
        )
    assert [r.index for r in results] == list(range(300))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [r.completion.response for r in results if r.completion] == expected
    faulted = [r for r in emulator.requests if r.fault is not None]
    assert 5 <= len(faulted) <= 40  # the faults did happen
    assert sum(r.retries_taken for r in results) == len(faulted)
    # every row is one logical call: one Idempotency-Key, the same on each of its attempts
    keys: dict[str, set[str]] = {}
    for seen in emulator.requests:
        keys.setdefault(seen.headers["Idempotency-Key"], set()).add(seen.body.decode())
    assert len(keys) == 300 and all(len(b) == 1 for b in keys.values())
    by_id = {r.request_id for r in results}
    assert by_id <= {seen.request_id for seen in emulator.requests}


async def test_bad_rows_are_their_own_results_and_are_never_sent(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    rows: list[Any] = [
        {"prompt": "fine"},
        {"prompt": "typo", "max_tokens": 5},
        "not a body",
        {"prompt": "also fine"},
        {"prompt": "bad number", "temperature": -1},
    ]
    results = await client.deployments.completions.batch(**IDS, requests=rows)
    assert [r.ok for r in results] == [True, False, False, True, False]
    assert "did you mean 'max_new_tokens'" in str(results[1].error)
    assert all(isinstance(r.error, RequestValidationError) for r in results if not r.ok)
    assert len(emulator.requests) == 2


class _Hostile:
    """A request body whose very type check raises (``isinstance`` reads ``__class__``)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("boom")


async def test_whatever_goes_wrong_in_a_row_is_that_rows_result(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    rows: list[Any] = [
        {"prompt": "fine"},
        {"prompt": "x", "max_new_tokens": int("9" * 4000) * 10**2001},  # once a ValueError
        _Hostile(),  # an exception the SDK does not expect
        {"prompt": "also fine"},
    ]
    results = await client.deployments.completions.batch(**IDS, requests=rows)
    assert [r.ok for r in results] == [True, False, False, True]
    assert isinstance(results[1].error, RequestValidationError)
    assert results[1].error.field == "request_body.max_new_tokens"
    unexpected = results[2].error
    assert type(unexpected) is EmissaryError and "RuntimeError: boom" in str(unexpected)
    assert isinstance(unexpected.__cause__, RuntimeError)
    assert len(emulator.requests) == 2


def _failing_input(good: int) -> Iterator[dict[str, Any]]:
    yield from bodies(good)
    raise ValueError("the input file is corrupt")


async def test_an_input_that_raises_keeps_every_answer_already_paid_for(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    with pytest.raises(BatchInputError) as caught:
        await client.deployments.completions.batch(**IDS, requests=_failing_input(5), concurrency=3)
    error = caught.value
    assert isinstance(error.__cause__, ValueError) and "corrupt" in str(error)
    assert [r.index for r in error.results] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in error.results) and len(emulator.requests) == 5
    assert pickle.loads(pickle.dumps(error)).results[4].index == 4

    seen = []

    async def drain() -> None:
        async for result in client.deployments.completions.iter_batch(
            **IDS, requests=_failing_input(4), concurrency=2, ordered=True
        ):
            seen.append(result.index)

    with pytest.raises(BatchInputError) as caught:
        await drain()
    assert seen == [0, 1, 2, 3] and caught.value.results == []


def test_a_sync_batch_whose_input_raises_keeps_its_answers(
    thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    with pytest.raises(BatchInputError) as caught:
        sync_client.deployments.completions.batch(**IDS, requests=_failing_input(3))
    assert [r.ok for r in caught.value.results] == [True, True, True]


async def test_ordered_rows_behind_a_slow_one_keep_being_sent() -> None:
    # A row that takes long (a retry, a slow answer) must not hold up the rows after it:
    # finished rows wait for it in memory, and new rows keep starting.
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if b"slow" in await request.read():
            await release.wait()
        return web.json_response({"id": "c", "response": "r"})

    async with (
        FaultServer(handle) as server,
        AsyncEmissaryClient(api_key="k", server_url=server.url) as client,
    ):
        rows = [{"prompt": "slow"}, *({"prompt": f"fast {i}"} for i in range(30))]
        results = client.deployments.completions.iter_batch(
            **IDS, requests=rows, concurrency=2, ordered=True
        )
        first = asyncio.ensure_future(anext(results))
        await until(lambda: len(server.requests) == 31, "every row sent, the first one held")
        assert not first.done()
        release.set()
        assert (await first).index == 0
        assert [r.index async for r in results] == list(range(1, 31))


async def test_rows_waiting_their_turn_hold_at_most_32_mib() -> None:
    # Behind a row that does not end, ordered results wait in memory, but only up to 32 MiB
    # of answers (docs/batches.md): eight of 4 MiB, and then no new row starts, rather than
    # the whole input's answers piling up behind the first row.
    release = asyncio.Event()
    answer = {"id": "c", "response": "x" * (4 << 20)}

    async def handle(request: web.Request) -> web.StreamResponse:
        if b"slow" in await request.read():
            await release.wait()
        return web.json_response(answer)

    pulled = done = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(24):
            pulled += 1
            yield {"prompt": "slow" if i == 0 else f"fast {i}"}

    def progress(finished: int, failed: int, total: int | None) -> None:
        nonlocal done
        done = finished

    async with (
        FaultServer(handle) as server,
        AsyncEmissaryClient(api_key="k", server_url=server.url) as client,
    ):
        results = client.deployments.completions.iter_batch(
            **IDS, requests=rows(), concurrency=2, ordered=True, progress=progress
        )
        first = asyncio.ensure_future(anext(results))
        await until(lambda: done == 8, "eight answers of 4 MiB waiting behind the first row")
        for _ in range(20):  # the batch's steps after the eighth: one would start a row
            await asyncio.sleep(0)
        assert (pulled, len(server.requests), done) == (9, 9, 8)
        release.set()
        assert (await first).index == 0
        assert [r.index async for r in results] == list(range(1, 24))
        assert pulled == 24


async def test_dropping_iter_batch_without_closing_it_cancels_its_rows(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    import gc

    emulator.faults.hang(3)
    results = client.deployments.completions.iter_batch(
        **IDS, requests=bodies(4), concurrency=4, timeout_ms=60_000
    )
    async for first in results:
        assert first.ok  # the one request that was not held
        break
    assert emulator.in_flight == 3
    del results, first
    gc.collect()
    await until(lambda: emulator.in_flight == 0, "the client left: the rows were cancelled")
    assert [t for t in asyncio.all_tasks() if "_Rows.row" in repr(t.get_coro())] == []
    assert len(emulator.requests) == 4


async def test_server_errors_are_row_results_with_request_ids(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    results = await client.deployments.completions.batch(
        project_id=PROJECT, deployment_id="no-such-deployment", requests=bodies(3)
    )
    assert not any(r.ok for r in results)
    assert {type(r.error).__name__ for r in results} == {"APIErrorNotFound"}
    assert {r.request_id for r in results} == {seen.request_id for seen in emulator.requests}


async def test_a_bad_id_or_option_fails_the_call_before_any_io(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    completions = client.deployments.completions
    with pytest.raises(RequestValidationError, match="project_id"):
        await completions.batch(project_id="", deployment_id=DEPLOYMENT, requests=bodies(2))
    for options, message in [
        ({"concurrency": 0}, "concurrency must be 'auto' or an integer >= 1"),
        ({"concurrency": "fast"}, "concurrency must be 'auto'"),
        ({"max_concurrency": True}, "max_concurrency must be an integer"),
        ({"requests_per_minute": 0}, "requests_per_minute must be a positive number"),
        ({"progress": "yes"}, "progress must be True, False or a callable"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            await completions.batch(**IDS, requests=bodies(2), **options)
    with pytest.raises(ConfigurationError, match="requests must be an iterable"):
        await completions.batch(**IDS, requests={"prompt": "one dict, not a list"})
    assert emulator.requests == []


# --- concurrency -------------------------------------------------------------------------


async def test_a_fixed_concurrency_is_the_most_the_server_sees() -> None:
    async with Emulator(latency_ms=30) as emu:
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            results = await client.deployments.completions.batch(
                project_id="demo-project",
                deployment_id="demo-deployment",
                requests=bodies(60),
                concurrency=5,
            )
    assert all(r.ok for r in results)
    assert emu.max_in_flight == 5


async def test_auto_concurrency_finds_a_deployments_capacity() -> None:
    async with Emulator(capacity=6, latency_ms=25) as emu:
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            results = await client.deployments.completions.batch(
                project_id="demo-project", deployment_id="demo-deployment", requests=bodies(300)
            )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    rejected = [r for r in emu.requests if r.fault == "over_capacity"]
    assert emu.max_in_flight == 6  # it used the capacity...
    assert len(rejected) < 0.10 * len(emu.requests)  # ... and rarely went past it


async def test_a_429_with_retry_after_holds_every_new_send_of_the_batch() -> None:
    async with Emulator(latency_ms=5) as emu:
        emu.faults.delay(0.05)  # the first request is slow ...
        emu.faults.fail(status=429, retry_after_ms=400)  # ... the second is told to wait
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            results = await client.deployments.completions.batch(
                project_id="demo-project",
                deployment_id="demo-deployment",
                requests=bodies(12),
                concurrency=2,
            )
    assert all(r.ok for r in results)
    told = next(r for r in emu.requests if r.fault == "fail")
    later = [r for r in emu.requests if r.received_at > told.received_at]
    assert len(later) == 11  # the row told to wait, and every row after it
    # None was sent before the 400 ms were up (the answer took ~0 ms to come back).
    assert min(r.received_at for r in later) >= told.received_at + 0.4


async def test_requests_per_minute_spaces_the_requests(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    with instant_retries(client) as clock:  # the batch waits on the client's (virtual) clock
        results = await client.deployments.completions.batch(
            **IDS, requests=bodies(10), requests_per_minute=120
        )
    assert all(r.ok for r in results)
    assert clock.sleeps == pytest.approx([0.5] * 9)  # 120 a minute: one every 0.5 s


# --- laziness, ordering, the sync client -------------------------------------------------


async def test_iter_batch_pulls_inputs_only_as_rows_finish(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    pulled = 0

    def generate() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for body in bodies(200):
            pulled += 1
            yield body

    handed = 0
    async for result in client.deployments.completions.iter_batch(
        **IDS, requests=generate(), concurrency=4
    ):
        handed += 1
        assert result.ok
        assert pulled <= handed + 4  # never more than 4 rows ahead of the consumer
    assert handed == pulled == 200


async def test_batch_starts_one_row_as_each_row_ends(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    # `batch` takes every result as it comes, so a row's end starts the next row at once
    # (from its callback, before the row is reported done), not every slot a turn of the
    # loop freed when the collector next wakes: rows start and end interleaved, and the
    # cycle collector runs less often (benchmarks/README.md, CPU per row).
    reported = 0
    reported_at_pull: list[int] = []

    def generate() -> Iterator[dict[str, Any]]:
        for body in bodies(60):
            reported_at_pull.append(reported)
            yield body

    def progress(done: int, failed: int, total: int | None) -> None:
        nonlocal reported
        reported = done

    results = await client.deployments.completions.batch(
        **IDS, requests=generate(), concurrency=4, progress=progress
    )
    assert [r.index for r in results if r.ok] == list(range(60))
    # The first 4 fill the slots; row 4 + j starts as the (j+1)-th row ends, before it
    # is reported: exactly j rows reported done by then.
    assert reported_at_pull == [0, 0, 0, 0, *range(56)]


async def test_iter_batch_ordered_and_an_async_input(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    async def generate() -> AsyncIterator[dict[str, Any]]:
        for body in bodies(40):
            yield body

    emulator.faults.delay(0.1)  # the first row finishes last
    indexes = [
        r.index
        async for r in client.deployments.completions.iter_batch(
            **IDS, requests=generate(), concurrency=8, ordered=True
        )
    ]
    assert indexes == list(range(40))


def test_the_sync_client_runs_rows_concurrently() -> None:
    with Emulator(latency_ms=50) as emu:
        with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            started = time.monotonic()
            results = client.deployments.completions.batch(
                project_id="demo-project",
                deployment_id="demo-deployment",
                requests=(body for body in bodies(40)),
                concurrency=20,
            )
            elapsed = time.monotonic() - started
            streamed = list(
                client.deployments.completions.iter_batch(
                    project_id="demo-project",
                    deployment_id="demo-deployment",
                    requests=bodies(10),
                    ordered=True,
                )
            )
    assert [r.index for r in results] == list(range(40)) and all(r.ok for r in results)
    assert emu.max_in_flight == 20
    assert elapsed < 40 * 0.05 / 2  # far from one after another (2 s)
    assert [r.index for r in streamed] == list(range(10))


async def test_progress_callable_sees_every_row(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    seen: list[tuple[int, int, int | None]] = []
    rows: list[Any] = [*bodies(5), {"bad": 1}]
    await client.deployments.completions.batch(
        **IDS, requests=rows, progress=lambda *counts: seen.append(counts)
    )
    assert len(seen) == 6 and seen[-1] == (6, 1, 6)
    assert [done for done, _, _ in seen] == [1, 2, 3, 4, 5, 6]


async def test_progress_bar_on_stderr(
    emulator: Emulator, client: AsyncEmissaryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.deployments.completions.batch(**IDS, requests=bodies(5), progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err and "row" in err


def test_batch_results_pickle() -> None:
    result = BatchFailure(index=3, error=RequestValidationError("bad", field="prompt"))
    copy = pickle.loads(pickle.dumps(result))
    assert copy.index == 3 and not copy.ok and str(copy.error) == "bad"
    assert isinstance(copy, BatchResult)


# --- stopping ----------------------------------------------------------------------------


async def test_cancelling_a_batch_stops_it_at_once_and_leaks_nothing(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    emulator.faults.hang(100)
    task = asyncio.ensure_future(
        client.deployments.completions.batch(**IDS, requests=bodies(100), concurrency=8)
    )
    await until(lambda: emulator.in_flight == 8, "8 rows in flight")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if "_Rows.row" in repr(t.get_coro())] == []
    await until(lambda: connections_to(emulator.port) == 0, "the connections closed")
    assert len(emulator.requests) == 8  # nothing sent after the cancel


async def test_closing_the_client_under_a_batch_ends_it_with_client_closed_error(
    emulator: Emulator,
) -> None:
    # Not a failed row per row in flight and per row still to come: the batch ends, as a
    # single call does, whether the close reaches a row mid-attempt or between attempts.
    emulator.faults.hang(100)
    client = AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url)
    task = asyncio.ensure_future(
        client.deployments.completions.batch(**IDS, requests=bodies(100), concurrency=8)
    )
    await until(lambda: emulator.in_flight == 8, "8 rows in flight")
    await client.close()
    with pytest.raises(ClientClosedError, match="closed while the call was in flight"):
        await asyncio.wait_for(task, 5)
    assert len(emulator.requests) == 8  # nothing sent after the close


async def test_leaving_iter_batch_early_cancels_the_rows_in_flight(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    emulator.faults.delay(0.05, 1).hang(50)
    results = client.deployments.completions.iter_batch(**IDS, requests=bodies(50), concurrency=6)
    async for first in results:
        assert first.ok
        break
    await results.aclose()  # type: ignore[attr-defined]
    assert connections_to(emulator.port) == 0 or emulator.in_flight <= 6
    await until(lambda: emulator.in_flight == 0, "no request in flight")


def test_ctrl_c_stops_a_sync_batch_within_a_second() -> None:
    result = run_python(
        """
        import os, signal, threading, time
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        with Emulator() as emu:
            emu.faults.hang(1000)
            client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)

            def interrupt():
                deadline = time.monotonic() + 10
                while emu.in_flight < 8 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(os.getpid(), signal.SIGINT)

            threading.Thread(target=interrupt, daemon=True).start()
            try:
                client.deployments.completions.batch(
                    project_id="demo-project", deployment_id="demo-deployment",
                    requests=[{"prompt": "x"}] * 1000, concurrency=8,
                )
            except KeyboardInterrupt:
                started = time.monotonic()
                client.close()
                print("interrupted", emu.in_flight, len(emu.requests), threading.active_count())
                print("closed in", round(time.monotonic() - started, 2))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    words = lines[0].split()
    assert words[0] == "interrupted" and int(words[2]) == 8, result.stdout
    assert float(lines[1].split()[-1]) < 1.0
    assert result.stderr == ""


# --- the adaptive limit ------------------------------------------------------------------


def test_aimd_slow_start_doubles_then_one_decrease_per_overload() -> None:
    limit = AIMDLimit(maximum=64)
    assert limit.current == 8
    for _ in range(8):  # one round trip at the limit: slow start doubles it
        limit.succeeded(in_flight=8)
    assert limit.current == 16
    epoch = limit.epoch
    for _ in range(5):  # five refusals of one burst: one cut, to what filled the server
        limit.overloaded(epoch, in_flight=15, earlier=13)
    assert limit.current == 13 and limit.epoch == epoch + 1
    for _ in range(limit.hold):  # it holds, then probes one per limit's worth
        limit.succeeded(in_flight=13)
    assert limit.current == 13
    for _ in range(14):
        limit.succeeded(in_flight=13)
    assert limit.current == 14


def test_aimd_cuts_an_overshoot_to_the_capacity_in_one_step_and_at_most_by_half() -> None:
    limit = AIMDLimit(maximum=64)
    limit.limit = 64.0  # slow start overshot a server of 32: 64 sent in one burst
    limit.overloaded(limit.epoch, in_flight=64, earlier=32)
    assert limit.current == 32
    limit.overloaded(limit.epoch, in_flight=32, earlier=3)  # earlier ones refused too
    assert limit.current == 16  # half the attempts in flight, not 3
    limit.overloaded(limit.epoch, in_flight=16)  # a timeout: 0.95 x in flight
    assert limit.current == 15


def test_aimd_does_not_grow_an_unused_limit_and_stays_in_bounds() -> None:
    limit = AIMDLimit(maximum=10)
    for _ in range(100):
        limit.succeeded(in_flight=2)  # far below the limit: no evidence of more capacity
    assert limit.current == 8
    for _ in range(100):
        limit.succeeded(in_flight=10)
    assert limit.current == 10
    for _ in range(100):
        limit.overloaded(limit.epoch, in_flight=limit.current, earlier=0)
    assert limit.current == 1


async def test_the_pacer_measures_what_filled_the_server() -> None:
    pacer = Pacer(
        concurrency="auto", max_concurrency=64, requests_per_minute=None, runtime=RetryRuntime()
    )
    tickets = [await pacer.admit() for _ in range(8)]
    for ticket in tickets[:2]:  # two answered
        pacer.settle(ticket, None)
    pacer.settle(tickets[6], SDKError("x", 429, "", None))  # 4 sent before it still out
    assert pacer.limit == 4


async def test_an_adaptive_batch_paces_its_sends_over_the_round_trip() -> None:
    # Slots freed together (a server answering a whole round at once) are refilled over
    # most of a round trip, not in one burst: auto's sends are spaced by the smoothed
    # round trip over 1.25 times the limit. A fixed concurrency is not paced.
    for concurrency, paced in (("auto", True), (8, False)):
        clock = RetryClock()
        runtime = RetryRuntime()
        runtime.clock, runtime.sleep = clock.clock, clock.sleep
        pacer = Pacer(
            concurrency=concurrency, max_concurrency=64, requests_per_minute=None, runtime=runtime
        )
        first = await pacer.admit()
        await clock.sleep(0.1)  # its round trip: 100 ms
        pacer.settle(first, None)
        clock.sleeps.clear()
        for _ in range(5):
            await pacer.admit()
        assert pacer.limit == 8
        assert clock.sleeps == (pytest.approx([0.1 / (1.25 * 8)] * 4) if paced else [])


async def test_only_overload_moves_the_limit() -> None:
    pacer = Pacer(
        concurrency="auto", max_concurrency=64, requests_per_minute=None, runtime=RetryRuntime()
    )
    quiet = [SDKError("x", status, "", None) for status in (400, 401, 404, 500, 502)] + [
        APIConnectionError("reset")
    ]
    for error in quiet:
        pacer.settle(await pacer.admit(), error)
    assert pacer.limit == 8 and pacer.gate_until == float("-inf")
    tickets = [await pacer.admit() for _ in range(8)]
    pacer.settle(tickets[0], APITimeoutError("slow"))  # 8 in flight: 0.95 x 8
    assert pacer.limit == 7
    paced = SDKError("x", 503, "", None)
    paced.retry_after = 30.0
    pacer.settle(tickets[1], paced)  # sent under the old limit: it cuts no more
    assert pacer.limit == 7
    assert pacer.gate_until > time.monotonic() + 29  # but every new send waits
