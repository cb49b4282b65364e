"""What the features of the request path cost: CPU per request of emissary's variants.

    python benchmarks/features.py [--rounds 7] [--requests 8000] [--concurrency 64]

Run it with a Python that has ``opentelemetry-sdk`` installed (the test extra brings it).
Variants, each a fresh process pinned to CPU 0 against the private nginx on CPU 1, rounds
interleaved (A B C D, then D C B A):

- ``emissary-notrace``: tracing off, the cost when opentelemetry is not installed;
- ``emissary``: opentelemetry-api installed, no tracer provider (spans are not recorded);
- ``emissary-otel``: an SDK provider exporting every span to memory;
- ``emissary-raw``: ``with_raw_response.create``, tracing off (like ``emissary-notrace``).

Prints the median µs per request of each, and its ratio to ``emissary-notrace`` measured
in the same round.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench import Nginx, measure

VARIANTS = ["emissary-notrace", "emissary", "emissary-otel", "emissary-raw"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=64)
    options = parser.parse_args()
    nginx = Nginx()
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    micros: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for number in range(options.rounds):
            order = VARIANTS if number % 2 == 0 else VARIANTS[::-1]
            cost = {}
            for variant in order:
                result = measure(
                    nginx, sys.executable, variant, f"async{options.concurrency}", options.requests
                )
                cost[variant] = result["cpu_s"] / options.requests * 1e6
            for variant in VARIANTS:
                micros[variant].append(cost[variant])
                ratios[variant].append(cost[variant] / cost["emissary-notrace"])
            print(f"round {number + 1}/{options.rounds} done", file=sys.stderr)
    finally:
        nginx.stop()
    print(f"async c{options.concurrency}, {options.requests} requests, {options.rounds} rounds:")
    for variant in VARIANTS:
        print(
            f"  {variant:18} {statistics.median(micros[variant]):6.1f} µs/request  "
            f"×{statistics.median(ratios[variant]):.3f} of emissary-notrace "
            f"(rounds {min(ratios[variant]):.3f}–{max(ratios[variant]):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
