"""TLS over real loopback connections, with a private CA from ``trustme``: trusting it by
``ca_bundle`` (file or directory), ``ssl_context``, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` set
after ``import emissary``, and ``native_tls``; mutual TLS; and certificates that fail
(untrusted, expired, for another host), each an `APITLSError` that says what fixes it,
after exactly one connection."""

from __future__ import annotations

import datetime
import gc
import shutil
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.errors import APIConnectionError, APITLSError, ConfigurationError
from emissary.testing import Emulator, instant_retries

from .conftest import DEPLOYMENT, PROJECT
from .faults import open_sockets, run_python
from .tls import HandshakeServer, server_context, write_ca

pytestmark = pytest.mark.anyio

ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": "hello", "max_new_tokens": 3},
}


@pytest.fixture(autouse=True)
def system_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine sets SSL_CERT_FILE / SSL_CERT_DIR: each test sets its own."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def ca_dir(ca_file: Path) -> Path:
    """A directory holding the CA under its OpenSSL subject-hash name (``openssl rehash``)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    subprocess.run(["openssl", "rehash", str(ca_file.parent)], check=True, timeout=30)
    return ca_file.parent


@pytest.fixture
async def server(ca: trustme.CA) -> AsyncIterator[Emulator]:
    async with Emulator(ssl_context=server_context(ca)) as emu:
        yield emu


async def call(server: Emulator, **options: Any) -> str | None:
    async with AsyncEmissaryClient(
        api_key=server.api_key, server_url=server.url, **options
    ) as client:
        return (await client.deployments.completions.create(**ARGS)).response


# --- trusting a private CA -------------------------------------------------------------


async def test_a_private_ca_by_ca_bundle_file(server: Emulator, ca_file: Path) -> None:
    assert await call(server, ca_bundle=ca_file)
    assert await call(server, ca_bundle=str(ca_file))


async def test_a_private_ca_by_ca_bundle_directory(server: Emulator, ca_dir: Path) -> None:
    assert await call(server, ca_bundle=ca_dir)


async def test_a_private_ca_by_ssl_context(server: Emulator, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert await call(server, ssl_context=context)


async def test_ssl_cert_file_set_after_import_is_honoured(
    server: Emulator, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # emissary and aiohttp were imported long before: the variable is read per client
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert await call(server)


async def test_ssl_cert_dir_set_after_import_is_honoured(
    server: Emulator, ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
    assert await call(server)


async def test_trust_env_false_ignores_ssl_cert_file(
    ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with HandshakeServer(server_context(ca)) as tls:
        client = AsyncEmissaryClient(api_key="k", server_url=tls.url, trust_env=False)
        async with client:
            with pytest.raises(APITLSError, match="does not trust"):
                await client.deployments.completions.create(**ARGS)


async def test_native_tls_uses_the_system_store_through_truststore(
    server: Emulator, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Linux the "system store" is OpenSSL's, which SSL_CERT_FILE redirects.
    with HandshakeServer(server_context(ca)) as tls:
        client = AsyncEmissaryClient(api_key="k", server_url=tls.url, native_tls=True)
        async with client:
            with pytest.raises(APITLSError, match="does not trust"):
                await client.deployments.completions.create(**ARGS)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert await call(server, native_tls=True)


def test_native_tls_without_truststore_says_what_to_install() -> None:
    result = run_python(
        """
        import sys
        sys.modules["truststore"] = None  # as if not installed
        from emissary import AsyncEmissaryClient
        from emissary.errors import ConfigurationError
        try:
            AsyncEmissaryClient(api_key="k", server_url="https://h", native_tls=True)
        except ConfigurationError as exc:
            print(exc)
        """
    )
    assert "pip install 'emissary-python[truststore]'" in result.stdout, result.stderr


def test_the_sync_client_trusts_a_private_ca(ca: trustme.CA, ca_file: Path) -> None:
    with Emulator(ssl_context=server_context(ca)) as emu:
        with EmissaryClient(api_key=emu.api_key, server_url=emu.url, ca_bundle=ca_file) as c:
            assert c.deployments.completions.create(**ARGS).response


# --- mutual TLS -------------------------------------------------------------------------


async def test_mutual_tls_with_a_client_certificate(ca: trustme.CA, ca_file: Path) -> None:
    client_ca = trustme.CA()
    async with Emulator(ssl_context=server_context(ca, client_ca=client_ca)) as emu:
        context = ssl.create_default_context(cafile=str(ca_file))
        client_ca.issue_cert("client@example.com").configure_cert(context)
        assert await call(emu, ssl_context=context)
        assert emu.requests[0].headers["X-API-Key"] == emu.api_key


async def test_a_server_asking_for_a_client_certificate_says_so(
    ca: trustme.CA, ca_file: Path
) -> None:
    sockets = open_sockets()
    with warnings.catch_warnings():
        if sys.version_info < (3, 11):
            # Python 3.10's asyncio never marks the TLS transport of a connection that
            # failed this way closed (its socket is closed: counted below).
            warnings.filterwarnings("ignore", "unclosed transport", ResourceWarning)
        with HandshakeServer(server_context(ca, client_ca=trustme.CA())) as tls:
            async with AsyncEmissaryClient(
                api_key="k", server_url=tls.url, ca_bundle=ca_file
            ) as client:
                with instant_retries(client), pytest.raises(APITLSError) as caught:
                    await client.deployments.completions.create(**ARGS)
            assert tls.connections == 1
        gc.collect()
    assert open_sockets() == sockets
    assert "asks for a client certificate (mutual TLS)" in str(caught.value)
    assert "load_cert_chain" in str(caught.value)
    assert caught.value.retries_taken == 0


# --- certificates that fail -------------------------------------------------------------

PAST = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("certificate", "message", "advice"),
    [
        ("untrusted", "is signed by a CA this client does not trust", "ca_bundle="),
        ("expired", "has expired", "the server must renew it"),
        ("other-host", "is not for 127.0.0.1", "the host name the certificate was issued"),
    ],
)
async def test_a_failed_certificate_check_says_why_and_is_tried_once(
    certificate: str, message: str, advice: str, ca: trustme.CA, ca_file: Path
) -> None:
    if certificate == "untrusted":
        context, trusted = server_context(trustme.CA()), ca_file
    elif certificate == "expired":
        context, trusted = server_context(ca, not_after=PAST), ca_file
    else:
        context, trusted = server_context(ca, "other.example"), ca_file
    with HandshakeServer(context) as tls:
        async with AsyncEmissaryClient(
            api_key="k", server_url=tls.url, ca_bundle=trusted
        ) as client:
            with instant_retries(client), pytest.raises(APITLSError) as caught:
                await client.deployments.completions.create(**ARGS)
        assert tls.connections == 1
    text = str(caught.value)
    assert message in text and advice in text and "not retried" in text
    if certificate == "untrusted":
        assert "SSL_CERT_FILE" in text and "native_tls=True" in text
    assert caught.value.retries_taken == 0
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_the_default_store_does_not_trust_a_private_ca(ca: trustme.CA) -> None:
    with HandshakeServer(server_context(ca)) as tls:
        async with AsyncEmissaryClient(api_key="k", server_url=tls.url) as client:
            with pytest.raises(APITLSError, match="does not trust"):
                await client.deployments.completions.create(**ARGS)
        assert tls.connections == 1


# --- bad settings -----------------------------------------------------------------------


def test_bad_tls_settings_fail_at_construction(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")

    def build(**options: Any) -> None:
        AsyncEmissaryClient(api_key="k", server_url="https://h", **options)

    with pytest.raises(ConfigurationError, match="ca_bundle: no such file or directory"):
        build(ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match="holds no usable PEM certificate"):
        build(ca_bundle=not_pem)
    with pytest.raises(ConfigurationError, match="ca_bundle must be a path"):
        build(ca_bundle=42)
    with pytest.raises(ConfigurationError, match=r"ssl_context must be an ssl\.SSLContext"):
        build(ssl_context="tls")
    with pytest.raises(ConfigurationError, match="load the CA into it"):
        build(ssl_context=ssl.create_default_context(), ca_bundle=ca_file)
    with pytest.raises(ConfigurationError, match="either it or ca_bundle"):
        build(native_tls=True, ca_bundle=ca_file)
    with pytest.raises(ConfigurationError, match="native_tls must be True or False"):
        build(native_tls="yes")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "gone.pem"))
    with pytest.raises(ConfigurationError, match="SSL_CERT_FILE names no file"):
        build()
    build(trust_env=False)  # the variable is not read then
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "gone"))
    with pytest.raises(ConfigurationError, match="SSL_CERT_DIR names no directory"):
        build()


def test_an_ssl_context_that_does_not_verify_warns() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.warns(UserWarning, match="INSECURE") as warned:
        AsyncEmissaryClient(api_key="k", server_url="https://h", ssl_context=context)
    assert warned[0].filename == __file__  # points at the caller's line
    with pytest.warns(UserWarning, match="INSECURE") as warned:
        EmissaryClient(api_key="k", server_url="https://h", ssl_context=context).close()
    assert warned[0].filename == __file__


async def test_a_rewritten_ca_file_is_read_again(ca: trustme.CA, tmp_path: Path) -> None:
    path = write_ca(trustme.CA(), tmp_path)  # some other CA first
    async with Emulator(ssl_context=server_context(ca)) as emu:
        with pytest.raises(APITLSError):
            await call(emu, ca_bundle=path, retry_config=None)
        ca.cert_pem.write_to_path(str(path))
        assert await call(emu, ca_bundle=path)


def test_the_emulator_closes_its_tls_connections_when_it_stops(
    ca: trustme.CA, ca_file: Path
) -> None:
    before = open_sockets()
    with Emulator(ssl_context=server_context(ca)) as emu:
        client = ssl.create_default_context(cafile=str(ca_file)).wrap_socket(
            socket.create_connection(("127.0.0.1", emu.port), timeout=5),
            server_hostname="127.0.0.1",
        )
        client.sendall(b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(12) == b"HTTP/1.1 404"  # a keep-alive connection, left open
    # The emulator's side must not wait for this client's close_notify (which never comes).
    gc.collect()
    assert open_sockets() == before + 1
    client.close()
