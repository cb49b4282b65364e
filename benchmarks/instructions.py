"""Instructions per request under callgrind: a repeatable complement to CPU time.

    python benchmarks/instructions.py [--concurrency 64 256] [--clients floor emissary]

CPU time on a shared VM moves by about ±10 % between runs; instruction counts do not.
Each client runs `clients.py` twice under ``valgrind --tool=callgrind`` against a private
nginx (500 and 2,500 requests), and the difference over 2,000 requests is the cost of one
request with start-up and imports cancelled out. Needs valgrind and nginx; takes about a
minute per client and concurrency.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

from bench import HERE, ROOT, Nginx


def instructions(nginx: Nginx, client: str, requests: int, concurrency: int, hash_seed: int) -> int:
    # A fixed hash seed: dict and set layouts (and so the work) are then the same every run.
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    proc = subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, str(HERE / "clients.py"), client, "async", "--url", nginx.url,
            "--requests", str(requests), "--concurrency", str(concurrency),
        ],
        capture_output=True, text=True, cwd=ROOT, check=True, env=env,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise SystemExit(f"no callgrind total for {client}:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--clients", nargs="+", default=["floor", "emissary"])
    parser.add_argument("--hash-seed", type=int, default=0, help="PYTHONHASHSEED for each run")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    nginx = Nginx()
    try:
        for concurrency in options.concurrency:
            per_request = {}
            for client in options.clients:
                low = instructions(nginx, client, 500, concurrency, options.hash_seed)
                high = instructions(nginx, client, 2500, concurrency, options.hash_seed)
                per_request[client] = (high - low) / 2000
            floor = per_request.get("floor")
            for client, count in per_request.items():
                ratio = f" ×{count / floor:.3f}" if floor else ""
                print(f"c{concurrency} {client}: {count:,.0f} instructions/request{ratio}")
    finally:
        nginx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
