"""The sync facade's thread hop alone: ``python benchmarks/handoff.py``.

Runs a trivial coroutine N times through (a) emissary's `LoopThread.run` and (b) anyio's
blocking portal (`start_blocking_portal().call`), and prints CPU and wall µs per call and the
context switches per call (voluntary: a thread blocked; involuntary: a thread was preempted,
here mostly by the thread it just woke). This is the measurement behind the choice of the
private-loop mechanism (issue #4).
"""

from __future__ import annotations

import argparse
import json
import resource
import time


async def nothing() -> int:
    return 1


def measure(run: object, n: int) -> dict[str, float]:
    call = run  # type: ignore[assignment]
    for _ in range(500):
        call()  # type: ignore[operator]
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()  # type: ignore[operator]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_us": cpu / n * 1e6,
        "wall_us": wall / n * 1e6,
        "voluntary_switches": (after.ru_nvcsw - before.ru_nvcsw) / n,
        "involuntary_switches": (after.ru_nivcsw - before.ru_nivcsw) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20_000)
    n = parser.parse_args().n
    from anyio.from_thread import start_blocking_portal

    from emissary._loop import LoopThread

    results = {}
    loop = LoopThread()
    results["emissary LoopThread.run"] = measure(lambda: loop.run(nothing), n)
    loop.stop()
    with start_blocking_portal() as portal:
        results["anyio portal.call"] = measure(lambda: portal.call(nothing), n)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
