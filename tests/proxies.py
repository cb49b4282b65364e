"""Proxies for the tests: a recording forward proxy written here (for assertions on what
reaches a proxy) and tinyproxy, the real one from Debian, on a generated configuration."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


@dataclass
class ProxyRequest:
    """One request the proxy received: ``CONNECT host:port`` or an absolute-form request."""

    method: str
    target: str
    headers: dict[str, str]
    """Header names in lower case."""


@dataclass
class RecordingProxy:
    """A forward proxy on the running event loop: CONNECT tunnels (for https targets) and
    absolute-form requests (for http targets), each recorded. With `credentials`, a request
    without the matching ``Proxy-Authorization`` is answered 407; with `ssl_context` the
    proxy itself speaks TLS (an ``https://`` proxy)."""

    credentials: tuple[str, str] | None = None
    ssl_context: ssl.SSLContext | None = None
    requests: list[ProxyRequest] = field(default_factory=list)
    tunneled: bytearray = field(default_factory=bytearray)
    """Every byte clients sent inside CONNECT tunnels (TLS records, for an https target)."""
    connections: int = 0
    """Client connections accepted."""
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy's URL with credentials in it."""
        return self.url.replace("://", f"://{user}:{password}@", 1)

    async def __aenter__(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return headers.get("proxy-authorization") == f"Basic {token}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_holder: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None]
        try:
            await self._exchange(reader, writer, upstream_holder)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass  # the test ended, or a side hung up
        finally:
            if upstream_holder[0] is not None:
                upstream_holder[0][1].close()
            writer.close()
            self._tasks.discard(task)

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream_holder: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None],
    ) -> None:
        """Serve one client connection's requests."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            self.requests.append(ProxyRequest(method, target, headers))
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            if not self._authorised(headers):
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                await writer.drain()
                continue
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await self._pipe(reader, writer, up_reader, up_writer)
                return
            # An absolute-form request: forward it in origin form on one upstream
            # connection per client connection (the client's pool keys on the target).
            rest = target.split("://", 1)[1]
            authority, _, path = rest.partition("/")
            if upstream_holder[0] is None:
                host, _, port = authority.rpartition(":")
                upstream_holder[0] = await asyncio.open_connection(host, int(port))
            up_reader, up_writer = upstream_holder[0]
            kept = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("proxy-authorization", "proxy-conn"))
            ]
            up_writer.write(
                f"{method} /{path} HTTP/1.1\r\n".encode("latin-1")
                + "\r\n".join(kept).encode("latin-1")
                + b"\r\n\r\n"
                + body
            )
            await up_writer.drain()
            answer = await up_reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in answer.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    size = int(line.split(":", 1)[1])
            writer.write(answer + (await up_reader.readexactly(size) if size else b""))
            await writer.drain()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        async def copy(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bool
        ) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await source.read(65536):
                    if record:
                        self.tunneled += chunk
                    sink.write(chunk)
                    await sink.drain()
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()

        try:
            await asyncio.gather(copy(reader, up_writer, True), copy(up_reader, writer, False))
        finally:
            up_writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Tinyproxy:
    """A running tinyproxy (Debian's ``tinyproxy``) on a free loopback port."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.directory / "tinyproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""


TINYPROXY_CONF = """\
Port {port}
Listen 127.0.0.1
Timeout 30
MaxClients 64
Allow 127.0.0.1
DisableViaHeader Yes
LogLevel Info
LogFile "{directory}/tinyproxy.log"
PidFile "{directory}/tinyproxy.pid"
{extra}
"""
# No ConnectPort line: CONNECT is allowed to every port (the emulator's is random).


@contextlib.contextmanager
def tinyproxy(credentials: tuple[str, str] | None = None) -> Iterator[Tinyproxy]:
    """Start tinyproxy (``BasicAuth`` with `credentials`), wait until it accepts, stop it."""
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        raise RuntimeError("tinyproxy is needed: apt-get install -y tinyproxy")
    directory = Path(tempfile.mkdtemp(prefix="emissary-tinyproxy-"))
    port = free_port()
    extra = "" if credentials is None else f"BasicAuth {credentials[0]} {credentials[1]}"
    conf = directory / "tinyproxy.conf"
    conf.write_text(TINYPROXY_CONF.format(port=port, directory=directory, extra=extra))
    process = subprocess.Popen(
        [binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    proxy = Tinyproxy(port, directory, process)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start:\n{proxy.log()}") from None
                time.sleep(0.02)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(directory, ignore_errors=True)
