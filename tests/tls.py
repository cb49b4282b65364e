"""TLS for the tests: a private CA (``trustme``) and servers whose certificates it signs."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

import trustme


def server_context(
    ca: trustme.CA,
    *identities: str,
    not_after: datetime.datetime | None = None,
    client_ca: trustme.CA | None = None,
) -> ssl.SSLContext:
    """A server context with a certificate from `ca` for `identities` (default 127.0.0.1);
    with `client_ca`, clients must present a certificate it signed (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert = ca.issue_cert(*(identities or ("127.0.0.1", "localhost")), not_after=not_after)
    cert.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def write_ca(ca: trustme.CA, directory: Path) -> Path:
    """`ca`'s certificate as a PEM file in `directory`."""
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


class HandshakeServer:
    """A TLS server that counts connections and only shakes hands (then hangs up): for
    certificate failures, where no request is ever sent."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except OSError:
                # Hang up gently, on the raw socket: a close with the client's request
                # unread would send a reset, which can overtake the TLS alert on its way.
                with socket.socket(fileno=tls.detach()) as raw, contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_WR)
                    while raw.recv(65536):
                        pass
            else:
                tls.close()

    def __enter__(self) -> HandshakeServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
