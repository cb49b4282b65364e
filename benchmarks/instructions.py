"""Instructions per request under callgrind: a repeatable complement to CPU time.

    python benchmarks/instructions.py [--concurrency 64 256] [--clients floor emissary]
    python benchmarks/instructions.py --batch embeddings   # batches.py's CPU part, per row

CPU time on a shared VM moves by about ±10 % between runs; instruction counts do not.
Each client runs `clients.py` twice under ``valgrind --tool=callgrind`` against a private
nginx (500 and 2,500 requests), and the difference over 2,000 requests is the cost of one
request with start-up and imports cancelled out. The same runs count the objects
allocated per request that the cyclic garbage collector tracks (calls of CPython's
``_PyObject_GC_Link``): what drives how often it runs. Needs valgrind and nginx; takes
about a minute per client and concurrency.

With ``--batch ENDPOINT`` it runs `batches.py`'s CPU children instead (the floor's
``gather``, async and sync ``batch``, c64) at 2,000 and 20,000 rows: the cost of a row at
the size whose collector work the CPU part measures (about 10 minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import HERE, ROOT, Nginx

GC_LINK = "_PyObject_GC_Link"
"""CPython's hook for every new object the cyclic collector tracks."""


def instructions(
    nginx: Nginx, client: str, requests: int, concurrency: int, hash_seed: int
) -> tuple[int, int]:
    """(instructions, tracked objects allocated) for one run of `requests` requests."""
    command = [
        str(HERE / "clients.py"), client, "async", "--url", nginx.url,
        "--requests", str(requests), "--concurrency", str(concurrency),
    ]  # fmt: skip
    return counted(command, client, hash_seed)


def batch_instructions(
    nginx: Nginx, kind: str, rows: int, endpoint: str, hash_seed: int
) -> tuple[int, int]:
    """(instructions, tracked objects allocated) for one `batches.py` CPU child of `rows`."""
    command = [
        str(HERE / "batches.py"), "child", kind, "--url", nginx.url, "--rows", str(rows),
        "--endpoint", endpoint,
    ]  # fmt: skip
    return counted(command, kind, hash_seed)


def counted(command: list[str], client: str, hash_seed: int, cwd: Path = ROOT) -> tuple[int, int]:
    """Run ``python COMMAND`` under callgrind (in `cwd`): its (instructions, tracked
    objects)."""
    # A fixed hash seed: dict and set layouts (and so the work) are then the same every run.
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             *command],
            capture_output=True, text=True, cwd=cwd, check=True, env=env,
        )  # fmt: skip
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if match is None:
            raise SystemExit(f"no callgrind total for {client}:\n{proc.stderr[-2000:]}")
        return int(match.group(1)), calls_of(out, GC_LINK)


def calls_of(profile: Path, function: str) -> int:
    """How often `function` was called, summed over its callers in a callgrind profile."""
    names: dict[str, str] = {}  # callgrind names a function once, then by "(id)" alone
    total, callee = 0, None
    with open(profile) as lines:
        for line in lines:
            if line.startswith(("fn=", "cfn=")):
                ident, _, name = line.partition("=")[2].strip().partition(" ")
                if name:
                    names[ident] = name
                if line.startswith("cfn="):
                    callee = names.get(ident)
            elif line.startswith("calls=") and callee == function:
                total += int(line[6:].split()[0])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--clients", nargs="+", default=["floor", "emissary"])
    parser.add_argument("--hash-seed", type=int, default=0, help="PYTHONHASHSEED for each run")
    parser.add_argument(
        "--batch", choices=["completions", "embeddings"], help="batches per row instead"
    )
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    nginx = Nginx()
    try:
        if options.batch is not None:
            per_row: dict[str, tuple[float, float]] = {}
            for kind in ("floor", "async", "sync"):
                low = batch_instructions(nginx, kind, 2000, options.batch, options.hash_seed)
                high = batch_instructions(nginx, kind, 20000, options.batch, options.hash_seed)
                per_row[kind] = ((high[0] - low[0]) / 18000, (high[1] - low[1]) / 18000)
            for kind, (count, tracked) in per_row.items():
                print(
                    f"{options.batch} batch c64 {kind}: {count:,.0f} instructions/row "
                    f"×{count / per_row['floor'][0]:.3f}, {tracked:.1f} GC-tracked objects/row"
                )
            return 0
        for concurrency in options.concurrency:
            per_request: dict[str, tuple[float, float]] = {}
            for client in options.clients:
                low = instructions(nginx, client, 500, concurrency, options.hash_seed)
                high = instructions(nginx, client, 2500, concurrency, options.hash_seed)
                per_request[client] = ((high[0] - low[0]) / 2000, (high[1] - low[1]) / 2000)
            floor = per_request.get("floor")
            for client, (count, tracked) in per_request.items():
                ratio = f" ×{count / floor[0]:.3f}" if floor else ""
                print(
                    f"c{concurrency} {client}: {count:,.0f} instructions/request{ratio}, "
                    f"{tracked:.1f} GC-tracked objects allocated/request"
                )
    finally:
        nginx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
