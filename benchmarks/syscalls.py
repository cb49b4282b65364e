"""System calls per request, by kind, under strace: where CPU time goes that callgrind misses.

    python benchmarks/syscalls.py [--concurrency 16] [--clients floor emissary]

Each client runs `clients.py` twice under ``strace -f -c`` against a private nginx (1,000
and 3,000 requests); the difference over 2,000 requests is what one request costs, with
start-up cancelled out. Needs strace (``apt-get install -y strace``) and nginx.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import HERE, ROOT, Nginx


def syscall_counts(nginx: Nginx, client: str, requests: int, concurrency: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "strace.txt"
        subprocess.run(
            [
                "strace", "-f", "-c", "-o", str(out),
                sys.executable, str(HERE / "clients.py"), client, "async", "--url", nginx.url,
                "--requests", str(requests), "--concurrency", str(concurrency),
            ],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        counts: dict[str, int] = {}
        for line in out.read_text().splitlines():
            fields = line.split()
            # "% time  seconds  usecs/call  calls  [errors]  syscall"
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1].isidentifier():
                counts[fields[-1]] = int(fields[3])
        return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--clients", nargs="+", default=["floor", "emissary"])
    options = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is needed: apt-get install -y strace")
    nginx = Nginx()
    try:
        for client in options.clients:
            low = syscall_counts(nginx, client, 1000, options.concurrency)
            high = syscall_counts(nginx, client, 3000, options.concurrency)
            per_request = {name: (count - low.get(name, 0)) / 2000 for name, count in high.items()}
            shown = sorted(
                ((n, v) for n, v in per_request.items() if v >= 0.01 and n != "total"),
                key=lambda item: -item[1],
            )
            total = per_request.get("total", sum(v for _, v in shown))
            detail = ", ".join(f"{name} {value:.2f}" for name, value in shown)
            print(f"c{options.concurrency} {client}: {total:.2f} system calls/request ({detail})")
    finally:
        nginx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
