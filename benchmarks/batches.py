"""Batches: CPU per row, goodput at a capacity limit, memory, CLI start-up.

    python benchmarks/batches.py           # the reference run (about 9 min on 2 cores)
    python benchmarks/batches.py --quick   # smaller sizes, one round (about 20 s)
    python benchmarks/batches.py --only cpu goodput --rows 5000   # a part, other sizes
    python benchmarks/batches.py --only cpu --endpoint embeddings  # embeddings' CPU per row

Four measurements, each client run a fresh process (this script with a hidden ``child``
sub-command, pinned to CPU 0 like ``clients.py``), for the targets of the batch issue:

1. **CPU per row** against the private nginx of ``bench.py`` (pinned to CPU 1): 20,000 rows
   at 64 in flight by (a) the floor, raw aiohttp ``asyncio.gather`` of one coroutine per row
   under an ``asyncio.Semaphore(64)``, each encoding its body with msgspec, POSTing it and
   decoding the answer with a msgspec ``Decoder`` (``gather``'s list of the answers is kept
   until the batch ends, as a batch's results are); (b) emissary's async
   ``completions.batch(concurrency=64)``; (c) the sync client's ``batch``; and, for
   reference, (d) ``slots``: the floor's rows scheduled as a batch schedules them, each
   row's task made when a slot frees (flat memory; ``gather`` makes them all up front,
   which changes when the cycle collector runs). ``process_time``
   around the batch only, after a 200-row warm-up with the same client; every row must
   succeed and nginx's request count must match, or the run stops as void. Rounds
   interleave the clients (A B C D, then D C B A); ratios are to the floor of the same round,
   then the median of 15 rounds (single rounds' ratios spread from 0.8 to 1.55 on this
   VM, so a median of fewer moves by several per cent from run to run). Each measurement
   also records its user and system CPU and minor page faults (``getrusage``). Targets:
   async ≤ 1.10 times the floor, sync ≤ 1.15 times. With
   ``--endpoint embeddings``, the same for ``embeddings.batch`` (nginx answers two
   384-float vectors and a score; the floor decodes them into msgspec Structs of its own).
2. **Goodput** against ``Emulator(capacity=32, latency_ms=50)`` (at most 640 rows/s), in
   two set-ups: the emulator on a thread of this driver process (another process than the
   client's, so each has a CPU), and the emulator on the client's own event loop, in the
   child (client and server share one CPU, as in a user's async test). In each, 10,000
   rows with ``concurrency="auto"`` and with fixed concurrencies (`FIXED`), each on a fresh
   emulator: rows/s (successful rows over the batch's wall time), the share of requests
   answered 429, the emulator's most requests in flight, and a timeline of its answers in
   0.5 s bins. Auto is reported as a share of the best fixed concurrency of the same
   set-up and run. Targets (auto, each set-up): ≥ 95 % of the best fixed, ≤ 5 % of
   requests answered 429.
3. **Memory**: ``iter_batch`` over 1,000,000 generated rows (a generator, never a list)
   against nginx at the default concurrency, results consumed and counted one by one; the
   process's peak RSS. Target: < 80 MB.
4. **CLI start-up**: ``python -m emissary --help`` and ``python -m emissary projects list
   --help`` against ``python -c pass``, the same interpreter, interleaved, median wall
   time. Target: each ≤ pass + 50 ms.

Writes ``benchmarks/results/batches.json`` and the goodput chart ``batches.png``
(``--quick``: ``batches-quick.*``; any other size or ``--only``: ``batches-partial.*``),
and prints Markdown tables and PASS/MISS lines.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from bench import EMBEDDING_DIMENSIONS, HERE, ROOT, Nginx, pinned
from clients import DEPLOYMENT, EXPECTED, PROJECT, PROMPT, GCWatch

if TYPE_CHECKING:
    from emissary.models import BatchOutcome, CompletionRequestDict

RESULTS = HERE / "results"
Concurrency = int | Literal["auto"]
"""``concurrency=`` of a batch."""
WARMUP = 200
CONCURRENCY = 64
POOL = 100
"""The floor's connections (aiohttp's default, as in ``clients.py``; emissary's is the same)."""
CAPACITY, LATENCY_MS = 32, 50.0
FIXED = (24, 32, 40, 64)
"""The fixed concurrencies auto is measured against: under, at and over the capacity."""
SETUPS = {
    "process": "emulator in another process",
    "same": "emulator on the client's event loop",
}
EMULATOR_PROJECT, EMULATOR_DEPLOYMENT = "demo-project", "demo-deployment"
"""The emulator's default deployment."""
MAX_ROWS_PER_S = CAPACITY / (LATENCY_MS / 1000)
BIN_S = 0.5
CPU_CLIENTS = ["floor", "slots", "async", "sync"]
PARTS = ["cpu", "goodput", "iter", "cli"]
FULL = {
    "rounds": 15, "rows": 20_000, "goodput_rows": 10_000, "iter_rows": 1_000_000, "cli_runs": 15
}  # fmt: skip
QUICK = {"rounds": 1, "rows": 3_000, "goodput_rows": 1_000, "iter_rows": 50_000, "cli_runs": 5}
LIMITS = {
    "async_ratio": 1.10,
    "sync_ratio": 1.15,
    "auto_vs_best_fixed": 0.95,
    "rejected_share": 0.05,
    "iter_peak_rss_mb": 80.0,
    "help_extra_ms": 50.0,
}


def body() -> CompletionRequestDict:
    """One row's request body (the same as ``clients.py``'s)."""
    return {"prompt": PROMPT, "max_new_tokens": 16}


ENDPOINTS = ("completions", "embeddings")
"""The endpoints the CPU part measures (``--endpoint``): completions, whose answer is a
few words, and embeddings, whose answer is two 384-float vectors (nginx's fixed answers,
`bench.BODY` and `bench.EMBEDDINGS_BODY`)."""


def request_body(endpoint: str) -> Any:
    """One row's request body for `endpoint`."""
    if endpoint == "embeddings":
        return {"source_sentence": PROMPT, "target_sentence": EXPECTED, "cosine": True}
    return body()


def answered(endpoint: str, result: Any) -> bool:
    """Whether `result` (a decoded answer) is nginx's answer for `endpoint`."""
    if endpoint == "embeddings":
        response = result.response
        return (
            response is not None
            and response.cosine_score == 0.5
            and len(response.embeddings.text1) == EMBEDDING_DIMENSIONS
        )
    return bool(result.response == EXPECTED)


class FloorCompletion(msgspec.Struct):
    """The floor's own type for a completion's answer."""

    id: str | None = None
    response: str | None = None


class FloorEmbeddings(msgspec.Struct):
    """The floor's own types for an embeddings answer: the vectors, ..."""

    text1: list[float] = []
    text2: list[float] = []


class FloorScores(msgspec.Struct):
    """... the vectors and the scores, ..."""

    embeddings: FloorEmbeddings | None = None
    cosine_score: float | None = None


class FloorEmbedded(msgspec.Struct):
    """... the answer."""

    id: str | None = None
    response: FloorScores | None = None


def floor_type(endpoint: str) -> type:
    """The msgspec Struct a raw-aiohttp user would decode `endpoint`'s answer into."""
    return FloorEmbedded if endpoint == "embeddings" else FloorCompletion


def timeout_for(rows: int, rows_per_s: float) -> float:
    """A bound on a child's run: a minute, plus its rows at a pessimistic rate."""
    return 60.0 + rows / rows_per_s


# --- the child processes: one measurement each, one JSON line on stdout -------------------


async def floor_batch(
    url: str, rows: int, concurrency: int, endpoint: str, lazy: bool = False
) -> dict[str, Any]:
    """The floor: raw aiohttp and msgspec, one coroutine per row under a semaphore.

    With `lazy` (the ``slots`` reference), the same rows as a batch schedules them: a
    row's task is made only when one of the `concurrency` slots frees, so memory stays
    flat, where ``gather`` makes every row's coroutine and task up front.
    """
    import aiohttp
    import msgspec

    decoder = msgspec.json.Decoder(floor_type(endpoint))
    encode = msgspec.json.encode
    target = f"{url}/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/{endpoint}"
    headers = {"X-API-Key": "k", "Content-Type": "application/json", "Accept": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
    semaphore = asyncio.Semaphore(concurrency)

    async def post(request: Any) -> Any:
        async with session.post(target, data=encode(request), headers=headers) as response:
            data = await response.read()
        return decoder.decode(data) if response.status == 200 else None

    async def row(request: Any) -> Any:
        async with semaphore:
            return await post(request)

    async def gathered(bodies: list[Any]) -> list[Any]:
        return await asyncio.gather(*(row(request) for request in bodies))

    async def in_slots(bodies: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        results: list[Any] = [None] * len(bodies)
        pending = iter(enumerate(bodies))
        running: set[asyncio.Task[Any]] = set()
        done = loop.create_future()

        def start() -> None:
            for index, request in pending:
                task = loop.create_task(post(request))
                task.add_done_callback(functools.partial(finished, index))
                running.add(task)
                if len(running) == concurrency:
                    return
            if not running and not done.done():
                done.set_result(None)

        def finished(index: int, task: asyncio.Task[Any]) -> None:
            running.discard(task)
            results[index] = None if task.exception() else task.result()
            start()

        start()
        await done
        return results

    run = in_slots if lazy else gathered
    try:
        await run([request_body(endpoint) for _ in range(WARMUP)])
        bodies = [request_body(endpoint) for _ in range(rows)]
        with GCWatch() as watch:
            cpu, wall = time.process_time(), time.perf_counter()
            results = await run(bodies)  # kept, as a batch's are: what the caller wanted
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await session.close()
    ok = sum(1 for result in results if result is not None and answered(endpoint, result))
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, **watch.report()}


def successes(results: list[BatchOutcome[Any]], endpoint: str) -> int:
    """Rows that succeeded with nginx's answer."""
    return sum(1 for r in results if r.ok and answered(endpoint, r.result))


def namespace(client: Any, endpoint: str) -> Any:
    """`endpoint`'s namespace on `client` (async or sync)."""
    return getattr(client.deployments, endpoint)


async def async_batch(url: str, rows: int, concurrency: int, endpoint: str) -> dict[str, Any]:
    """emissary's async ``batch`` at a fixed concurrency."""
    from emissary import AsyncEmissaryClient

    async with AsyncEmissaryClient(api_key="k", server_url=url) as client:
        endpoint_calls = namespace(client, endpoint)

        async def run(bodies: list[Any]) -> list[BatchOutcome[Any]]:
            results: list[BatchOutcome[Any]] = await endpoint_calls.batch(
                project_id=PROJECT, deployment_id=DEPLOYMENT, requests=bodies,
                concurrency=concurrency,
            )  # fmt: skip
            return results

        await run([request_body(endpoint) for _ in range(WARMUP)])
        bodies = [request_body(endpoint) for _ in range(rows)]
        with GCWatch() as watch:
            cpu, wall = time.process_time(), time.perf_counter()
            results = await run(bodies)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_s": cpu, "wall_s": wall, "ok": successes(results, endpoint), **watch.report()}


def sync_batch(url: str, rows: int, concurrency: int, endpoint: str) -> dict[str, Any]:
    """emissary's sync ``batch`` at a fixed concurrency (its loop thread's CPU included)."""
    from emissary import EmissaryClient

    with EmissaryClient(api_key="k", server_url=url) as client:
        endpoint_calls = namespace(client, endpoint)

        def run(bodies: list[Any]) -> list[BatchOutcome[Any]]:
            results: list[BatchOutcome[Any]] = endpoint_calls.batch(
                project_id=PROJECT, deployment_id=DEPLOYMENT, requests=bodies,
                concurrency=concurrency,
            )  # fmt: skip
            return results

        run([request_body(endpoint) for _ in range(WARMUP)])
        bodies = [request_body(endpoint) for _ in range(rows)]
        with GCWatch() as watch:
            cpu, wall = time.process_time(), time.perf_counter()
            results = run(bodies)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_s": cpu, "wall_s": wall, "ok": successes(results, endpoint), **watch.report()}


async def goodput_batch(
    url: str | None, api_key: str, rows: int, concurrency: Concurrency
) -> dict[str, Any]:
    """emissary's async ``batch`` against the emulator at `url` or, with None, one on this
    process's event loop, no warm-up: the ramp-up of ``"auto"`` is part of what a user
    gets. Failed rows are counted, not fatal."""
    from emissary import AsyncEmissaryClient
    from emissary.testing import Emulator

    local = Emulator(capacity=CAPACITY, latency_ms=LATENCY_MS) if url is None else None
    if local is not None:
        await local.start()
        url, api_key = local.url, local.api_key
    try:
        async with AsyncEmissaryClient(api_key=api_key, server_url=url) as client:
            bodies = [body() for _ in range(rows)]
            wall = time.perf_counter()
            results = await client.deployments.completions.batch(
                project_id=EMULATOR_PROJECT,
                deployment_id=EMULATOR_DEPLOYMENT,
                requests=bodies,
                concurrency=concurrency,
            )
            wall = time.perf_counter() - wall
    finally:
        if local is not None:
            await local.stop()
    errors: dict[str, int] = {}
    for result in results:
        if not result.ok:
            name = type(result.error).__name__
            errors[name] = errors.get(name, 0) + 1
    report: dict[str, Any] = {
        "wall_s": wall,
        "ok": sum(r.ok for r in results),
        "failed": rows - sum(r.ok for r in results),
        "errors": errors,
        "retries": sum(r.retries_taken for r in results),
    }
    if local is not None:  # the server's view, as the driver takes it from its own emulator
        report["server"] = served(local.requests, local.max_in_flight)
    return report


def served(requests: list[Any], max_in_flight: int) -> dict[str, Any]:
    """What an emulator saw: requests, those answered 429, the most at once, a timeline."""
    return {
        "requests": len(requests),
        "rejected": sum(1 for r in requests if r.fault == "over_capacity"),
        "max_in_flight": max_in_flight,
        "timeline": timeline(requests),
    }


def generated(rows: int) -> Iterator[CompletionRequestDict]:
    """`rows` request bodies, made one at a time (the input never exists as a list)."""
    for _ in range(rows):
        yield body()


async def iter_rows(url: str, rows: int) -> dict[str, Any]:
    """emissary's ``iter_batch`` over a generator at the default concurrency, each result
    checked and dropped; the RSS before the batch and the process's peak."""
    from emissary import AsyncEmissaryClient

    async with AsyncEmissaryClient(api_key="k", server_url=url) as client:
        start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = ok = 0
        wall = time.perf_counter()
        async for result in client.deployments.completions.iter_batch(
            project_id=PROJECT, deployment_id=DEPLOYMENT, requests=generated(rows)
        ):
            count += 1
            completion = result.completion
            ok += completion is not None and completion.response == EXPECTED
        wall = time.perf_counter() - wall
    return {"wall_s": wall, "rows_seen": count, "ok": ok, "start_peak_rss_kb": start_rss}


def child(argv: list[str]) -> None:
    """``batches.py child KIND ...``: one measurement, printed as one JSON line."""
    parser = argparse.ArgumentParser(prog="batches.py child")
    parser.add_argument("kind", choices=[*CPU_CLIENTS, "goodput", "iter"])
    parser.add_argument("--url", help="the server (goodput without it: an emulator here)")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--concurrency", default=str(CONCURRENCY), help='an integer or "auto"')
    parser.add_argument("--api-key", default="k")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="completions")
    options = parser.parse_args(argv)
    level: Concurrency = "auto" if options.concurrency == "auto" else int(options.concurrency)
    endpoint = options.endpoint
    if options.kind in ("floor", "slots"):
        lazy = options.kind == "slots"
        result = asyncio.run(floor_batch(options.url, options.rows, int(level), endpoint, lazy))
    elif options.kind == "async":
        result = asyncio.run(async_batch(options.url, options.rows, int(level), endpoint))
    elif options.kind == "sync":
        result = sync_batch(options.url, options.rows, int(level), endpoint)
    elif options.kind == "goodput":
        result = asyncio.run(goodput_batch(options.url, options.api_key, options.rows, level))
    elif options.url is None:
        raise SystemExit(f"{options.kind} needs --url")
    else:
        result = asyncio.run(iter_rows(options.url, options.rows))
    result["rows"] = options.rows
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


# --- the driver ----------------------------------------------------------------------------


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``batches.py child ARGS`` pinned to CPU 0, bounded by `timeout`; its JSON."""
    command = [*pinned(0), sys.executable, str(Path(__file__).resolve()), "child", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as error:
        raise SystemExit(f"timed out after {timeout:.0f} s: {' '.join(args)}") from error
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def served_since(nginx: Nginx, before: int, expected: int, what: str) -> None:
    """Stop the run as void unless nginx served exactly `expected` requests since `before`."""
    time.sleep(0.05)  # let nginx's last log lines land
    served = nginx.requests_served() - before
    if served != expected:
        raise SystemExit(f"void: {what}: nginx served {served} requests, expected {expected}")


def cpu_measurement(nginx: Nginx, kind: str, rows: int, endpoint: str) -> dict[str, Any]:
    """One CPU-per-row measurement of `kind` in a fresh process; every row checked."""
    before = nginx.requests_served()
    args = [kind, "--url", nginx.url, "--rows", str(rows), "--concurrency", str(CONCURRENCY)]
    args += ["--endpoint", endpoint]
    result = run_child(args, timeout_for(rows, 500))
    if result["ok"] != rows:
        raise SystemExit(f"void: {kind}: {result['ok']} of {rows} rows succeeded")
    served_since(nginx, before, rows + WARMUP, kind)
    result["cpu_us_per_row"] = result["cpu_s"] / rows * 1e6
    result["rows_per_s"] = rows / result["wall_s"]
    result["gc_per_1k_rows"] = sum(result["gc"]) / rows * 1000
    result["gc_us_per_row"] = sum(result["gc_s"]) / rows * 1e6
    result["user_us_per_row"] = result["user_s"] / rows * 1e6
    result["sys_us_per_row"] = result["sys_s"] / rows * 1e6
    result["page_faults_per_row"] = result["page_faults"] / rows
    return result


def cpu_rounds(
    nginx: Nginx, rounds: int, rows: int, endpoint: str
) -> list[dict[str, dict[str, Any]]]:
    """`rounds` rounds of the CPU clients, interleaved (A B C D, then D C B A)."""
    measured: list[dict[str, dict[str, Any]]] = []
    for number in range(rounds):
        order = CPU_CLIENTS if number % 2 == 0 else CPU_CLIENTS[::-1]
        measured.append({kind: cpu_measurement(nginx, kind, rows, endpoint) for kind in order})
        print(f"cpu round {number + 1}/{rounds} done", file=sys.stderr)
    return measured


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and every value."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "all": values,
    }


def cpu_summary(measured: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per client: CPU µs per row, rows/s and GC, over rounds; the ratio to the same round's
    floor, then the median."""
    summary: dict[str, Any] = {}
    for kind in CPU_CLIENTS:
        summary[kind] = {
            metric: spread([r[kind][metric] for r in measured])
            for metric in (
                "cpu_us_per_row",
                "rows_per_s",
                "gc_per_1k_rows",
                "gc_us_per_row",
                "user_us_per_row",
                "sys_us_per_row",
                "page_faults_per_row",
            )
        }
        summary[kind]["ratio"] = spread(
            [r[kind]["cpu_us_per_row"] / r["floor"]["cpu_us_per_row"] for r in measured]
        )
    return summary


def timeline(requests: list[Any]) -> dict[str, list[float]]:
    """The emulator's answers in `BIN_S` bins from its first request, by arrival: requests
    it served (answered 200 `LATENCY_MS` later) and requests it answered 429, per second."""
    if not requests:
        return {"t_s": [], "served_per_s": [], "rejected_per_s": []}
    start = requests[0].received_at
    bins = int((requests[-1].received_at - start) / BIN_S) + 1
    served, rejected = [0] * bins, [0] * bins
    for request in requests:
        slot = int((request.received_at - start) / BIN_S)
        if request.fault == "over_capacity":
            rejected[slot] += 1
        else:
            served[slot] += 1
    return {
        "t_s": [i * BIN_S for i in range(bins)],
        "served_per_s": [n / BIN_S for n in served],
        "rejected_per_s": [n / BIN_S for n in rejected],
    }


def goodput_run(rows: int, concurrency: Concurrency, setup: str) -> dict[str, Any]:
    """One batch against a fresh capacity-limited emulator: on a thread of this process
    (`setup` "process"), or on the child's own event loop ("same")."""
    from emissary.testing import Emulator

    args = ["goodput", "--rows", str(rows), "--concurrency", str(concurrency)]
    if setup == "same":
        result = run_child(args, timeout_for(rows, 50))
        server = result.pop("server")
    else:
        with Emulator(capacity=CAPACITY, latency_ms=LATENCY_MS) as emu:
            args += ["--url", emu.url, "--api-key", emu.api_key]
            result = run_child(args, timeout_for(rows, 50))
            server = served(list(emu.requests), emu.max_in_flight)
    result.update(server)
    result["concurrency"] = concurrency
    result["rejected_share"] = server["rejected"] / server["requests"] if server["requests"] else 0
    result["rows_per_s"] = result["ok"] / result["wall_s"]
    result["capacity_share"] = result["rows_per_s"] / MAX_ROWS_PER_S
    return result


def goodput_setup(rows: int, setup: str) -> dict[str, Any]:
    """Auto and each fixed concurrency in one set-up, interleaved (auto between the fixed
    ones, so drift shows); auto's rows/s as a share of the best fixed one's."""
    runs: dict[str, Any] = {}
    for level in (*FIXED[:2], "auto", *FIXED[2:]):
        name = "auto" if level == "auto" else f"fixed {level}"
        runs[name] = goodput_run(rows, level, setup)
        print(f"goodput {setup} {name}: {runs[name]['rows_per_s']:.0f} rows/s", file=sys.stderr)
    best = max((run for name, run in runs.items() if name != "auto"), key=_rate)
    return {
        "runs": runs,
        "best_fixed": best["concurrency"],
        "auto_vs_best_fixed": runs["auto"]["rows_per_s"] / best["rows_per_s"],
    }


def _rate(run: dict[str, Any]) -> float:
    rate: float = run["rows_per_s"]
    return rate


def iter_run(nginx: Nginx, rows: int) -> dict[str, Any]:
    """``iter_batch`` over a generator of `rows` against nginx: peak RSS, rows/s."""
    before = nginx.requests_served()
    result = run_child(["iter", "--url", nginx.url, "--rows", str(rows)], timeout_for(rows, 500))
    if result["rows_seen"] != rows or result["ok"] != rows:
        raise SystemExit(f"void: iter: {result['ok']} ok of {result['rows_seen']} of {rows} rows")
    served_since(nginx, before, rows, "iter")
    result["rows_per_s"] = rows / result["wall_s"]
    result["peak_rss_mb"] = result["peak_rss_kb"] / 1024
    result["start_peak_rss_mb"] = result["start_peak_rss_kb"] / 1024
    return result


def wall_time(command: list[str], check: bool) -> float:
    """One run of `command`, its wall time in seconds (bounded; output discarded)."""
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


CLI_COMMANDS = {"help_ms": ["--help"], "projects_help_ms": ["projects", "list", "--help"]}
"""The start-up measured: ``emissary --help`` and a resource command's help."""


def cli_run(runs: int) -> dict[str, Any]:
    """``python -m emissary --help`` and ``python -m emissary projects list --help``
    against ``python -c pass``, interleaved, after one untimed run of each (bytecode
    written, files in the page cache)."""
    commands = {
        key: [sys.executable, "-m", "emissary", *args] for key, args in CLI_COMMANDS.items()
    }
    commands["pass_ms"] = [sys.executable, "-c", "pass"]
    for command in commands.values():
        wall_time(command, check=True)
    times: dict[str, list[float]] = {key: [] for key in commands}
    for number in range(runs):
        order = list(commands) if number % 2 == 0 else list(commands)[::-1]
        for key in order:
            times[key].append(wall_time(commands[key], check=True) * 1000)
    result: dict[str, Any] = {key: spread(values) for key, values in times.items()}
    result["limit_ms"] = result["pass_ms"]["median"] + LIMITS["help_extra_ms"]
    return result


# --- the report ----------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(target, measured, limit, holds) for each target this run measured."""
    checks: list[tuple[str, float, float, bool]] = []
    cpu = report.get("cpu")
    if cpu is not None:
        for kind, key in (("async", "async_ratio"), ("sync", "sync_ratio")):
            ratio = cpu["summary"][kind]["ratio"]["median"]
            what = f"{kind} {cpu.get('endpoint', 'completions')} batch c64 CPU/row vs floor"
            checks.append((what, ratio, LIMITS[key], ratio <= LIMITS[key]))
    for setup, measured in report.get("goodput", {}).items():
        share = measured["auto_vs_best_fixed"]
        rejected = measured["runs"]["auto"]["rejected_share"]
        limit = LIMITS["auto_vs_best_fixed"]
        checks.append(
            (f"auto rows/s vs the best fixed, {SETUPS[setup]}", share, limit, share >= limit)
        )
        limit = LIMITS["rejected_share"]
        checks.append(
            (f"auto share answered 429, {SETUPS[setup]}", rejected, limit, rejected <= limit)
        )
    iterated = report.get("iter")
    if iterated is not None:
        rss, limit = iterated["peak_rss_mb"], LIMITS["iter_peak_rss_mb"]
        checks.append(
            (f"iter_batch peak RSS MB, {iterated['rows']:,} rows", rss, limit, rss < limit)
        )
    cli = report.get("cli")
    if cli is not None:
        for key, args in CLI_COMMANDS.items():
            took = cli[key]["median"]
            what = f"emissary {' '.join(args)} ms (limit python -c pass + 50)"
            checks.append((what, took, cli["limit_ms"], took <= cli["limit_ms"]))
    return checks


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def tables(report: dict[str, Any]) -> str:
    """The run's figures as Markdown tables, one per part measured."""
    out: list[str] = []
    if "cpu" in report:
        summary = report["cpu"]["summary"]
        names = {
            "floor": "floor (aiohttp gather)",
            "slots": "aiohttp, a task as a slot frees",
            "async": "emissary async batch",
            "sync": "emissary sync batch",
        }
        rows = []
        for kind in CPU_CLIENTS:
            cpu, ratio = summary[kind]["cpu_us_per_row"], summary[kind]["ratio"]
            rows.append(
                [
                    names[kind],
                    f"{cpu['median']:.0f} ({cpu['min']:.0f}–{cpu['max']:.0f})",
                    f"×{ratio['median']:.3f} ({ratio['min']:.3f}–{ratio['max']:.3f})",
                    f"{summary[kind]['rows_per_s']['median']:,.0f}",
                    f"{summary[kind]['gc_per_1k_rows']['median']:.1f}, "
                    f"{summary[kind]['gc_us_per_row']['median']:.1f} µs",
                    f"{summary[kind]['user_us_per_row']['median']:.0f} + "
                    f"{summary[kind]['sys_us_per_row']['median']:.0f}, "
                    f"{summary[kind]['page_faults_per_row']['median']:.1f}",
                ]
            )
        columns = [
            "c64, nginx", "CPU µs/row", "vs floor", "rows/s", "GC runs/1k rows, µs/row",
            "user + system µs/row, page faults/row",
        ]  # fmt: skip
        out.append(markdown(columns, rows))
    for setup, measured in report.get("goodput", {}).items():
        rows = []
        best = measured["runs"][f"fixed {measured['best_fixed']}"]["rows_per_s"]
        for name, run in measured["runs"].items():
            rows.append(
                [
                    name,
                    f"{run['rows_per_s']:.0f} ({run['capacity_share']:.1%})",
                    f"{run['rows_per_s'] / best:.1%}",
                    f"{run['rejected_share']:.1%} ({run['rejected']:,} of {run['requests']:,})",
                    str(run["max_in_flight"]),
                    f"{run['failed']:,}",
                ]
            )
        columns = [
            f"{SETUPS[setup]}, {CAPACITY} × {LATENCY_MS:.0f} ms",
            "rows/s (of 640)",
            "of the best fixed",
            "answered 429",
            "max in flight",
            "failed rows",
        ]
        out.append(markdown(columns, rows))
    if "iter" in report:
        run = report["iter"]
        columns = ["iter_batch, generator", "rows/s", "peak RSS MB", "RSS before the batch MB"]
        cells = [
            f"{run['rows']:,} rows",
            f"{run['rows_per_s']:,.0f}",
            f"{run['peak_rss_mb']:.1f}",
            f"{run['start_peak_rss_mb']:.1f}",
        ]
        out.append(markdown(columns, [cells]))
    if "cli" in report:
        cli = report["cli"]
        rows = [
            [name, f"{cli[key]['median']:.1f} ({cli[key]['min']:.1f}–{cli[key]['max']:.1f})"]
            for name, key in (
                ("python -m emissary --help", "help_ms"),
                ("python -m emissary projects list --help", "projects_help_ms"),
                ("python -c pass", "pass_ms"),
            )
        ]
        out.append(markdown([f"start-up, {cli['runs']} runs", "wall ms"], rows))
    return "\n\n".join(out)


def chart(report: dict[str, Any], path: Path) -> None:
    """Goodput over time on the capacity-limited emulator: served/s and 429/s, auto against
    the fixed concurrency, with the capacity as a line."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    measured = report["goodput"]["process"]
    best = f"fixed {measured['best_fixed']}"
    runs = {name: measured["runs"][name] for name in dict.fromkeys(("auto", best, "fixed 64"))}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colours = ("tab:blue", "tab:green", "tab:orange")
    for (name, run), colour in zip(runs.items(), colours, strict=False):
        line = run["timeline"]
        label = f"{name} ({run['rows_per_s']:.0f} rows/s, {run['rejected_share']:.1%} 429)"
        top.step(line["t_s"], line["served_per_s"], where="post", color=colour, label=label)
        bottom.step(line["t_s"], line["rejected_per_s"], where="post", color=colour, label=name)
    top.axhline(
        MAX_ROWS_PER_S, color="grey", linestyle="--", label=f"capacity: {MAX_ROWS_PER_S:.0f} rows/s"
    )
    top.set_ylabel("requests served per s")
    top.set_ylim(bottom=0, top=MAX_ROWS_PER_S * 1.3)
    top.legend(loc="lower center")
    bottom.set_ylabel("requests answered 429 per s")
    bottom.set_xlabel(f"seconds since the batch's first request ({BIN_S} s bins, by arrival)")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper right")
    rows = runs["auto"]["rows"]
    fig.suptitle(
        f"emissary batch of {rows:,} rows against Emulator(capacity={CAPACITY}, "
        f"latency_ms={LATENCY_MS:.0f}) in another process, Python {report['machine']['python']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="only these parts")
    parser.add_argument("--rounds", type=int, help="CPU rounds (15; quick 1)")
    parser.add_argument("--rows", type=int, help="rows per CPU measurement (20,000; quick 3,000)")
    parser.add_argument("--goodput-rows", type=int, help="rows per goodput run (10,000; 2,000)")
    parser.add_argument("--iter-rows", type=int, help="iter_batch rows (1,000,000; 50,000)")
    parser.add_argument("--cli-runs", type=int, help="runs of each command (15; quick 5)")
    parser.add_argument(
        "--endpoint", choices=ENDPOINTS, default="completions", help="the CPU part's endpoint"
    )
    options = parser.parse_args()
    sizes = dict(QUICK if options.quick else FULL)
    custom = {key: getattr(options, key) for key in sizes if getattr(options, key) is not None}
    sizes.update(custom)
    parts = options.only or PARTS
    mode = "quick" if options.quick else "full"
    name = "batches-partial" if custom or options.only else f"batches{'-quick' * options.quick}"
    if options.endpoint != "completions":
        name += f"-{options.endpoint}"
    # A SIGTERM (a CI timeout, `kill`) ends the run through the `finally` below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    report: dict[str, Any] = {
        "mode": mode,
        "sizes": sizes,
        "parts": parts,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "pinned": bool(pinned(0)),
        },
        "settings": {
            "concurrency": CONCURRENCY,
            "warmup_rows": WARMUP,
            "floor_pool": POOL,
            "capacity": CAPACITY,
            "latency_ms": LATENCY_MS,
            "max_rows_per_s": MAX_ROWS_PER_S,
            "fixed": FIXED,
            "bin_s": BIN_S,
        },
    }
    if "cpu" in parts or "iter" in parts:
        nginx = Nginx()
        try:
            if "cpu" in parts:
                measured = cpu_rounds(nginx, sizes["rounds"], sizes["rows"], options.endpoint)
                report["cpu"] = {
                    "endpoint": options.endpoint,
                    "rounds": measured,
                    "summary": cpu_summary(measured),
                }
            if "iter" in parts:
                report["iter"] = iter_run(nginx, sizes["iter_rows"])
                print("iter_batch done", file=sys.stderr)
        finally:
            nginx.stop()
    if "goodput" in parts:
        report["goodput"] = {setup: goodput_setup(sizes["goodput_rows"], setup) for setup in SETUPS}
        print("goodput done", file=sys.stderr)
    if "cli" in parts:
        report["cli"] = {"runs": sizes["cli_runs"], **cli_run(sizes["cli_runs"])}
    checks = targets(report)
    report["targets"] = [
        {"target": t, "measured": m, "limit": limit, "holds": ok} for t, m, limit, ok in checks
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    if "goodput" in report:
        chart(report, RESULTS / f"{name}.png")
    print(tables(report))
    print()
    for target, value, limit, holds in checks:
        print(f"{'PASS' if holds else 'MISS'}  {target}: {value:.3f} (limit {limit:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
