"""A Ray Data pipeline of prompts through `emissary.integrations.ray.Completions`, against
the bundled emulator (a deployment serving 64 requests at once, 50 ms each):

    pip install '.[ray]'    # from a checkout; once published: 'emissary-python[ray]'
    python examples/ray_pipeline.py --rows 10000
    python examples/ray_pipeline.py --rows 10000 --endpoint chat  # or embeddings, classification

Prints the rows per second and the rows that failed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep a local Ray on loopback

import ray  # type: ignore[import-not-found, unused-ignore]

from emissary.integrations.ray import ChatCompletions, Classifications, Completions, Embeddings
from emissary.testing import Emulator

ENDPOINTS: dict[str, tuple[type, Callable[[int], dict[str, Any]]]] = {
    # Each endpoint's class, and row i's input columns (named as its request body's fields;
    # for chat, a prompt column is one user message).
    "completions": (
        Completions,
        lambda i: {"prompt": f"Summarise document {i}", "max_new_tokens": 8},
    ),
    "chat": (ChatCompletions, lambda i: {"prompt": f"Summarise document {i}", "max_new_tokens": 8}),
    "embeddings": (
        Embeddings,
        lambda i: {
            "source_sentence": f"document {i}",
            "target_sentence": "a query",
            "cosine": True,
        },
    ),
    "classification": (Classifications, lambda i: {"source_sentence": f"review {i}"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="completions")
    options = parser.parse_args()
    with Emulator(capacity=64, latency_ms=50) as emu:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            cls, make_row = ENDPOINTS[options.endpoint]
            prompts = ray.data.range(options.rows).map(lambda row: make_row(row["id"]))
            started = time.perf_counter()
            results = prompts.map_batches(
                cls,
                fn_constructor_kwargs={
                    "project_id": "demo-project",
                    "deployment_id": "demo-deployment",
                    "api_key": emu.api_key,
                    "server_url": emu.url,
                    "max_concurrency": 64 // options.actors,  # the deployment's capacity, split
                },
                # A fixed pool of actors, each with one client (Ray 2.51 deprecated
                # concurrency=N for this; compute= works on every Ray the extra allows).
                compute=ray.data.ActorPoolStrategy(size=options.actors),
                num_cpus=0.5,  # an actor mostly waits on the network: leave CPUs to reading
                batch_size=256,
            ).materialize()
            elapsed = time.perf_counter() - started
            failed = results.filter(lambda row: row["error"] is not None).count()
            print(
                f"{results.count()} rows in {elapsed:.1f} s: "
                f"{results.count() / elapsed:.0f} rows/s, {failed} failed"
            )
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
