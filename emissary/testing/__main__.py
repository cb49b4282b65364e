"""``python -m emissary.testing``: run the emulator until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys

from ._checks import check_seconds
from ._server import DEFAULT_API_KEY, DEFAULT_DEPLOYMENTS, DEFAULT_HOST, Emulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: host, port, API key, deployments, capacity, latency and the
    speed of time."""
    parser = argparse.ArgumentParser(
        prog="python -m emissary.testing",
        description="Serve a local emulator of the whole Emissary API.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind, 0 for any free one (default 8000)"
    )
    parser.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help="the accepted X-API-Key (default %(default)s)"
    )
    parser.add_argument(
        "--deployment",
        action="append",
        metavar="PROJECT/DEPLOYMENT",
        help=f"a deployment to serve; repeatable (default {DEFAULT_DEPLOYMENTS[0]})",
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=None,
        help="serve at most this many inference requests at once, answer 429 beyond "
        "(default: no limit)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="how long each inference answer takes, in milliseconds (default 0)",
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="SCALE",
        help="real seconds per emulated second: 0.001 runs training jobs and deployments "
        "1000 times faster (default 1)",
    )
    return parser.parse_args(argv)


def _time_scale(text: str) -> float:
    """A --time-scale: a finite number > 0."""
    try:
        return check_seconds("the time scale", float(text), strict=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def serve(options: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    emulator = Emulator(
        api_key=options.api_key,
        deployments=options.deployment or DEFAULT_DEPLOYMENTS,
        host=options.host,
        port=options.port,
        capacity=options.capacity,
        latency_ms=options.latency_ms,
        time_scale=options.time_scale,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        deployments = ", ".join(
            f"{p}/{d}" for p, ds in emulator.projects.items() for d in sorted(ds)
        )
        speed = "" if options.time_scale == 1 else f"; time scale {options.time_scale:g}"
        print(
            f"Emissary emulator on {emulator.url} (api key {emulator.api_key!r}; "
            f"deployments: {deployments}{speed})",
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 after Ctrl-C or SIGTERM, 2 for bad options or an address in use."""
    options = parse_args(argv)
    # Warnings and the emulator's own bugs, with their tracebacks, on stderr; a bad request
    # from a client is an INFO line, not shown (a full, unread stderr pipe would stall it).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(options))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = " (--port 0 picks a free one)" if exc.errno == errno.EADDRINUSE else ""
        print(
            f"error: cannot listen on {options.host}:{options.port}: {reason}{hint}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
