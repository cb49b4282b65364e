"""Platform operations: client CPU per call of a GET and a big list against the floor.

    python benchmarks/operations.py            # 7 rounds (about 3 min on 2 cores)
    python benchmarks/operations.py --quick    # 1 round, fewer calls (about 15 s)

nginx (Debian's, pinned to CPU 1) serves ``deployments.get`` (a `DeploymentDetail`),
``deployments.list`` (1,000 `DeploymentSummary`, 120 KB) and completions (as ``bench.py``).
Each measurement is a fresh client process pinned to CPU 0 running one scenario: the floor
(raw aiohttp + msgspec: a session, ``session.request``, the body encoded per call with
``msgspec.json.encode``, a `msgspec.json.Decoder` of the same model type) or emissary's
async client (``client.deployments.get(...)`` and so on), as many workers as calls in
flight, each making its calls one after another (as ``clients.py`` does), N calls after a
warm-up, ``process_time`` around them; every answer is checked. Rounds interleave the
clients (floor, emissary, then emissary, floor); the ratio is to the floor of the same
round, then the median. Targets (issue: "the whole platform"): every scenario ≤ 1.0 times
the floor.

CPU time on this shared VM moves by ±10 % between runs, so ``--instructions`` counts
instructions instead (as ``instructions.py`` does for completions): each client and scenario
runs twice under ``valgrind --tool=callgrind`` with a fixed hash seed (N and 3N calls), and
the difference over 2N calls is the cost of one call, start-up and imports cancelled out.

Writes ``benchmarks/results/operations.json`` (``--quick``: ``operations-quick.json``;
``--instructions``: ``operations-instructions.json``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import HERE, ROOT, free_port, pinned

RESULTS = HERE / "results"
PROJECT, DEPLOYMENT = "bench-project", "bench-deployment"
DETAIL = {
    "id": DEPLOYMENT,
    "name": "deployment-1",
    "description": "Deployment for my training job",
    "base_model": "Llama-3.2-1B-Instruct",
    "status": "Deployed",
    "training_id": "tr-12345",
    "checkpoint": 4,
    "created_at": 1633036800,
    "updated_at": 1633036800,
}
SUMMARIES = [
    {"id": f"dp-{i:06x}", "name": f"deployment-{i}", "status": "Deployed", "created_at": i}
    for i in range(1000)
]
COMPLETION = {"id": "cmpl-bench", "response": "Paris"}
PROMPT = "What is the capital of France?"
SCENARIOS = {
    # name: (operation, calls in flight)
    "get c1": ("get", 1),
    "get c64": ("get", 64),
    "list c1": ("list", 1),
    "list c16": ("list", 16),
    "completion c64": ("completion", 64),
}
CALLS = {"get": 20_000, "list": 1_500, "completion": 20_000}
QUICK_CALLS = {"get": 4_000, "list": 300, "completion": 4_000}
WARMUP = 200
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        location = /v1/projects/{project}/deployments/{deployment} {{ alias {dir}/detail.json; }}
        location = /v1/projects/{project}/deployments {{ alias {dir}/list.json; }}
        location / {{ return 200 '{completion}'; }}
    }}
}}
"""


class Nginx:
    """A private nginx serving the three answers, pinned to CPU 1."""

    def __init__(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is needed: apt-get install -y nginx")
        self.dir = Path(tempfile.mkdtemp(prefix="emissary-operations-"))
        self.dir.chmod(0o755)  # nginx's workers (another user) read the files in it
        (self.dir / "detail.json").write_text(json.dumps(DETAIL))
        (self.dir / "list.json").write_text(json.dumps(SUMMARIES))
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=self.dir,
                port=self.port,
                project=PROJECT,
                deployment=DEPLOYMENT,
                completion=json.dumps(COMPLETION),
            )
        )
        self.process = subprocess.Popen(
            [*pinned(1), binary, "-c", str(conf), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("nginx did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the child processes -----------------------------------------------------------------


async def floor_calls(url: str, operation: str, calls: int, in_flight: int) -> dict[str, Any]:
    """Raw aiohttp and msgspec: the same requests, decoded into the same model types."""
    import aiohttp
    import msgspec

    from emissary import models

    base = f"{url}/v1/projects/{PROJECT}/deployments"
    headers = {"X-API-Key": "k", "Accept": "application/json"}
    encode = msgspec.json.encode
    if operation == "get":
        decoder: Any = msgspec.json.Decoder(models.DeploymentDetail)
        target, method = f"{base}/{DEPLOYMENT}", "GET"
    elif operation == "list":
        decoder = msgspec.json.Decoder(list[models.DeploymentSummary])
        target, method = base, "GET"
    else:
        decoder = msgspec.json.Decoder(models.GetCompletionsFromDeploymentResponseBody)
        target, method = f"{base}/{DEPLOYMENT}/completions", "POST"
        headers = {**headers, "Content-Type": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def call() -> Any:
        data = encode({"prompt": PROMPT}) if method == "POST" else None
        async with session.request(method, target, data=data, headers=headers) as response:
            content = await response.read()
        assert response.status == 200
        return decoder.decode(content)

    try:
        return await timed(call, calls, in_flight)
    finally:
        await session.close()


async def emissary_calls(url: str, operation: str, calls: int, in_flight: int) -> dict[str, Any]:
    """emissary's async client, the public method of each operation."""
    from emissary import AsyncEmissaryClient

    async with AsyncEmissaryClient(api_key="k", server_url=url) as client:
        deployments = client.deployments

        async def call() -> Any:
            if operation == "get":
                return await deployments.get(project_id=PROJECT, deployment_id=DEPLOYMENT)
            if operation == "list":
                return await deployments.list(project_id=PROJECT)
            return await deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": PROMPT}
            )

        return await timed(call, calls, in_flight)


async def timed(call: Any, calls: int, in_flight: int) -> dict[str, Any]:
    """`calls` calls of `call` by `in_flight` workers, each making its share one after
    another (as ``clients.py`` does), after a warm-up; CPU and wall time, and every result
    checked."""

    async def worker(count: int, results: list[Any]) -> None:
        for _ in range(count):
            results.append(await call())

    async def run(n: int) -> list[Any]:
        results: list[Any] = []
        share, extra = divmod(n, in_flight)
        await asyncio.gather(*(worker(share + (i < extra), results) for i in range(in_flight)))
        return results

    check(await run(WARMUP))
    cpu, wall = time.process_time(), time.perf_counter()
    results = await run(calls)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    check(results)
    assert len(results) == calls
    return {"cpu_us_per_call": cpu / calls * 1e6, "calls_per_s": calls / wall}


def check(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, list):
            assert len(result) == 1000 and result[-1].created_at == 999
        elif hasattr(result, "status"):
            assert result.status == "Deployed" and result.checkpoint == 4
        else:
            assert result.response == "Paris"


def child(argv: list[str]) -> None:
    """``operations.py child CLIENT SCENARIO URL CALLS``: one JSON line."""
    client, scenario, url, calls = argv[0], argv[1], argv[2], int(argv[3])
    operation, in_flight = SCENARIOS[scenario]
    run = floor_calls if client == "floor" else emissary_calls
    print(json.dumps(asyncio.run(run(url, operation, calls, in_flight))), flush=True)


# --- the driver --------------------------------------------------------------------------


def measure(nginx: Nginx, client: str, scenario: str, calls: int) -> dict[str, Any]:
    command = [*pinned(0), sys.executable, __file__, "child", client, scenario, nginx.url]
    done = subprocess.run(
        [*command, str(calls)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{client} {scenario} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


INSTRUCTION_CALLS = {"get": 300, "list": 40, "completion": 300}
"""N for ``--instructions`` (the runs make N and 3N calls, plus the warm-up)."""


def instructions(nginx: Nginx, client: str, scenario: str, calls: int) -> int:
    """Instructions of one run of `client` in `scenario` under callgrind."""
    import os
    import re

    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                sys.executable, __file__, "child", client, scenario, nginx.url, str(calls),
            ],
            capture_output=True, text=True, timeout=900, cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{client} {scenario} under callgrind failed:\n{done.stderr[-3000:]}")
    return int(match.group(1))


def instruction_run() -> int:
    """``--instructions``: instructions per call of each client in each scenario."""
    nginx = Nginx()
    summary: dict[str, Any] = {}
    try:
        for scenario, (operation, _) in SCENARIOS.items():
            n = INSTRUCTION_CALLS[operation]
            row = {}
            for client in ("floor", "emissary"):
                low, high = (instructions(nginx, client, scenario, k) for k in (n, 3 * n))
                row[client] = (high - low) / (2 * n)
            row["ratio"] = row["emissary"] / row["floor"]
            summary[scenario] = row
            print(f"{scenario}: {row}", file=sys.stderr)
    finally:
        nginx.stop()
    RESULTS.mkdir(exist_ok=True)
    report = {"python": platform.python_version(), "calls": INSTRUCTION_CALLS, "summary": summary}
    (RESULTS / "operations-instructions.json").write_text(json.dumps(report, indent=1))
    print("| scenario | floor instructions/call | emissary | ratio |")
    print("|---|---|---|---|")
    for scenario, row in summary.items():
        print(
            f"| {scenario} | {row['floor']:,.0f} | {row['emissary']:,.0f} | ×{row['ratio']:.3f} |"
        )
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round, fewer calls")
    parser.add_argument("--rounds", type=int, help="rounds (7; quick 1)")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind"
    )
    options = parser.parse_args()
    if options.instructions:
        return instruction_run()
    rounds = options.rounds or (1 if options.quick else 7)
    counts = QUICK_CALLS if options.quick else CALLS
    nginx = Nginx()
    measured: dict[str, list[dict[str, dict[str, Any]]]] = {s: [] for s in SCENARIOS}
    try:
        for number in range(rounds):
            order = ["floor", "emissary"] if number % 2 == 0 else ["emissary", "floor"]
            for scenario, (operation, _) in SCENARIOS.items():
                calls = counts[operation]
                measured[scenario].append(
                    {client: measure(nginx, client, scenario, calls) for client in order}
                )
            print(f"round {number + 1}/{rounds} done", file=sys.stderr)
    finally:
        nginx.stop()
    summary: dict[str, Any] = {}
    for scenario, runs in measured.items():
        ratios = [r["emissary"]["cpu_us_per_call"] / r["floor"]["cpu_us_per_call"] for r in runs]
        summary[scenario] = {
            "floor_us": statistics.median(r["floor"]["cpu_us_per_call"] for r in runs),
            "emissary_us": statistics.median(r["emissary"]["cpu_us_per_call"] for r in runs),
            "ratio": statistics.median(ratios),
            "ratios": ratios,
        }
    report = {
        "python": platform.python_version(),
        "rounds": rounds,
        "calls": counts,
        "summary": summary,
        "runs": measured,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "operations-quick.json" if options.quick else "operations.json"
    (RESULTS / name).write_text(json.dumps(report, indent=1))
    print("| scenario | floor µs/call | emissary µs/call | ratio (median, min–max) |")
    print("|---|---|---|---|")
    for scenario, row in summary.items():
        low, high = min(row["ratios"]), max(row["ratios"])
        print(
            f"| {scenario} | {row['floor_us']:.0f} | {row['emissary_us']:.0f} | "
            f"×{row['ratio']:.3f} ({low:.3f}–{high:.3f}) |"
        )
    misses = [s for s, row in summary.items() if row["ratio"] > 1.0]
    for scenario, row in summary.items():
        verdict = "MISS" if scenario in misses else "PASS"
        print(f"{verdict}  {scenario}: ×{row['ratio']:.3f} (limit 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
