"""``iter_batch(ordered=True)`` against unordered, with 10 % of requests failing at random.

    python benchmarks/ordered.py            # 3,000 rows each, 32 in flight

Against ``Emulator(latency_ms=20)`` with ``faults.at_random(0.10)`` (a 503, a dropped
connection or a truncated body, each retried after its backoff), both orders on the same
seed. A retrying row must not hold up the rows behind it: ordered results wait in memory
(bounded by ``REORDER_BUFFER_BYTES``), not in the window of rows in flight. Figures in
``benchmarks/README.md``.
"""

from __future__ import annotations

import asyncio
import time

from emissary import AsyncEmissaryClient
from emissary.testing import Emulator

ROWS, CONCURRENCY, FAULT_RATE = 3_000, 32, 0.10


async def rows_per_s(ordered: bool) -> tuple[float, int]:
    """Rows/s of one batch (and how many succeeded)."""
    async with Emulator(latency_ms=20) as emu:
        emu.faults.at_random(FAULT_RATE, seed=1)
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            started, ok = time.perf_counter(), 0
            async for result in client.deployments.completions.iter_batch(
                project_id="demo-project",
                deployment_id="demo-deployment",
                requests=({"prompt": f"row {i}"} for i in range(ROWS)),
                concurrency=CONCURRENCY,
                ordered=ordered,
            ):
                ok += result.ok
            return ROWS / (time.perf_counter() - started), ok


def main() -> None:
    for ordered in (False, True):
        rate, ok = asyncio.run(rows_per_s(ordered))
        print(f"{'ordered' if ordered else 'unordered'}: {rate:.0f} rows/s ({ok} of {ROWS} ok)")


if __name__ == "__main__":
    main()
