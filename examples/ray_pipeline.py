"""A Ray Data pipeline of prompts through `emissary.integrations.ray.Completions`, against
the bundled emulator (a deployment serving 64 requests at once, 50 ms each):

    pip install '.[ray]'    # from a checkout; once published: 'emissary-python[ray]'
    python examples/ray_pipeline.py --rows 10000

Prints the rows per second and the rows that failed.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep a local Ray on loopback

import ray  # type: ignore[import-not-found, unused-ignore]

from emissary.integrations.ray import Completions
from emissary.testing import Emulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=2)
    options = parser.parse_args()
    with Emulator(capacity=64, latency_ms=50) as emu:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            prompts = ray.data.range(options.rows).map(
                lambda row: {"prompt": f"Summarise document {row['id']}", "max_new_tokens": 8}
            )
            started = time.perf_counter()
            results = prompts.map_batches(
                Completions,
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
