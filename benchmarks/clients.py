"""One measurement in a fresh process: ``python clients.py CLIENT SCENARIO --url URL ...``.

Prints one JSON object: client CPU per request (user + system, all threads, measured phase
only), wall time, successes, peak RSS. Every response is checked; any failure aborts.
Each client's imports happen inside its own functions so that each peer can run in a
virtual environment holding only itself.

Scenarios: ``sync`` (sequential), ``async`` (``--concurrency`` in flight), ``cold`` (import
plus client construction), ``memory`` (RSS after 10 % and 100 % of the requests).
The timed scenarios also report how often the cyclic garbage collector ran and how long it
took (per generation), and ``--gc-threshold N`` sets its generation-0 threshold for the whole
process (every client alike; CPython's default is 700 up to 3.12 and 2,000 from 3.13).
Over TLS (an ``https://`` ``--url``), ``--ca-file PEM`` is the CA the floor and emissary
trust instead of the system's: the floor through ``ssl.create_default_context(cafile=...)``,
emissary through its ``ca_bundle=`` argument.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

_START = time.perf_counter()  # cold start: measured from here, before any client import

PROMPT = "What is the capital of France?"
EXPECTED = "Paris"
WARMUP = 200
PROJECT, DEPLOYMENT = "bench-project", "bench-deployment"
POOL = 100
"""Connections per client for the floor and emissary (aiohttp's and emissary's default);
``--pool`` changes it."""
CA_FILE: str | None = None
"""The CA (PEM) the floor and emissary trust over TLS instead of the system's (``--ca-file``);
None: their defaults, as over plain HTTP."""
TLS_CLIENTS = frozenset({"floor", "emissary", "emissary-notrace", "emissary-raw", "emissary-otel"})
"""The clients that take ``--ca-file`` (the peers would verify against their own defaults)."""


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class GCWatch:
    """Runs of the cyclic garbage collector, the time they took and the unreachable objects
    they found, per generation, while active (``with GCWatch() as watch:``); a collection in
    any thread counts."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.found = [0, 0, 0]
        self._started = 0.0
        self.user_s = self.sys_s = 0.0
        self.page_faults = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.runs[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started
            self.found[generation] += info["collected"]

    def __enter__(self) -> GCWatch:
        gc.callbacks.append(self)
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.user_s = usage.ru_utime - self._usage.ru_utime
        self.sys_s = usage.ru_stime - self._usage.ru_stime
        self.page_faults = usage.ru_minflt - self._usage.ru_minflt

    def report(self) -> dict[str, Any]:
        """The collector's runs, seconds and finds per generation; the user and system CPU
        seconds and minor page faults of the process while active."""
        return {
            "gc": self.runs, "gc_s": self.seconds, "gc_found": self.found,
            "user_s": self.user_s, "sys_s": self.sys_s, "page_faults": self.page_faults,
        }  # fmt: skip


def check(ok: bool, what: object) -> None:
    if not ok:
        raise SystemExit(f"bad response: {what!r}")


# --- the clients: each returns (setup, call, teardown) --------------------------------


def floor_async(url: str) -> Any:
    import aiohttp
    import msgspec

    class Completion(msgspec.Struct):
        id: str | None = None
        response: str | None = None

    decoder = msgspec.json.Decoder(Completion)
    body = msgspec.json.encode({"prompt": PROMPT, "max_new_tokens": 16})
    target = f"{url}/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
    headers = {"X-API-Key": "k", "Content-Type": "application/json", "Accept": "application/json"}
    state: dict[str, Any] = {}
    tls: dict[str, Any] = {}
    if CA_FILE is not None:  # one context for the session, as aiohttp's default is one
        import ssl

        tls["ssl"] = ssl.create_default_context(cafile=CA_FILE)

    async def setup() -> None:
        state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL, **tls))

    async def call() -> None:
        async with state["session"].post(target, data=body, headers=headers) as response:
            data = await response.read()
        check(response.status == 200 and decoder.decode(data).response == EXPECTED, data)

    async def teardown() -> None:
        await state["session"].close()

    return setup, call, teardown


def emissary_async(url: str, variant: str = "") -> Any:
    """emissary's async client; `variant` (for ``features.py``): ``notrace`` (tracing off,
    as when opentelemetry is not installed), ``raw`` (``with_raw_response``), ``otel`` (an
    OpenTelemetry SDK provider exporting every span to memory)."""
    from emissary import AsyncEmissaryClient

    state: dict[str, Any] = {}
    if variant == "otel":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(provider)

    async def setup() -> None:
        options: dict[str, Any] = {}
        if variant:  # the plain one as is
            options["tracing"] = variant == "otel"
        if CA_FILE is not None:
            options["ca_bundle"] = CA_FILE
        state["client"] = AsyncEmissaryClient(
            api_key="k", server_url=url, max_connections=POOL, **options
        )
        completions = state["client"].deployments.completions
        state["create"] = (
            completions.with_raw_response.create if variant == "raw" else completions.create
        )

    async def call() -> None:
        result = await state["create"](
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            request_body={"prompt": PROMPT, "max_new_tokens": 16},
        )
        if variant == "raw":
            result = result.parse()
        check(result.response == EXPECTED, result)

    async def teardown() -> None:
        await state["client"].close()

    return setup, call, teardown


def emissary_sync(url: str) -> Any:
    from emissary import EmissaryClient

    options = {} if CA_FILE is None else {"ca_bundle": CA_FILE}
    client = EmissaryClient(api_key="k", server_url=url, max_connections=POOL, **options)

    def call() -> None:
        result = client.deployments.completions.create(
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            request_body={"prompt": PROMPT, "max_new_tokens": 16},
        )
        check(result.response == EXPECTED, result)

    return None, call, client.close


def generated_sdk(url: str, is_async: bool) -> Any:
    from emissary_client_sdk import EmissaryClient

    sdk = EmissaryClient(api_key="k", server_url=url)
    body = {"prompt": PROMPT, "max_new_tokens": 16}
    if is_async:

        async def acall() -> None:
            result = await sdk.deployments.completions.create_async(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body
            )
            check(result.response == EXPECTED, result)

        async def ateardown() -> None:
            await sdk.sdk_configuration.async_client.aclose()

        return None, acall, ateardown

    def call() -> None:
        result = sdk.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body
        )
        check(result.response == EXPECTED, result)

    return None, call, sdk.sdk_configuration.client.close


def openai_client(url: str, is_async: bool, aiohttp_backend: bool) -> Any:
    import openai

    if is_async:
        state: dict[str, Any] = {}

        async def setup() -> None:
            options: dict[str, Any] = {}
            if aiohttp_backend:
                options["http_client"] = openai.DefaultAioHttpClient()
            state["client"] = openai.AsyncOpenAI(api_key="k", base_url=url + "/v1", **options)

        async def acall() -> None:
            result = await state["client"].completions.create(
                model="m", prompt=PROMPT, max_tokens=16
            )
            check(result.choices[0].text == EXPECTED, result)

        async def ateardown() -> None:
            await state["client"].close()

        return setup, acall, ateardown

    client = openai.OpenAI(api_key="k", base_url=url + "/v1")

    def call() -> None:
        result = client.completions.create(model="m", prompt=PROMPT, max_tokens=16)
        check(result.choices[0].text == EXPECTED, result)

    return None, call, client.close


CLIENTS: dict[str, Callable[[str, bool], Any]] = {
    "floor": lambda url, is_async: floor_async(url),
    "emissary": lambda url, is_async: emissary_async(url) if is_async else emissary_sync(url),
    "emissary-notrace": lambda url, is_async: emissary_async(url, "notrace"),
    "emissary-raw": lambda url, is_async: emissary_async(url, "raw"),
    "emissary-otel": lambda url, is_async: emissary_async(url, "otel"),
    "generated": generated_sdk,
    "openai": lambda url, is_async: openai_client(url, is_async, aiohttp_backend=False),
    "openai-aiohttp": lambda url, is_async: openai_client(url, is_async, aiohttp_backend=True),
}


# --- scenarios ---------------------------------------------------------------------------


def run_sync(client: str, url: str, requests: int) -> dict[str, Any]:
    _, call, teardown = CLIENTS[client](url, False)
    for _ in range(WARMUP):
        call()
    with GCWatch() as watch:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            call()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    teardown()
    return {"cpu_s": cpu, "wall_s": wall, "successes": requests + WARMUP, **watch.report()}


async def run_async(client: str, url: str, requests: int, concurrency: int) -> dict[str, Any]:
    setup, call, teardown = CLIENTS[client](url, True)
    if setup is not None:
        await setup()

    async def worker(count: int, fn: Callable[[], Awaitable[None]]) -> None:
        for _ in range(count):
            await fn()

    async def batch(total: int) -> None:
        share, extra = divmod(total, concurrency)
        await asyncio.gather(
            *(worker(share + (i < extra), call) for i in range(min(concurrency, total)))
        )

    await batch(WARMUP)
    with GCWatch() as watch:
        cpu, wall = time.process_time(), time.perf_counter()
        await batch(requests)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await teardown()
    return {"cpu_s": cpu, "wall_s": wall, "successes": requests + WARMUP, **watch.report()}


async def run_memory(client: str, url: str, requests: int, concurrency: int) -> dict[str, Any]:
    setup, call, teardown = CLIENTS[client](url, True)
    if setup is not None:
        await setup()
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await call()

    tenth = requests // 10
    await asyncio.gather(*(one() for _ in range(tenth)))
    early = rss_kb()
    for _ in range(9):
        await asyncio.gather(*(one() for _ in range(tenth)))
    late = rss_kb()
    await teardown()
    return {"rss_early_kb": early, "rss_late_kb": late, "successes": tenth * 10}


def run_cold(client: str, url: str) -> dict[str, Any]:
    if client == "floor":
        import aiohttp

        async def make() -> float:
            session = aiohttp.ClientSession()
            elapsed = time.perf_counter() - _START
            await session.close()
            return elapsed

        return {"cold_s": asyncio.run(make()), "successes": 0}
    if client == "emissary":
        from emissary import AsyncEmissaryClient

        AsyncEmissaryClient(api_key="k", server_url=url)
    elif client == "generated":
        from emissary_client_sdk import EmissaryClient

        EmissaryClient(api_key="k", server_url=url)
    else:
        import openai

        openai.AsyncOpenAI(api_key="k", base_url=url + "/v1")
    return {"cold_s": time.perf_counter() - _START, "successes": 0}


def main() -> None:
    global POOL, CA_FILE
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("scenario", choices=["sync", "async", "cold", "memory"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N) before anything")
    parser.add_argument("--pool", type=int, default=POOL, help="connections (floor, emissary)")
    parser.add_argument(
        "--ca-file", metavar="PEM", help="the CA to trust over TLS (floor, emissary)"
    )
    options = parser.parse_args()
    if options.ca_file is not None and options.client not in TLS_CLIENTS:
        parser.error(f"--ca-file: {options.client} does not take one (only the floor and emissary)")
    POOL = options.pool
    CA_FILE = options.ca_file
    if options.gc_threshold is not None:
        gc.set_threshold(options.gc_threshold)
    if options.scenario == "cold":
        result = run_cold(options.client, options.url)
    elif options.scenario == "sync":
        result = run_sync(options.client, options.url, options.requests)
    elif options.scenario == "memory":
        result = asyncio.run(
            run_memory(options.client, options.url, options.requests, options.concurrency)
        )
    else:
        result = asyncio.run(
            run_async(options.client, options.url, options.requests, options.concurrency)
        )
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
