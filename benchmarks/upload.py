"""Uploading a big file: memory, throughput and CPU, against raw aiohttp streaming it.

    python benchmarks/upload.py             # a 1 GiB file, 7 rounds (about 40 s)
    python benchmarks/upload.py --quick     # 128 MiB, 1 round

The server is the bundled emulator, on a thread of this driver process pinned to CPU 1 (it
parses each multipart upload as it streams and hashes its file). Each client runs in a fresh process
pinned to CPU 0 and uploads the same file (random bytes, in the page cache after a first
read) once:

- ``floor``: raw aiohttp, a `aiohttp.FormData` with the open file as its ``file`` part
  (aiohttp streams a file object from a worker thread), POSTed to ``datasets.create``;
- ``emissary``: ``client.datasets.upload(project_id=..., file=path)``.

Each reports the wall time (throughput: file bytes per second), the process's CPU time
(user + system, all threads) and its peak RSS growth over the upload (``ru_maxrss`` after,
less the RSS just before). Every upload is checked: the emulator's record of it has the
file's size and SHA-256, or the run is void. Rounds interleave the clients; ratios are to
the floor of the same round, then the median. Targets (issue: "From data to a deployed
model"): peak RSS growth ≤ 40 MB, throughput ≥ 0.9 and CPU ≤ 1.1 times the floor's.

Writes ``benchmarks/results/upload.json`` (``--quick``: ``upload-quick.json``) and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import HERE, ROOT, pinned

RESULTS = HERE / "results"
LIMITS = {"rss_mb": 40.0, "throughput": 0.9, "cpu": 1.1}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def floor_upload(url: str, key: str, project: str, path: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with open(path, "rb") as file:  # noqa: ASYNC230 (as a user's code would)
            form = aiohttp.FormData()
            form.add_field("file", file, filename="data.jsonl", content_type="application/jsonl")
            async with session.post(
                f"{url}/v1/projects/{project}/datasets",
                data=form,
                headers={"X-API-Key": key},
                timeout=aiohttp.ClientTimeout(total=None),
            ) as response:
                await response.read()
                assert response.status == 201, response.status


async def emissary_upload(url: str, key: str, project: str, path: str) -> None:
    from emissary import AsyncEmissaryClient

    async with AsyncEmissaryClient(api_key=key, server_url=url) as client:
        await client.datasets.upload(project_id=project, file=path, filename="data.jsonl")


def child(argv: list[str]) -> None:
    """``upload.py child CLIENT URL KEY PROJECT PATH``: one upload, one JSON line."""
    client, url, key, project, path = argv
    run = floor_upload if client == "floor" else emissary_upload
    import aiohttp  # noqa: F401  (imported before the measure, by both)

    if client == "emissary":
        import anyio.to_thread  # noqa: F401  (what it reads the file with)

        import emissary._async.client  # noqa: F401

    before = rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(run(url, key, project, path))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "rss_growth_mb": peak - before}), flush=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="128 MiB, one round")
    parser.add_argument("--rounds", type=int, help="rounds (7; quick 1)")
    options = parser.parse_args()
    size = (128 if options.quick else 1024) << 20
    rounds = options.rounds or (1 if options.quick else 7)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # this process, the emulator's, on CPU 1
    from emissary import EmissaryClient
    from emissary.testing import Emulator

    emulator = Emulator(max_upload_bytes=1 << 40, read_timeout_s=600)
    with emulator as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as admin:
        project = admin.projects.create().id
        assert project is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "data.jsonl"
            digest = hashlib.sha256()
            with open(path, "wb") as file:
                block = os.urandom(1 << 20)
                for index in range(size >> 20):
                    chunk = block[index % 7 :] + block[: index % 7]  # no two blocks alike
                    digest.update(chunk)
                    file.write(chunk)
            runs: list[dict[str, dict[str, Any]]] = []
            for number in range(rounds):
                order = ["floor", "emissary"] if number % 2 == 0 else ["emissary", "floor"]
                row = {}
                for client in order:
                    command = [*pinned(0), sys.executable, __file__, "child", client, emu.url]
                    done = subprocess.run(
                        [*command, emu.api_key, project, str(path)],
                        capture_output=True, text=True, timeout=900, cwd=ROOT,
                    )  # fmt: skip
                    if done.returncode != 0:
                        raise SystemExit(f"{client} failed:\n{done.stderr[-3000:]}")
                    row[client] = json.loads(done.stdout.strip().splitlines()[-1])
                    upload = emu.uploads[-1]  # the bytes the server got: the file's
                    if (upload.size, upload.sha256) != (size, digest.hexdigest()):
                        raise SystemExit(f"void: {client} sent {upload.size} other bytes")
                    print(f"round {number + 1} {client}: {row[client]}", file=sys.stderr)
                runs.append(row)
    summary = {
        "throughput": statistics.median(
            r["floor"]["wall_s"] / r["emissary"]["wall_s"] for r in runs
        ),
        "cpu": statistics.median(r["emissary"]["cpu_s"] / r["floor"]["cpu_s"] for r in runs),
        "rss_mb": max(r["emissary"]["rss_growth_mb"] for r in runs),
        "floor_rss_mb": max(r["floor"]["rss_growth_mb"] for r in runs),
    }
    for client in ("floor", "emissary"):
        summary[f"{client}_mib_s"] = statistics.median(
            size / r[client]["wall_s"] / 2**20 for r in runs
        )
        summary[f"{client}_cpu_s"] = statistics.median(r[client]["cpu_s"] for r in runs)
    report = {"python": platform.python_version(), "size": size, "runs": runs, "summary": summary}
    RESULTS.mkdir(exist_ok=True)
    name = "upload-quick.json" if options.quick else "upload.json"
    (RESULTS / name).write_text(json.dumps(report, indent=1))
    print(f"| {size >> 20} MiB upload | MiB/s | CPU s | peak RSS growth MB |")
    print("|---|---|---|---|")
    for client in ("floor", "emissary"):
        rate = summary[f"{client}_mib_s"]
        cpu = summary[f"{client}_cpu_s"]
        rss = max(r[client]["rss_growth_mb"] for r in runs)
        print(f"| {client} | {rate:.0f} | {cpu:.2f} | {rss:.1f} |")
    for what, value, limit, holds in (
        (
            "peak RSS growth MB",
            summary["rss_mb"],
            LIMITS["rss_mb"],
            summary["rss_mb"] <= LIMITS["rss_mb"],
        ),
        (
            "throughput vs floor",
            summary["throughput"],
            LIMITS["throughput"],
            summary["throughput"] >= LIMITS["throughput"],
        ),
        ("CPU vs floor", summary["cpu"], LIMITS["cpu"], summary["cpu"] <= LIMITS["cpu"]),
    ):
        print(f"{'PASS' if holds else 'MISS'}  {what}: {value:.3f} (limit {limit:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
