"""Small real servers on loopback that misbehave on purpose.

`FaultServer` is an aiohttp.web server whose handler a test writes inline; `RawServer` is a
plain socket server for faults HTTP servers will not commit (dropped connections, truncated
bodies, silence). Both record what they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WAIT = 10.0
"""The bound on waiting for what a server or client does on its own: far longer than any
of it takes, so that it fails only when the thing never happens."""


def wait_until(condition: Callable[[], object], what: str = "the condition") -> None:
    """Poll `condition` (from a thread) until it holds; fail, naming `what`, after `WAIT`."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not hold within {WAIT:g} s"
        time.sleep(0.005)


async def until(condition: Callable[[], object], what: str = "the condition") -> None:
    """`wait_until` for a coroutine: it yields to the loop between polls, and `condition`
    may be an async function."""
    deadline = time.monotonic() + WAIT
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, f"{what} did not hold within {WAIT:g} s"
        await asyncio.sleep(0.005)


class FaultServer:
    """``async with FaultServer(handler) as s:`` serves `handler` at ``s.url``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.bodies.append(await request.read())
        return await self.handler(request)

    async def __aenter__(self) -> FaultServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def json_handler(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    """A handler answering every request with `status` and `body`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, headers=headers or {"Content-Type": "application/json"}
        )

    return handle


Behaviour = Callable[[socket.socket], None]


class RawServer:
    """A socket server on a thread; each connection is handed to `behaviour`.

    `accepted` is set when a connection arrives (after its request is read), `closed_by_peer`
    when the client closes a connection it is still holding.
    """

    def __init__(self, behaviour: Behaviour, *, read_first: bool = True) -> None:
        self.behaviour = behaviour
        self.read_first = read_first
        self.accepted = threading.Event()
        self.closed_by_peer = threading.Event()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._clients: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._clients.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            if self.read_first:
                read_request(conn)
            self.accepted.set()
            self.behaviour(conn)
        except OSError:
            pass

    def wait_for_peer_close(self, conn: socket.socket) -> None:
        """Block until the client closes `conn` (used by 'hang' behaviours)."""
        conn.settimeout(None)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        self.closed_by_peer.set()

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        for conn in self._clients:
            conn.close()


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and a Content-Length body) from `conn`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


async def serve_async(behaviour: Behaviour, *, read_first: bool = True) -> RawServer:
    """A started RawServer (for async tests, which stop it with `stop_async`)."""
    server = RawServer(behaviour, read_first=read_first)
    server.__enter__()
    return server


async def stop_async(server: RawServer) -> None:
    await asyncio.to_thread(server.__exit__, None, None, None)


def open_sockets() -> int:
    """Sockets open in this process (Linux: counted in /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # an fd may close while we look
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def connections_to(port: int) -> int:
    """This process's open TCP sockets whose peer is `port` on loopback: the client ends
    of its connections to a server there (Linux: /proc/net/tcp and /proc/self/fd)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


SLOW_CALLBACK = re.compile(r"Executing .* took \d+\.\d+ seconds")
"""The line asyncio's debug mode logs when one callback held its loop past 0.1 s."""


def run_python(
    code: str, *args: str, timeout: float = 60, dev: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) in a fresh interpreter from the repository root, in dev mode
    (every warning shown on stderr) unless `dev` is False; every wait is bounded.

    Dev mode turns on asyncio's debug mode, which also reports every callback that held a
    loop for more than 0.1 s. How long a callback takes depends on how busy the machine is
    (a two-core CI runner), not on the code, so those reports are taken out of `stderr`
    (`without_slow_callbacks`); every other line is kept."""
    proc = subprocess.run(
        [sys.executable, *(["-X", "dev"] if dev else []), "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    proc.stderr = without_slow_callbacks(proc.stderr)
    return proc


def without_slow_callbacks(stderr: str) -> str:
    """`stderr` less asyncio's slow-callback reports, each a whole line."""
    return "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if not SLOW_CALLBACK.fullmatch(line.rstrip("\n"))
    )
