"""Rows per second through Ray Data, next to one process's ``batch()`` and a naive UDF.

    python benchmarks/distributed.py [--rows 4000] [--naive-rows 600]

Against ``Emulator(capacity=64, latency_ms=50)`` (1,280 rows/s at most) on a thread of this
process, three ways to run the same prompts:

- ``batch()``: one process, ``EmissaryClient.batch(..., concurrency="auto")``;
- the integration: ``map_batches(emissary.integrations.ray.Completions)``, 2 actors, each
  with ``max_concurrency=32`` (the capacity split between them);
- a naive UDF, what users write today: ``map_batches`` with a callable class that calls
  ``create`` row after row (one client per actor, as a careful user would).

A local Ray (``ray.init(num_cpus=2)``) on loopback; its start-up is not timed. Needs the
``distributed`` extra: ``pip install -e '.[distributed]'``. Prints a markdown table and
writes ``results/distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray on loopback

import ray

from emissary import EmissaryClient
from emissary.integrations.ray import Completions
from emissary.testing import Emulator

HERE = Path(__file__).resolve().parent
PROJECT, DEPLOYMENT = "demo-project", "demo-deployment"
CAPACITY, LATENCY_MS = 64, 50.0
ACTORS = 2


class RowByRow:
    """The naive UDF: one client per actor, one ``create`` per row, in turn."""

    def __init__(self, api_key: str, server_url: str) -> None:
        self.client = EmissaryClient(api_key=api_key, server_url=server_url)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy

        responses = [
            self.client.deployments.completions.create(
                project_id=PROJECT,
                deployment_id=DEPLOYMENT,
                request_body={"prompt": str(prompt), "max_new_tokens": 8},
            ).response
            for prompt in batch["prompt"]
        ]
        return {**batch, "response": numpy.array(responses, dtype=object)}


def prompts(rows: int) -> list[dict[str, Any]]:
    return [{"prompt": f"Summarise document {i}", "max_new_tokens": 8} for i in range(rows)]


def one_process(emu: Emulator, rows: int) -> dict[str, Any]:
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        started = time.perf_counter()
        results = client.deployments.completions.batch(
            project_id=PROJECT, deployment_id=DEPLOYMENT, requests=prompts(rows)
        )
        elapsed = time.perf_counter() - started
    return {"rows": rows, "seconds": elapsed, "failed": sum(not r.ok for r in results)}


def through_ray(emu: Emulator, rows: int, udf: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    dataset = ray.data.from_items(prompts(rows)).materialize()
    started = time.perf_counter()
    out = dataset.map_batches(
        udf, fn_constructor_kwargs=kwargs, concurrency=ACTORS, num_cpus=0.5, batch_size=256
    ).materialize()
    elapsed = time.perf_counter() - started
    failed = (
        out.filter(lambda row: row.get("error") is not None).count() if udf is Completions else 0
    )
    return {"rows": out.count(), "seconds": elapsed, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=4000, help="rows for batch() and Completions")
    parser.add_argument("--naive-rows", type=int, default=600, help="rows for the naive UDF")
    options = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "emulator": {"capacity": CAPACITY, "latency_ms": LATENCY_MS},
    }
    try:
        for name, run in [
            ("batch() in one process", lambda emu: one_process(emu, options.rows)),
            (
                "Ray Data + Completions",
                lambda emu: through_ray(
                    emu,
                    options.rows,
                    Completions,
                    {
                        "project_id": PROJECT,
                        "deployment_id": DEPLOYMENT,
                        "api_key": emu.api_key,
                        "server_url": emu.url,
                        "max_concurrency": CAPACITY // ACTORS,
                    },
                ),
            ),
            (
                "Ray Data + naive UDF (create per row)",
                lambda emu: through_ray(
                    emu,
                    options.naive_rows,
                    RowByRow,
                    {"api_key": emu.api_key, "server_url": emu.url},
                ),
            ),
        ]:
            with Emulator(capacity=CAPACITY, latency_ms=LATENCY_MS) as emu:
                result = run(emu)
                result["max_in_flight"] = emu.max_in_flight
                result["answered_429"] = sum(r.fault == "over_capacity" for r in emu.requests)
            result["rows_per_s"] = result["rows"] / result["seconds"]
            report[name] = result
            print(name, json.dumps(result), flush=True)
    finally:
        ray.shutdown()
    capacity = CAPACITY / LATENCY_MS * 1000
    print(
        f"\n| {CAPACITY} x {LATENCY_MS:g} ms emulator ({capacity:,.0f} rows/s at most) "
        "| rows | rows/s | max in flight | 429s | failed |"
    )
    print("|---|---|---|---|---|---|")
    for name, result in report.items():
        if isinstance(result, dict) and "rows_per_s" in result:
            print(
                f"| {name} | {result['rows']:,} | {result['rows_per_s']:,.0f} | "
                f"{result['max_in_flight']} | {result['answered_429']} | {result['failed']} |"
            )
    ray_rate = report["Ray Data + Completions"]["rows_per_s"]
    one = report["batch() in one process"]["rows_per_s"]
    naive = report["Ray Data + naive UDF (create per row)"]["rows_per_s"]
    report["ratios"] = {"batch_over_ray": one / ray_rate, "ray_over_naive": ray_rate / naive}
    print(
        f"\nbatch() / Ray integration: x{one / ray_rate:.2f} (target <= 2); "
        f"Ray integration / naive UDF: x{ray_rate / naive:.1f}"
    )
    (HERE / "results" / "distributed.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
