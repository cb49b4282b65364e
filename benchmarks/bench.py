"""Client CPU per request, side by side, against a local nginx: ``python benchmarks/bench.py``.

    python benchmarks/bench.py --quick   # floor and emissary only, a few seconds (CI)
    python benchmarks/bench.py           # every client, each in its own virtualenv
    python benchmarks/bench.py --clients floor emissary --rounds 9   # a subset
    python benchmarks/bench.py --clients floor emissary --python python3.13   # another Python
    python benchmarks/bench.py --clients floor emissary --gc-threshold 2000   # GC tuned
    python benchmarks/bench.py --clients floor emissary --pool 64   # 64 connections, not 100
    python benchmarks/bench.py --quick --scenarios https64   # only the TLS scenario

nginx (Debian package) runs with a generated config on a free port, one worker, answering
``return 200`` with a fixed JSON body, pinned to CPU 1; each measurement is a fresh client
process pinned to CPU 0 (``clients.py``). Rounds interleave the clients (A B A B ...), and
each result is compared with the floor (raw aiohttp + msgspec) measured in the same round.
Every response is checked by the client, and nginx's request count must equal the client's
successes, or the run is void. Results: ``benchmarks/results/<mode>.json``, a Markdown table
on stdout and, in a full run, a chart beside the JSON (``full.png``; a full run with
``--python`` writes ``full-py3.13.json`` and ``full-py3.13.png``).

Each timed measurement also counts the garbage collector's runs: up to Python 3.12 the
generation-0 threshold is 700 tracked objects, which aiohttp's per-request objects stay
under at 64 requests in flight but not at 100 or more, so at 256 the collector runs about
every 100 requests, for every aiohttp-based client alike. ``--gc-threshold`` shows what that
costs: it sets the threshold in every client process (3.13 made it 2,000).

nginx also serves the same body over TLS on a second port, with a certificate for 127.0.0.1
from a CA made with ``openssl`` at start-up: ``https64`` times the floor and emissary at 64
in flight over it (issue: emissary within 1.15 times the floor), each client trusting that
CA alone (``--ca-file``), connections kept alive as over plain HTTP.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
VENVS = HERE / ".venvs"
BODY = json.dumps(
    {
        "id": "cmpl-bench",
        "response": "Paris",
        "object": "text_completion",
        "created": 0,
        "model": "m",
        "choices": [{"text": "Paris", "index": 0, "finish_reason": "stop", "logprobs": None}],
    }
)
EMBEDDING_DIMENSIONS = 384
"""A sentence embedding's size (MiniLM's, a common sentence-transformer)."""
EMBEDDINGS_BODY = json.dumps(
    {
        "id": "emb-bench",
        "response": {
            "embeddings": {
                "text1": [round(math.sin(i) / 7, 7) for i in range(EMBEDDING_DIMENSIONS)],
                "text2": [round(math.cos(i) / 7, 7) for i in range(EMBEDDING_DIMENSIONS)],
            },
            "cosine_score": 0.5,
        },
    }
)
"""nginx's answer to an embeddings request: two 384-float vectors and a score (7.8 KB)."""
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    log_format bench '$status';
    access_log {dir}/access.log bench;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{  # plain HTTP and the same over TLS
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:bench:1m;
        ssl_session_timeout 1h;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
        location ~ /embeddings$ {{
            error_page 405 =200 /embeddings.json;  # answered with the file (too long for
            return 405;  # a `return`'s text, which nginx caps at 4 KB)
        }}
        location = /embeddings.json {{
            internal;
            default_type application/json;
            root {dir}/static;
        }}
    }}
}}
"""
SERVER_EXTENSIONS = """
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
"""The server certificate's extensions: what Python 3.13's strict verification
(``VERIFY_X509_STRICT``) requires of a leaf, valid for the IP address the clients dial."""
# (client, scenario) pairs; "async16" means 16 requests in flight, "https64" 64 over TLS.
FULL = {
    "floor": ["async1", "async16", "async64", "async256", "https64", "cold", "memory"],
    "emissary": ["sync", "async1", "async16", "async64", "async256", "https64", "cold", "memory"],
    "generated": ["sync", "async1", "async16", "async64", "async256", "cold"],
    "openai": ["sync", "async1", "async16", "async64", "async256", "cold"],
    "openai-aiohttp": ["async1", "async16", "async64", "async256"],
}
QUICK = {
    "floor": ["async1", "async64", "async256", "https64", "cold"],
    "emissary": ["sync", "async64", "async256", "https64", "cold"],
}
SLOW = {"generated": 0.2, "openai": 0.4}  # fewer requests for slow clients (per-request CPU)
VENV_PACKAGES = {
    "emissary": ["-e", str(ROOT), "matplotlib"],
    "generated": ["emissary-client-sdk==0.4.4"],
    "openai": ["openai[aiohttp]"],
}
VENV_OF = {"floor": "emissary", "emissary": "emissary", "generated": "generated",
           "openai": "openai", "openai-aiohttp": "openai"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    """A taskset prefix pinning to `cpu` (nothing when there is one CPU or no taskset)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def make_certificates(directory: Path) -> Path:
    """A throw-away CA (``ca.pem``) and a server certificate for 127.0.0.1 signed by it
    (``server.pem``, ``server.key``) in `directory`, made with the ``openssl`` command
    (ECDSA P-256, valid for two days); returns the CA's path, the file clients trust."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl is needed for the TLS scenario: apt-get install -y openssl")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    extensions = directory / "server.ext"
    extensions.write_text(SERVER_EXTENSIONS)
    commands = [
        [openssl, "req", "-x509", *key, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=emissary bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *key, "-keyout", directory / "server.key",
         "-out", directory / "server.csr", "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", directory / "server.csr", "-CA", ca, "-CAkey", ca_key,
         "-set_serial", "2", "-days", "2", "-extfile", extensions,
         "-out", directory / "server.pem"],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"openssl failed: {' '.join(map(str, command))}\n{done.stderr}")
    return ca


class Nginx:
    """A private nginx instance for the run: plain HTTP on `port`, and the same over TLS on
    `tls_port` with a certificate from the CA at `ca_file`, made for this instance."""

    def __init__(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is needed: apt-get install -y nginx")
        self.dir = Path(tempfile.mkdtemp(prefix="emissary-bench-"))
        try:
            self.ca_file = make_certificates(self.dir)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        static = self.dir / "static"  # readable by nginx's workers (not root's own)
        static.mkdir()
        (static / "embeddings.json").write_text(EMBEDDINGS_BODY)
        os.chmod(self.dir, 0o711)
        os.chmod(static, 0o755)
        os.chmod(static / "embeddings.json", 0o644)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=self.dir,
                port=self.port,
                tls_port=self.tls_port,
                body=BODY,
            )
        )
        self.log = self.dir / "access.log"
        self.process = subprocess.Popen(
            [*pinned(1), binary, "-c", str(conf), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        waiting = [self.port, self.tls_port]
        while waiting and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        if waiting:
            log = self.dir / "error.log"
            errors = log.read_text() if log.exists() else "(no error log)"
            self.stop()
            raise SystemExit(f"nginx did not start: {errors}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def requests_served(self) -> int:
        with open(self.log, "rb") as log:
            return sum(1 for _ in log)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def python_for(client: str, quick: bool, base: str | None = None) -> str:
    """The interpreter of `client`'s own virtualenv (created on first use), made from `base`
    (this interpreter by default; another one gets its own virtualenvs)."""
    if quick:
        return base or sys.executable
    name = VENV_OF[client]
    path = VENVS / name
    if base is not None:
        version = subprocess.run(
            [base, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        path = VENVS / f"{name}-py{version}"
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating virtualenv {path} ...", file=sys.stderr)
        if base is None:
            venv.create(path, with_pip=True)
        else:
            subprocess.run([base, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *VENV_PACKAGES[name]], check=True
        )
    return str(python)


def byte_compile(python: str) -> None:
    """Byte-compile the checkout, as pip does when it installs a wheel: run from an editable
    install with PYTHONDONTWRITEBYTECODE set, emissary would be recompiled from source at
    every start, which measures the compiler (about 15 ms), not the package."""
    subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "emissary")], check=True)


def measure(
    nginx: Nginx,
    python: str,
    client: str,
    scenario: str,
    requests: int,
    gc_threshold: int | None = None,
    pool: int | None = None,
) -> dict[str, Any]:
    """Run `client` in `scenario` once, in a fresh process, and check its successes against
    nginx's log: ``asyncN`` is N requests in flight over plain HTTP, ``httpsN`` the same over
    TLS (the client trusting nginx's CA alone), other scenarios are ``clients.py``'s own."""
    tls = scenario.startswith("https")
    concurrent = tls or scenario.startswith("async")
    kind = "async" if concurrent else scenario
    url = nginx.tls_url if tls else nginx.url
    args = [*pinned(0), python, str(HERE / "clients.py"), client, kind, "--url", url]
    if tls:
        args += ["--ca-file", str(nginx.ca_file)]
    if gc_threshold is not None:
        args += ["--gc-threshold", str(gc_threshold)]
    if pool is not None:
        args += ["--pool", str(pool)]
    if concurrent:
        args += ["--concurrency", scenario.removeprefix("https").removeprefix("async")]
    if scenario == "memory":
        args += ["--concurrency", "64"]
    args += ["--requests", str(requests)]
    before = nginx.requests_served()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{client} {scenario} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    time.sleep(0.05)  # let nginx's last log lines land
    served = nginx.requests_served() - before
    if served != result["successes"]:
        raise SystemExit(
            f"void: {client} {scenario} reported {result['successes']} successes, "
            f"nginx served {served}"
        )
    if "cpu_s" in result:
        measured = result["successes"] - 200
        result["cpu_us_per_req"] = result["cpu_s"] / measured * 1e6
        result["req_per_s"] = measured / result["wall_s"]
        result["gc_per_1k_req"] = sum(result["gc"]) / measured * 1000
        result["gc_us_per_req"] = sum(result["gc_s"]) / measured * 1e6
        result["gc_found_total"] = sum(result["gc_found"])
    return result


def summarise(rounds: list[dict[tuple[str, str], dict[str, Any]]]) -> dict[str, Any]:
    """Medians (min-max) per (client, scenario), and ratios to the floor of the same round."""
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for results in rounds:
        for (client, scenario), result in results.items():
            row = values[(client, scenario)]
            if "cpu_us_per_req" in result:
                row["cpu_us_per_req"].append(result["cpu_us_per_req"])
                row["req_per_s"].append(result["req_per_s"])
                row["gc_per_1k_req"].append(result["gc_per_1k_req"])
                row["gc_us_per_req"].append(result["gc_us_per_req"])
                row["gc_found"].append(result["gc_found_total"])
                base = results.get(("floor", scenario if scenario != "sync" else "async1"))
                if base is not None:
                    row["ratio"].append(result["cpu_us_per_req"] / base["cpu_us_per_req"])
            if "cold_s" in result:
                row["cold_ms"].append(result["cold_s"] * 1000)
                base = results.get(("floor", "cold"))
                if base is not None:
                    row["ratio"].append(result["cold_s"] / base["cold_s"])
            if "rss_late_kb" in result:
                row["rss_growth_mb"].append((result["rss_late_kb"] - result["rss_early_kb"]) / 1024)
                row["rss_late_mb"].append(result["rss_late_kb"] / 1024)
            row["peak_rss_mb"].append(result["peak_rss_kb"] / 1024)
    summary: dict[str, Any] = {}
    for (client, scenario), row in values.items():
        summary[f"{client}/{scenario}"] = {
            metric: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v}
            for metric, v in row.items()
        }
    return summary


def targets(summary: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(target, measured, limit, holds) for issue #4's targets that this run measured."""
    checks: list[tuple[str, float, float, bool]] = []

    def median(key: str, metric: str) -> float | None:
        entry = summary.get(key, {}).get(metric)
        return None if entry is None else float(entry["median"])

    for level in ("16", "64", "256"):
        ratio = median(f"emissary/async{level}", "ratio")
        if ratio is not None:
            checks.append((f"async c{level} CPU/req vs floor", ratio, 1.15, ratio <= 1.15))
    ratio = median("emissary/https64", "ratio")
    if ratio is not None:
        checks.append(("async c64 https CPU/req vs floor https", ratio, 1.15, ratio <= 1.15))
    ratio = median("emissary/sync", "ratio")
    if ratio is not None:
        checks.append(("sync sequential CPU/req vs floor async c1", ratio, 1.5, ratio <= 1.5))
    ratio = median("emissary/cold", "ratio")
    if ratio is not None:
        checks.append(("import + client vs import aiohttp + session", ratio, 1.2, ratio <= 1.2))
    high = summary.get("emissary/async256", {}).get("req_per_s")
    mid = summary.get("emissary/async64", {}).get("req_per_s")
    if high is not None and mid is not None:  # paired within each round, like the ratios
        ratio = statistics.median(h / m for h, m in zip(high["all"], mid["all"], strict=True))
        checks.append(("throughput c256 / c64 (median of rounds)", ratio, 0.9, ratio >= 0.9))
    growth = median("emissary/memory", "rss_growth_mb")
    if growth is not None:
        checks.append(("RSS growth 10k -> 100k calls (MB)", growth, 5.0, growth <= 5.0))
    return checks


TIMED = ["sync", "async1", "async16", "async64", "async256", "https64"]
"""The scenarios measured in CPU per request, as table and chart columns (``https64``: 64
in flight over TLS, its ratio against the floor over TLS)."""


def markdown(corner: str, columns: list[str], rows: dict[str, list[str]]) -> str:
    """A Markdown table: one row per client."""
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return "\n".join(lines)


def table(summary: dict[str, Any], plan: dict[str, list[str]]) -> str:
    """CPU per request (median, min-max, ratio to the floor), cold start and peak RSS."""
    rows: dict[str, list[str]] = {}
    for client in plan:
        cells = []
        for scenario in TIMED:
            entry = summary.get(f"{client}/{scenario}")
            if entry is None:
                cells.append("–")
                continue
            cpu, ratio = entry["cpu_us_per_req"], entry.get("ratio")
            text = f"{cpu['median']:.0f} ({cpu['min']:.0f}–{cpu['max']:.0f})"
            if ratio is not None:
                text += f" ×{ratio['median']:.2f}"
            cells.append(text)
        cold = summary.get(f"{client}/cold", {}).get("cold_ms")
        rss = summary.get(f"{client}/async64", {}).get("peak_rss_mb")
        cells.append(f"{cold['median']:.0f}" if cold else "–")
        cells.append(f"{rss['median']:.0f}" if rss else "–")
        rows[client] = cells
    return markdown("client", [*TIMED, "cold start ms", "peak RSS MB"], rows)


def gc_table(summary: dict[str, Any], plan: dict[str, list[str]]) -> str:
    """Garbage collections (all generations) per 1,000 requests and the CPU µs per request
    they took (part of the CPU figures above), median of rounds; and the most garbage
    (unreachable objects) they found in any one measurement."""
    rows: dict[str, list[str]] = {}
    for client in plan:
        cells = []
        for scenario in TIMED:
            entry = summary.get(f"{client}/{scenario}", {})
            runs, took = entry.get("gc_per_1k_req"), entry.get("gc_us_per_req")
            found = entry.get("gc_found")
            if runs is None or took is None or found is None:
                cells.append("–")
            else:
                cells.append(
                    f"{runs['median']:.1f} runs, {took['median']:.1f} µs, {found['max']:.0f} found"
                )
        rows[client] = cells
    return markdown("GC per 1,000 requests, µs per request, garbage found", TIMED, rows)


def chart(summary: dict[str, Any], plan: dict[str, list[str]], path: Path, python: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = TIMED
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(plan)
    for index, client in enumerate(plan):
        xs, ys = [], []
        for position, scenario in enumerate(scenarios):
            entry = summary.get(f"{client}/{scenario}")
            if entry is not None:
                xs.append(position + index * width)
                ys.append(entry["cpu_us_per_req"]["median"])
        ax.bar(xs, ys, width, label=client)
    ax.set_xticks([p + 0.4 - width / 2 for p in range(len(scenarios))], scenarios)
    ax.set_yscale("log")
    ax.set_ylabel("client CPU µs per request (log)")
    ax.set_title(
        f"Client CPU per request against local nginx, Python {python} "
        "(median of rounds; lower is better)"
    )
    ax.set_ylim(top=ax.get_ylim()[1] * 3)  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=len(plan))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="floor and emissary only (CI)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (quick 3, full 7)")
    parser.add_argument("--requests", type=int, help="requests per measurement")
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument("--clients", nargs="+", choices=sorted(FULL), help="only these clients")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=sorted({s for ss in FULL.values() for s in ss}),
        help="only these scenarios (e.g. https64; the floor's are kept for the ratios)",
    )
    parser.add_argument("--python", metavar="EXE", help="build the virtualenvs from this Python")
    parser.add_argument(
        "--gc-threshold", type=int, metavar="N", help="gc.set_threshold(N) in every client"
    )
    parser.add_argument(
        "--pool", type=int, metavar="N", help="connections for the floor and emissary (100)"
    )
    parser.add_argument("--chart", metavar="JSON", help="only draw the chart of a results file")
    options = parser.parse_args()
    if options.chart:
        report = json.loads(Path(options.chart).read_text())
        path = Path(options.chart)
        chart(report["summary"], FULL, path.with_suffix(".png"), report["machine"]["python"])
        return 0
    plan = QUICK if options.quick else FULL
    if options.clients:
        plan = {client: plan[client] for client in plan if client in options.clients}
    if options.scenarios:
        kept = {
            client: [s for s in wanted if s in options.scenarios] for client, wanted in plan.items()
        }
        if "floor" in plan:  # every ratio needs the floor's figure of the same round
            needed = {"async1" if s == "sync" else s for ss in kept.values() for s in ss}
            kept["floor"] = [s for s in plan["floor"] if s in needed]
        plan = {client: wanted for client, wanted in kept.items() if wanted}
        if not plan:
            raise SystemExit(f"none of {options.scenarios} is measured for these clients")
    rounds_n = options.rounds or (3 if options.quick else 7)
    requests = options.requests or (1500 if options.quick else 8000)
    pythons = {client: python_for(client, options.quick, options.python) for client in plan}
    if "emissary" in pythons:
        byte_compile(pythons["emissary"])
    # A SIGTERM (a CI timeout, `kill`) ends the run through the `finally` below, like Ctrl-C,
    # so nginx is stopped and its directory removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    nginx = Nginx()
    rounds: list[dict[tuple[str, str], dict[str, Any]]] = []
    try:
        scenarios = sorted({s for ss in plan.values() for s in ss})
        for number in range(rounds_n):
            results: dict[tuple[str, str], dict[str, Any]] = {}
            order = list(plan.items())
            if number % 2:
                order.reverse()  # A B, then B A: drift during a round favours nobody
            for scenario in scenarios:
                for client, wanted in order:
                    if scenario not in wanted:
                        continue
                    if scenario == "memory" and number > 0:
                        continue  # one long run is enough
                    n = options.memory_requests if scenario == "memory" else requests
                    n = max(400, int(n * SLOW.get(client, 1.0)))
                    results[(client, scenario)] = measure(
                        nginx, pythons[client], client, scenario, n, options.gc_threshold,
                        options.pool,
                    )  # fmt: skip
            rounds.append(results)
            print(f"round {number + 1}/{rounds_n} done", file=sys.stderr)
    finally:
        nginx.stop()
    summary = summarise(rounds)
    checks = targets(summary)
    version = subprocess.run(
        [next(iter(pythons.values())), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    mode = "quick" if options.quick else "full" if plan == FULL else "partial"
    if options.scenarios or options.gc_threshold is not None or options.pool is not None:
        mode = "partial"  # a full run is at CPython's own GC settings and the default pool
    elif mode == "full" and options.python:
        # full.json is the reference run, on this machine's default Python; a full run on
        # another one is kept beside it as full-py3.13.json (and .png).
        mode = "full-py" + ".".join(version.split(".")[:2])
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": version,
        "pinned": bool(pinned(0)),
        "gc_threshold": options.gc_threshold,
        "pool": options.pool,
    }
    report = {
        "mode": mode,
        "rounds": rounds_n,
        "requests_per_measurement": requests,
        "machine": machine,
        "summary": summary,
        "targets": [
            {"target": t, "measured": m, "limit": lim, "holds": ok} for t, m, lim, ok in checks
        ],
    }
    (RESULTS / f"{mode}.json").write_text(json.dumps(report, indent=1))
    print(table(summary, plan))
    print()
    print(gc_table(summary, plan))
    print()
    for target, measured, limit, holds in checks:
        print(f"{'PASS' if holds else 'MISS'}  {target}: {measured:.3f} (limit {limit})")
    if mode.startswith("full"):  # matplotlib lives in the emissary virtualenv
        subprocess.run(
            [pythons["emissary"], __file__, "--chart", str(RESULTS / f"{mode}.json")],
            check=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
