"""Where a client's requests go and how they are secured: proxies and TLS, decided when the
client is built. No I/O but reading the environment and the CA files named.

Proxies follow curl's and httpx's rules: ``HTTPS_PROXY`` / ``HTTP_PROXY`` by the target's
scheme, else ``ALL_PROXY`` (either case, lower case first; upper-case ``HTTP_PROXY`` is
ignored when ``REQUEST_METHOD`` says the process is a CGI script, the "httpoxy" rule), and
``NO_PROXY`` names targets reached directly. An explicit ``proxy=`` serves every target.
The SDK passes aiohttp an explicit proxy: aiohttp's own ``trust_env`` stays off, because it
also reads ``~/.netrc`` and adds the target's password to API requests.

TLS: a client verifies against its own `ssl.SSLContext`, built here from ``ca_bundle``,
``native_tls`` (the system store, through ``truststore``) or the defaults with
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` as they are now (aiohttp's default context is frozen
when it is imported). `describe_certificate_error` turns a failed check into advice.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import os
import ssl
import sys
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import yarl

from ._config import redact_url
from .errors import ConfigurationError

CA_FILE_ENV = "SSL_CERT_FILE"
CA_DIR_ENV = "SSL_CERT_DIR"
_AT_IMPORT = (os.environ.get(CA_FILE_ENV) or None, os.environ.get(CA_DIR_ENV) or None)
_AIOHTTP_SEES_THE_SAME = "aiohttp" not in sys.modules
"""aiohttp builds its default context when it is imported, which (unless it was imported
before) happens right after this module, by `_transport`: with the variables in
`_AT_IMPORT`. A client built while they are unchanged can use that context as it is."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Proxy:
    """A proxy's URL, with its credentials (aiohttp sends them as ``Proxy-Authorization``
    to the proxy alone), shown without them."""

    __slots__ = ("source", "url")

    def __init__(self, url: yarl.URL, source: str = "proxy") -> None:
        self.url = url
        """The URL aiohttp is given, ``user:password@`` included."""
        self.source = source
        """Where it was set: ``proxy`` (the argument) or a variable's name, for messages."""

    def __repr__(self) -> str:
        return f"Proxy({redact_url(str(self.url))!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Proxy) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)


def parse_proxy(value: object, source: str) -> Proxy:
    """Check a proxy URL (``http://user:password@host:port``; no scheme means ``http``)
    from `source` (``proxy`` or a variable's name) and return it."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{source} must be a proxy URL such as 'http://proxy.example.com:3128', "
            f"got {type(value).__name__ if not isinstance(value, str) else repr(value)}"
        )
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    shown = repr(redact_url(text))
    try:
        url = yarl.URL(text)
        port, host = url.port, url.host  # yarl decodes the host lazily (IDNA: a ValueError)
    except (ValueError, TypeError):
        raise ConfigurationError(f"{source} is not a valid URL: {shown}") from None
    scheme = url.scheme.lower()
    if scheme.startswith("socks"):
        raise ConfigurationError(
            f"{source} names a SOCKS proxy ({shown}); emissary supports HTTP and HTTPS "
            "proxies only: give one as 'http://host:port'"
        )
    if scheme not in ("http", "https") or not host or port is None:
        raise ConfigurationError(
            f"{source} must be an http:// or https:// URL with a host, got {shown}"
        )
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ConfigurationError(f"{source} must not have a path or query, got {shown}")
    if scheme == "https" and sys.version_info < (3, 11):
        raise ConfigurationError(
            f"{source} is an https:// proxy ({shown}), which needs TLS inside TLS: "
            "Python 3.11 or later; use the proxy's http:// address or a newer Python"
        )
    return Proxy(url.with_path(""), source)


class _Bypass(NamedTuple):
    """One ``NO_PROXY`` entry: a domain, an address or a network, and a port or None."""

    domain: str | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None


def parse_no_proxy(value: str) -> tuple[_Bypass, ...] | None:
    """The entries of a ``NO_PROXY`` value; None for ``*`` (no target uses the proxy).

    Entries are separated by commas (or spaces): ``example.com`` and ``.example.com`` both
    match that domain and its subdomains, ``*.example.com`` too; ``10.0.0.1``, ``::1`` and
    ``10.0.0.0/8`` match addresses (the host as written in the URL: no name is resolved);
    ``host:port`` and ``[::1]:port`` match that port only.
    """
    entries: list[_Bypass] = []
    for raw in value.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return None
        port: int | None = None
        if entry.startswith("["):  # [v6] or [v6]:port
            address, _, rest = entry[1:].partition("]")
            entry = address
            if rest:
                port = _port(rest[1:]) if rest.startswith(":") else None
                if port is None:
                    continue  # not a port: the entry matches nothing
        elif entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
            host, _, number = entry.partition(":")
            if (port := _port(number)) is not None:
                entry = host
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            domain = entry.removeprefix("*").lstrip(".").rstrip(".")
            if domain:
                entries.append(_Bypass(domain, None, port))
        else:
            entries.append(_Bypass(None, network, port))
    return tuple(entries)


def _port(text: str) -> int | None:
    """A port number written in ASCII digits (``²`` is a digit to `str.isdigit`), or None."""
    if text.isascii() and text.isdigit() and len(text) <= 5:
        return int(text)
    return None


def bypasses(entries: tuple[_Bypass, ...] | None, host: str, port: int) -> bool:
    """True when ``NO_PROXY`` `entries` (from `parse_no_proxy`) say to reach `host`:`port`
    directly."""
    if entries is None:
        return True
    host = host.lower().rstrip(".").strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in entries:
        if entry.port is not None and entry.port != port:
            continue
        if entry.network is not None:
            if address is not None and _within(address, entry.network):
                return True
        elif entry.domain is not None and (
            host == entry.domain or host.endswith("." + entry.domain)
        ):
            return True
    return False


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return address.version == network.version and address in network


def _variable(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(name as set, value) of a proxy variable, lower case first; None if unset or empty."""
    for spelling in (name.lower(), name.upper()):
        if spelling == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            continue  # httpoxy: in a CGI script, a request's "Proxy:" header sets this one
        value = environ.get(spelling, "").strip()
        if value:
            return spelling, value
    return None


class ProxyRules:
    """Which proxy (if any) the requests to a server go through."""

    __slots__ = ("_by_scheme", "_chosen", "_no_proxy")

    def __init__(
        self,
        by_scheme: Mapping[str, Proxy | None],
        no_proxy: tuple[_Bypass, ...] | None = (),
    ) -> None:
        self._by_scheme = dict(by_scheme)
        self._no_proxy = no_proxy
        self._chosen: dict[str, Proxy | None] = {}

    def __repr__(self) -> str:
        return f"ProxyRules({self._by_scheme!r})"

    def for_server(self, base: str) -> Proxy | None:
        """The proxy for requests to the server at `base` (a checked server URL)."""
        try:
            return self._chosen[base]
        except KeyError:
            pass
        url = yarl.URL(base)
        proxy = self._by_scheme.get(url.scheme)
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        if proxy is not None and bypasses(self._no_proxy, url.host or "", port):
            proxy = None
        if len(self._chosen) >= 64:
            self._chosen.clear()
        self._chosen[base] = proxy
        return proxy


def proxy_rules(
    proxy: str | None, *, trust_env: bool, environ: Mapping[str, str]
) -> ProxyRules | None:
    """The client's proxy rules: `proxy` for every target, else (with `trust_env`) the
    environment's; None when no request can use a proxy."""
    if proxy is not None:
        chosen = parse_proxy(proxy, "proxy")
        return ProxyRules({"http": chosen, "https": chosen})
    if not trust_env:
        return None
    fallback = _variable(environ, "ALL_PROXY")
    by_scheme: dict[str, Proxy | None] = {}
    for scheme in ("http", "https"):
        found = _variable(environ, f"{scheme}_proxy") or fallback
        by_scheme[scheme] = None if found is None else parse_proxy(found[1], found[0])
    if not any(by_scheme.values()):
        return None
    no_proxy = _variable(environ, "NO_PROXY")
    return ProxyRules(by_scheme, () if no_proxy is None else parse_no_proxy(no_proxy[1]))


# --- TLS -------------------------------------------------------------------------------


def tls_context(
    *,
    ca_bundle: str | os.PathLike[str] | None,
    ssl_context: ssl.SSLContext | None,
    native_tls: bool,
    trust_env: bool,
    environ: Mapping[str, str],
) -> ssl.SSLContext | None:
    """The context a client verifies servers with (see the module's docstring); None when
    aiohttp's default one is that context already (the variables unchanged since aiohttp
    read them), which saves loading the system's CA bundle again (tens of milliseconds)."""
    if not isinstance(native_tls, bool):
        raise ConfigurationError(f"native_tls must be True or False, got {native_tls!r}")
    if ssl_context is not None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError(
                f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}"
            )
        if ca_bundle is not None or native_tls:
            raise ConfigurationError(
                "ssl_context is used as given: load the CA into it "
                "(ssl_context.load_verify_locations(...)) instead of passing ca_bundle= "
                "or native_tls=True too"
            )
        if ssl_context.verify_mode == ssl.CERT_NONE or not ssl_context.check_hostname:
            warnings.warn(
                "emissary: the ssl_context given does not verify the server's certificate "
                "and host name (INSECURE: anyone on the network path can read and change "
                "requests, API key included)",
                UserWarning,
                stacklevel=_outside_the_package(),
            )
        return ssl_context
    if native_tls:
        if ca_bundle is not None:
            raise ConfigurationError(
                "native_tls=True trusts the system's store; pass either it or ca_bundle=, not both"
            )
        return _native_context()
    if ca_bundle is not None:
        try:
            path = os.fspath(ca_bundle)
        except TypeError:
            raise ConfigurationError(
                f"ca_bundle must be a path to a PEM file or a directory, got "
                f"{type(ca_bundle).__name__}"
            ) from None
        if os.path.isdir(path):
            return _own_context("ca_bundle", None, path, _version_of(path))
        if os.path.isfile(path):
            return _own_context("ca_bundle", path, None, _version_of(path))
        raise ConfigurationError(f"ca_bundle: no such file or directory: {path!r}")
    if not trust_env:
        defaults = ssl.get_default_verify_paths()
        cafile = defaults.openssl_cafile if os.path.isfile(defaults.openssl_cafile) else None
        capath = defaults.openssl_capath if os.path.isdir(defaults.openssl_capath) else None
        return _own_context("the system's default CA", cafile, capath, None)
    cafile = environ.get(CA_FILE_ENV) or None
    capath = environ.get(CA_DIR_ENV) or None
    if cafile is not None and not os.path.isfile(cafile):
        raise ConfigurationError(
            f"{CA_FILE_ENV} names no file ({cafile!r}): fix or unset it, or pass trust_env=False"
        )
    if capath is not None and not os.path.isdir(capath):
        raise ConfigurationError(
            f"{CA_DIR_ENV} names no directory ({capath!r}): fix or unset it, or pass "
            "trust_env=False"
        )
    if _AIOHTTP_SEES_THE_SAME and (cafile, capath) == _AT_IMPORT:
        return None
    if cafile is None and capath is None:
        return _own_context("the default CA", None, None, None)
    defaults = ssl.get_default_verify_paths()
    if cafile is None and os.path.isfile(defaults.openssl_cafile):
        cafile = defaults.openssl_cafile  # as OpenSSL does: one variable replaces one default
    if capath is None and os.path.isdir(defaults.openssl_capath):
        capath = defaults.openssl_capath
    version = None if cafile is None else _version_of(cafile)
    return _own_context(f"{CA_FILE_ENV}/{CA_DIR_ENV}", cafile, capath, version)


def _outside_the_package() -> int:
    """The `warnings.warn` stacklevel of the first caller outside emissary (the user's
    line, whichever client and constructor path led here)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _version_of(path: str) -> tuple[int, int]:
    """What tells a changed CA file from the one read before: its mtime and size."""
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=16)
def _own_context(
    source: str, cafile: str | None, capath: str | None, version: tuple[int, int] | None
) -> ssl.SSLContext:
    """A verifying context trusting `cafile` / `capath`, or (neither given) the defaults,
    made once per process for each (a context is read-only once built, and loading a CA
    bundle takes tens of milliseconds). `version` tells a rewritten file from the old."""
    try:
        if cafile is None and capath is None:
            context = ssl.create_default_context()
        else:
            context = ssl.create_default_context(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"{source}: {cafile or capath!r} holds no usable PEM certificate "
            f"({type(exc).__name__}: {exc})"
        ) from None
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.lru_cache(maxsize=1)
def _native_context() -> ssl.SSLContext:
    try:
        truststore = importlib.import_module("truststore")  # an extra: untyped here
    except ImportError:
        raise ConfigurationError(
            "native_tls=True needs the truststore package: pip install truststore "
            "(or the extra: pip install 'emissary-python[truststore]')"
        ) from None
    context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["http/1.1"])
    return context


# OpenSSL's X509_V_ERR_* codes, grouped by the advice they call for.
_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21, 27})
_EXPIRED = frozenset({10})
_NOT_YET_VALID = frozenset({9})
_WRONG_HOST = frozenset({62, 64})


def describe_certificate_error(error: BaseException | None, host: str) -> str:
    """What a failed certificate check of `host` means, and which option fixes it."""
    code = getattr(error, "verify_code", None)
    detail = getattr(error, "verify_message", None) or (str(error) if error else "unknown")
    if code in _UNKNOWN_CA:
        return (
            f"the certificate of {host} is signed by a CA this client does not trust "
            f"({detail}): trust that CA with ca_bundle='/path/to/ca.pem' or SSL_CERT_FILE, "
            "or use the system's store with native_tls=True"
        )
    if code in _EXPIRED:
        return (
            f"the certificate of {host} has expired ({detail}): the server must renew it "
            "(or this machine's clock is wrong); no client option fixes this safely"
        )
    if code in _NOT_YET_VALID:
        return f"the certificate of {host} is not valid yet ({detail}): check this machine's clock"
    if code in _WRONG_HOST:
        return (
            f"the certificate presented is not for {host} ({detail}): use the host name "
            "the certificate was issued for in server_url"
        )
    return f"the certificate of {host} failed verification ({detail})"
