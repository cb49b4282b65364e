"""Proxies over real loopback HTTP: tinyproxy (Debian's) carrying http:// and https://
targets, and a recording proxy (`tests/proxies.py`) for what reaches a proxy; the
environment's proxy variables, ``NO_PROXY``, ``trust_env=False``, ``~/.netrc``, and proxy
credentials kept out of every message, repr, log record and traceback."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary._network import bypasses, parse_no_proxy
from emissary.errors import APIProxyError, ConfigurationError
from emissary.testing import Emulator, instant_retries

from .conftest import DEPLOYMENT, PROJECT
from .proxies import RecordingProxy, Tinyproxy, free_port, tinyproxy
from .tls import server_context

pytestmark = pytest.mark.anyio

ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": "hello", "max_new_tokens": 3},
}
USER, PASSWORD = "alice", "s3cret-Pa55word"


@pytest.fixture
async def https_emulator(ca: trustme.CA) -> AsyncIterator[Emulator]:
    """The emulator over HTTPS, with a certificate from the test CA."""
    async with Emulator(ssl_context=server_context(ca)) as emu:
        yield emu


@pytest.fixture(scope="module")
def tiny() -> Iterator[Tinyproxy]:
    with tinyproxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def tiny_auth() -> Iterator[Tinyproxy]:
    with tinyproxy((USER, PASSWORD)) as proxy:
        yield proxy


def with_credentials(url: str) -> str:
    return url.replace("://", f"://{USER}:{PASSWORD}@", 1)


# --- a real proxy: tinyproxy ------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
async def test_an_https_target_goes_through_tinyproxy_by_connect(
    tiny_auth: Tinyproxy,
    https_emulator: Emulator,
    ca_file: Path,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, with_credentials(tiny_auth.url))
    async with AsyncEmissaryClient(
        api_key=https_emulator.api_key, server_url=https_emulator.url, ca_bundle=ca_file
    ) as client:
        completion = await client.deployments.completions.create(**ARGS)
    assert completion.response
    assert "CONNECT" in tiny_auth.log() and f"127.0.0.1:{https_emulator.port}" in tiny_auth.log()
    # Through the tunnel the server sees the client's own request, and no proxy header.
    (seen,) = https_emulator.requests
    assert seen.headers["X-API-Key"] == https_emulator.api_key
    assert "Proxy-Authorization" not in seen.headers


async def test_an_http_target_goes_through_tinyproxy(
    tiny_auth: Tinyproxy, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", with_credentials(tiny_auth.url))
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        await client.deployments.completions.create(**ARGS)
    path = f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
    assert f"POST http://127.0.0.1:{emulator.port}{path}" in tiny_auth.log()
    (seen,) = emulator.requests
    assert "Proxy-Authorization" not in seen.headers  # for the proxy alone


async def test_tinyproxy_refusing_credentials_is_a_proxy_error_made_once(
    tiny_auth: Tinyproxy, https_emulator: Emulator, ca_file: Path
) -> None:
    proxy = tiny_auth.url.replace("://", f"://{USER}:wrong-password@")
    async with AsyncEmissaryClient(
        api_key=https_emulator.api_key,
        server_url=https_emulator.url,
        ca_bundle=ca_file,
        proxy=proxy,
    ) as client:
        with instant_retries(client), pytest.raises(APIProxyError) as caught:
            await client.deployments.completions.create(**ARGS)
    # tinyproxy answers a wrong password with 401 (and a missing one with 407)
    assert caught.value.status_code == 401
    assert caught.value.retries_taken == 0
    assert "credentials are missing or wrong" in str(caught.value)
    assert "wrong-password" not in str(caught.value)
    assert https_emulator.requests == []


def test_the_sync_client_goes_through_tinyproxy(
    tiny: Tinyproxy, thread_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", tiny.url)
    with EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url) as c:
        assert c.deployments.completions.create(**ARGS).response
    assert f"POST http://127.0.0.1:{thread_emulator.port}/" in tiny.log()


# --- what reaches the proxy: the recording proxy ---------------------------------------


async def test_the_key_stays_inside_the_tunnel_and_credentials_reach_only_the_proxy(
    https_emulator: Emulator, ca_file: Path
) -> None:
    async with RecordingProxy(credentials=(USER, PASSWORD)) as proxy:
        async with AsyncEmissaryClient(
            api_key=https_emulator.api_key,
            server_url=https_emulator.url,
            ca_bundle=ca_file,
            proxy=proxy.url_with(USER, PASSWORD),
        ) as client:
            for _ in range(3):
                await client.deployments.completions.create(**ARGS)
    (connect,) = proxy.requests  # one tunnel, kept alive for the three calls
    assert connect.method == "CONNECT"
    assert connect.target == f"127.0.0.1:{https_emulator.port}"
    assert connect.headers["proxy-authorization"].startswith("Basic ")
    assert "x-api-key" not in connect.headers  # the key is not sent to the proxy
    key = https_emulator.api_key.encode()
    assert proxy.tunneled and key not in bytes(proxy.tunneled)  # inside TLS
    assert len(https_emulator.requests) == 3
    for seen in https_emulator.requests:
        assert seen.headers["X-API-Key"] == https_emulator.api_key
        assert "Proxy-Authorization" not in seen.headers


async def test_an_http_target_sends_absolute_form_with_proxy_authorization(
    emulator: Emulator,
) -> None:
    async with RecordingProxy(credentials=(USER, PASSWORD)) as proxy:
        async with AsyncEmissaryClient(
            api_key=emulator.api_key, server_url=emulator.url, proxy=proxy.url_with(USER, PASSWORD)
        ) as client:
            await client.deployments.completions.create(**ARGS)
    (forwarded,) = proxy.requests
    assert forwarded.method == "POST"
    assert forwarded.target.startswith(f"http://127.0.0.1:{emulator.port}/v1/projects/")
    assert forwarded.headers["proxy-authorization"].startswith("Basic ")
    assert "Proxy-Authorization" not in emulator.requests[0].headers


@pytest.mark.parametrize("target", ["http", "https"])
async def test_a_407_is_a_proxy_error_never_retried(
    target: str, emulator: Emulator, https_emulator: Emulator, ca_file: Path
) -> None:
    server = emulator if target == "http" else https_emulator
    async with RecordingProxy(credentials=(USER, PASSWORD)) as proxy:
        async with AsyncEmissaryClient(
            api_key=server.api_key,
            server_url=server.url,
            ca_bundle=ca_file,
            proxy=proxy.url_with(USER, "not-the-password"),
        ) as client:
            with instant_retries(client), pytest.raises(APIProxyError) as caught:
                await client.deployments.completions.create(**ARGS)
    error = caught.value
    assert error.status_code == 407 and error.retries_taken == 0
    assert len(proxy.requests) == 1
    assert f"the proxy {proxy.url} answered 407" in str(error)
    assert "credentials are missing or wrong" in str(error)
    assert "not-the-password" not in str(error) and USER not in str(error)
    assert server.requests == []


async def test_an_unreachable_proxy_is_a_proxy_error_retried_like_a_connection_error(
    emulator: Emulator,
) -> None:
    port = free_port()  # nothing listens there
    async with AsyncEmissaryClient(
        api_key=emulator.api_key,
        server_url=emulator.url,
        proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{port}",
    ) as client:
        with instant_retries(client), pytest.raises(APIProxyError) as caught:
            await client.deployments.completions.create(**ARGS)
    assert caught.value.status_code is None
    assert caught.value.retries_taken == 2
    assert f"could not connect to the proxy http://127.0.0.1:{port}" in str(caught.value)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TLS in TLS needs Python 3.11+")
async def test_an_https_proxy_carries_an_https_target(
    ca: trustme.CA, https_emulator: Emulator, ca_file: Path
) -> None:
    async with RecordingProxy(ssl_context=server_context(ca)) as proxy:
        assert proxy.url.startswith("https://")
        async with AsyncEmissaryClient(
            api_key=https_emulator.api_key,
            server_url=https_emulator.url,
            ca_bundle=ca_file,  # trusted for the proxy's certificate and the server's
            proxy=proxy.url,
        ) as client:
            assert (await client.deployments.completions.create(**ARGS)).response
    assert [r.method for r in proxy.requests] == ["CONNECT"]


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="Python 3.10 only")
def test_an_https_proxy_on_python_3_10_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"needs TLS inside TLS: Python 3\.11"):
        AsyncEmissaryClient(api_key="k", server_url="https://h", proxy="https://proxy:3128")


# --- the environment -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        ("127.0.0.1", True),
        ("localhost,127.0.0.1", True),
        ("*", True),
        ("127.0.0.0/8", True),
        ("127.0.0.1:{port}", True),
        ("127.0.0.1:1", False),  # another port
        ("10.0.0.0/8, example.com", False),
        ("", False),
    ],
)
async def test_no_proxy_sends_matching_targets_directly(
    no_proxy: str, direct: bool, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("no_proxy", no_proxy.format(port=emulator.port))
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as c:
            await c.deployments.completions.create(**ARGS)
    assert (proxy.requests == []) is direct
    assert len(emulator.requests) == 1


async def test_no_proxy_with_a_host_name(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", ".localhost")
        url = f"http://localhost:{emulator.port}"
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=url) as client:
            await client.deployments.completions.create(**ARGS)
            # a per-call server_url is routed by its own host
            await client.deployments.completions.create(**ARGS, server_url=emulator.url)
    assert [r.target.split("/v1/")[0] for r in proxy.requests] == [emulator.url]


async def test_trust_env_false_ignores_the_proxy_variables(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        async with AsyncEmissaryClient(
            api_key=emulator.api_key, server_url=emulator.url, trust_env=False
        ) as client:
            await client.deployments.completions.create(**ARGS)
    assert proxy.requests == []


async def test_an_explicit_proxy_wins_over_the_environment_and_no_proxy(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as chosen, RecordingProxy() as other:
        monkeypatch.setenv("HTTP_PROXY", other.url)
        monkeypatch.setenv("NO_PROXY", "*")
        async with AsyncEmissaryClient(
            api_key=emulator.api_key, server_url=emulator.url, proxy=chosen.url
        ) as client:
            await client.deployments.completions.create(**ARGS)
    assert len(chosen.requests) == 1 and other.requests == []


async def test_upper_case_http_proxy_is_ignored_in_a_cgi_script(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # a request's "Proxy:" header, in CGI
        monkeypatch.setenv("REQUEST_METHOD", "GET")
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as c:
            await c.deployments.completions.create(**ARGS)
    assert proxy.requests == []


async def test_netrc_is_never_read(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        await client.deployments.completions.create(**ARGS)
    (seen,) = emulator.requests
    assert "Authorization" not in seen.headers


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"proxy": "socks5://127.0.0.1:1080"}, "proxy names a SOCKS proxy"),
        ({"proxy": "ftp://127.0.0.1:21"}, "proxy must be an http:// or https:// URL"),
        ({"proxy": "http://127.0.0.1:3128/path"}, "proxy must not have a path"),
        ({"proxy": "http://[::1"}, "proxy is not a valid URL"),
        ({"proxy": ""}, "proxy must be a proxy URL"),
        ({"proxy": 3128}, "proxy must be a proxy URL"),
        ({"env": ("ALL_PROXY", f"socks5h://{USER}:{PASSWORD}@h:1")}, "ALL_PROXY names a SOCKS"),
        ({"env": ("https_proxy", "gopher://h:70")}, "https_proxy must be an http"),
        ({"trust_env": "yes"}, "trust_env must be True or False"),
        # A host that is not valid IDNA: yarl decodes it lazily, with a UnicodeError.
        ({"proxy": "http://xn--a:3128"}, "proxy is not a valid URL"),
        ({"env": ("HTTPS_PROXY", "http://xn--a:1")}, "HTTPS_PROXY is not a valid URL"),
        ({"server_url": "http://xn--a"}, "server_url is not a valid URL"),
        (
            {"env": ("EMISSARY_SERVER_URL", "http://xn--a"), "server_url": None},
            "^EMISSARY_SERVER_URL: server_url is not a valid URL: 'http://xn--a'$",
        ),
    ],
)
def test_bad_proxy_settings_fail_at_construction(
    setting: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "env" in setting:
        name, value = setting.pop("env")
        monkeypatch.setenv(name, value)
    settings = {"server_url": "https://127.0.0.1:9", **setting}
    with pytest.raises(ConfigurationError, match=message) as caught:
        AsyncEmissaryClient(api_key="k", **settings)
    assert PASSWORD not in str(caught.value)


async def test_a_bad_server_url_in_a_call_is_a_configuration_error(
    emulator: Emulator,
) -> None:
    async with AsyncEmissaryClient(api_key="k", server_url=emulator.url) as client:
        with pytest.raises(ConfigurationError, match="server_url is not a valid URL"):
            await client.deployments.completions.create(
                project_id="p", deployment_id="d", request_body={"prompt": "x"},
                server_url="http://xn--a",
            )  # fmt: skip
    assert emulator.requests == []


def test_a_proxy_host_that_does_not_exist_names_the_proxy() -> None:
    # aiohttp reports a proxy whose name does not resolve as a failed connection to it,
    # which used to say "check server_url". (Built as aiohttp's resolver raises it: tests
    # must not depend on the machine's DNS.)
    import socket
    import types

    import aiohttp
    import yarl

    from emissary._network import parse_proxy
    from emissary._transport import transport_error
    from emissary.errors import APIHostNotFoundError

    proxy = parse_proxy(f"http://{USER}:{PASSWORD}@proxy.nowhere.invalid:3128", "HTTPS_PROXY")
    key = types.SimpleNamespace(host="proxy.nowhere.invalid", port=3128, ssl=False, is_ssl=False)
    gone = aiohttp.ClientConnectorDNSError(
        key,  # type: ignore[arg-type]
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    )
    error = transport_error(gone, yarl.URL("https://api.example.com/v1/x"), proxy=proxy)
    assert isinstance(error, APIHostNotFoundError)
    assert "proxy host 'proxy.nowhere.invalid'" in str(error)
    assert "check HTTPS_PROXY" in str(error) and "server_url" not in str(error)
    assert PASSWORD not in str(error)


def test_a_proxy_without_a_scheme_is_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    AsyncEmissaryClient(api_key="k", server_url="https://api.example.com")  # no error


@pytest.mark.parametrize(
    ("entries", "host", "port", "bypassed"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "example.com", 443, True),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("EXAMPLE.com.", "Api.Example.COM", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("localhost", "localhost", 80, True),
        ("localhost", "127.0.0.1", 80, False),  # no name is resolved
        ("10.1.2.3", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "10.200.0.1", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fd00::/8", "fd12::1", 443, True),
        ("fd00::/8", "10.0.0.1", 443, False),
        ("*", "anything.at.all", 1, True),
        ("a.com b.com", "b.com", 443, True),
        ("a.com,,b.com", "c.com", 443, False),
        ("", "example.com", 443, False),
        # Ports in other scripts' digits (str.isdigit says yes, int() may not): not ports.
        ("host:²", "host", 443, False),
        ("[::1]:²", "::1", 443, False),
        ("host:" + "9" * 5000, "host", 443, False),
    ],
)
def test_no_proxy_forms(entries: str, host: str, port: int, bypassed: bool) -> None:
    assert bypasses(parse_no_proxy(entries), host, port) is bypassed


# --- credentials never shown -----------------------------------------------------------


async def test_proxy_credentials_appear_in_no_message_repr_log_or_traceback(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="emissary")
    texts: list[str] = []
    async with RecordingProxy(credentials=(USER, "other")) as refusing:
        for proxy in (
            f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}",  # unreachable
            refusing.url_with(USER, PASSWORD),  # 407
        ):
            client = AsyncEmissaryClient(
                api_key=emulator.api_key, server_url=emulator.url, proxy=proxy
            )
            texts.append(repr(client))
            with instant_retries(client), pytest.raises(APIProxyError) as caught:
                await client.deployments.completions.create(**ARGS)
            await client.close()
            error = caught.value
            texts += [str(error), repr(error), repr(error.args)]
            assert error.__cause__ is None and error.__context__ is None
            trace = traceback.TracebackException.from_exception(error, capture_locals=True)
            texts += trace.format_exception_only()
            # the locals of the SDK's frames (a crash reporter shows them); the test's own
            # hold the password, of course
            ours = [f for f in trace.stack if "/emissary/" in f.filename]
            assert ours
            texts += [repr(f.locals) for f in ours]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.__dict__) for record in caplog.records]
    assert len(caplog.records) >= 3
    leaked = [text for text in texts if PASSWORD in text]
    assert leaked == []


def test_the_readme_recipe_a_proxy_and_a_private_ca_from_the_environment(
    tiny_auth: Tinyproxy, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user behind a proxy with a private CA does: set the variables, build the
    client with no network settings at all, call."""
    with Emulator(ssl_context=server_context(ca)) as emu:
        monkeypatch.setenv("HTTPS_PROXY", with_credentials(tiny_auth.url))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        with EmissaryClient() as client:
            assert client.deployments.completions.create(**ARGS).response
        assert len(emu.requests) == 1
    assert f"127.0.0.1:{emu.port}" in tiny_auth.log()
