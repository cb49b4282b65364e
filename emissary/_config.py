"""Client settings: where they come from (arguments, environment) and how they are checked.

Everything here runs once per client (or per call that overrides a setting), except
`ClientSettings.call_headers`, the one per-call piece: a new key and the attempt number.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping

import yarl

from ._protocol import (
    API_KEY_HEADER,
    ATTEMPT_HEADER,
    CONTENT_TYPE_HEADER,
    IDEMPOTENCY_HEADER,
    new_idempotency_key,
    session_headers,
)
from ._retry import first_attempt_timeout
from ._validation import check_headers
from .errors import ConfigurationError, RequestValidationError
from .utils import DEFAULT_RETRY_CONFIG, RetryConfig

API_KEY_ENV = "EMISSARY_CLIENT_API_KEY"
SERVER_URL_ENV = "EMISSARY_SERVER_URL"
DEFAULT_TIMEOUT_MS = 60_000
"""Each attempt (connect to last body byte) is bounded by this unless ``timeout_ms`` is given."""

ApiKeySource = str | Callable[[], str]
_ATTEMPT = ATTEMPT_HEADER.lower()


class ApiKey:
    """The API key, or a zero-argument callable returning it; never shown in a repr."""

    __slots__ = ("_source",)

    def __init__(self, source: ApiKeySource) -> None:
        if isinstance(source, str):
            check_api_key(source)
        elif not callable(source):
            raise ConfigurationError(
                f"api_key must be a string or a zero-argument callable, got {type(source).__name__}"
            )
        self._source = source

    @property
    def is_static(self) -> bool:
        """True when the key is a fixed string (headers can then be built once)."""
        return isinstance(self._source, str)

    def get(self) -> str:
        """The key to send now (calls the provider when the key is a callable)."""
        source = self._source
        if isinstance(source, str):
            return source
        try:
            value = source()
        except Exception as exc:
            raise ConfigurationError(f"the api_key callable raised {type(exc).__name__}") from None
        return check_api_key(value)

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)"

    def __reduce__(self) -> tuple[object, ...]:
        return (ApiKey, (self._source,))


class KeyedHeaders(dict[str, str]):
    """Request headers that may include the API key: shown with the key redacted."""

    def __repr__(self) -> str:
        secret = API_KEY_HEADER.lower()
        return repr({k: "<redacted>" if k.lower() == secret else v for k, v in self.items()})


def check_api_key(value: object) -> str:
    """Return `value` if it can be sent as the ``X-API-Key`` header, else raise."""
    if not isinstance(value, str):
        raise ConfigurationError(f"the API key must be a string, got {type(value).__name__}")
    if not value:
        raise ConfigurationError(f"the API key is empty: pass api_key=... or set {API_KEY_ENV}")
    if any(ch in value for ch in "\r\n\x00") or not value.isprintable():
        # Never echo the key: it may be a real secret with a stray newline.
        raise ConfigurationError(
            "the API key contains a line break or control character; "
            "strip it (e.g. key.strip()) before passing it"
        )
    return value


def resolve_api_key(api_key: ApiKeySource | ApiKey | None) -> ApiKey:
    """The key from the argument, else from ``EMISSARY_CLIENT_API_KEY``, else an error."""
    if isinstance(api_key, ApiKey):  # a client's own, passed on by with_options
        return api_key
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV) or None
        if api_key is None:
            raise ConfigurationError(f"no API key: pass api_key=... or set {API_KEY_ENV}")
    return ApiKey(api_key)


_USERINFO = re.compile(r"(?<=//)[^/?#@]*@")


def redact_url(value: str) -> str:
    """`value` with any ``user:password@`` part shown as ``***@`` (for reprs and messages;
    works on strings that are not valid URLs too)."""
    return _USERINFO.sub("***@", value)


def parse_server_url(value: object) -> str:
    """Check a server URL and return it without a trailing slash."""
    if not isinstance(value, str) or not value:
        shown = "a " + type(value).__name__ if not isinstance(value, str) else "''"
        raise ConfigurationError(
            f"server_url must be a non-empty string such as 'https://api.example.com', got {shown}"
        )
    return _parse_server_url(value)


@functools.lru_cache(maxsize=64)
def _parse_server_url(value: str) -> str:
    shown = repr(redact_url(value))
    try:
        url = yarl.URL(value)
        host = url.host  # decoded lazily: a name that is not valid IDNA raises here
    except (ValueError, TypeError):
        raise ConfigurationError(f"server_url is not a valid URL: {shown}") from None
    if url.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"server_url must start with http:// or https:// and name a host, got {shown}"
        )
    if url.query_string or url.fragment:
        raise ConfigurationError(f"server_url must not have a query or fragment, got {shown}")
    return str(url).rstrip("/")


def resolve_server_url(server_url: str | None) -> str:
    """The URL from the argument, else from ``EMISSARY_SERVER_URL``, else an error."""
    if server_url is None:
        server_url = os.environ.get(SERVER_URL_ENV) or None
        if server_url is None:
            raise ConfigurationError(
                f"no server URL: pass server_url=... or set {SERVER_URL_ENV} "
                "(for local testing, see emissary.testing.Emulator)"
            )
        try:
            return parse_server_url(server_url)
        except ConfigurationError as error:  # say where the bad URL came from
            raise ConfigurationError(f"{SERVER_URL_ENV}: {error}") from None
    return parse_server_url(server_url)


def check_timeout_ms(value: object, name: str = "timeout_ms") -> float:
    """A timeout in milliseconds, checked, as seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12:
        raise ConfigurationError(
            f"{name} must be a positive number of milliseconds (or None), got {value!r}"
        )
    return value / 1000.0


def check_retry_config(value: object, name: str = "retries") -> RetryConfig:
    """`value` if it is a `RetryConfig`, else an error naming `name`."""
    if isinstance(value, RetryConfig):
        return value
    raise ConfigurationError(
        f"{name} must be an emissary.utils.RetryConfig or None, got {type(value).__name__}"
    )


class ClientSettings:
    """Everything a client needs to send requests, checked once (see `resolve`)."""

    __slots__ = (
        "api_key",
        "default_headers",
        "default_limits",
        "first_attempt_timeout_s",
        "key_provider",
        "max_response_bytes",
        "own_headers",
        "retry_config",
        "server_url",
        "session_headers",
        "timeout_s",
    )

    def __init__(
        self,
        *,
        server_url: str,
        api_key: ApiKey,
        retry_config: RetryConfig,
        timeout_s: float,
        max_response_bytes: int,
        default_headers: Mapping[str, str],
        session_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.server_url = server_url
        self.api_key = api_key
        self.retry_config = retry_config
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.default_headers = dict(default_headers)
        """The caller's ``default_headers`` (checked)."""
        mine = session_headers_for(api_key, default_headers)
        self.session_headers = mine if session_headers is None else session_headers
        """Headers the same on every request, set once on the HTTP session (never in a
        repr): content type, accept, user agent, the default headers and, when it is a
        fixed string, the key. A client made by ``with_options`` shares its parent's."""
        self.own_headers: dict[str, str] | None = (
            None if session_headers is None else _differences(mine, session_headers)
        )
        """What this client sends differently from the session it shares (its own key or
        default headers), sent with each call; None when the session is its own."""
        self.first_attempt_timeout_s = first_attempt_timeout(retry_config, timeout_s)
        """The first attempt's limit under the client's own settings."""
        self.default_limits = (retry_config, timeout_s, self.first_attempt_timeout_s)
        """`limits` of a call that overrides neither setting (read on every call)."""
        self.key_provider = None if api_key.is_static else api_key
        """The key when a callable gives it (asked on every call), else None."""

    def __repr__(self) -> str:
        return (
            f"ClientSettings(server_url={redact_url(self.server_url)!r}, api_key=<redacted>, "
            f"retry_config={self.retry_config!r}, timeout_s={self.timeout_s!r})"
        )

    def call_headers(
        self,
        extra: Mapping[str, str] | None,
        idempotency_key: str | None,
        content_type: str | None,
        post: bool,
    ) -> dict[str, str]:
        """A fresh dict of one call's own headers, as its first attempt sends them: for a
        POST the ``Idempotency-Key`` (given, or new), the attempt number, the body's
        Content-Type, the key when a callable gives it (then in a dict whose repr hides
        it, for tracebacks that show local variables), this client's own headers, and the
        caller's `extra` over all of them.
        """
        headers = {ATTEMPT_HEADER: "1"}
        if post:
            headers[IDEMPOTENCY_HEADER] = idempotency_key or new_idempotency_key()
        if content_type is not None:
            headers[CONTENT_TYPE_HEADER] = content_type
        if self.key_provider is None and not self.own_headers and not extra:
            return headers  # the usual case
        headers = KeyedHeaders(headers)
        if self.key_provider is not None:
            headers[API_KEY_HEADER] = self.key_provider.get()
        if self.own_headers:
            headers.update(self.own_headers)
        if extra:
            overridden = {name.lower() for name in extra}
            for name in [n for n in headers if n.lower() in overridden]:
                del headers[name]
            headers.update(extra)
            for name in [n for n in headers if n.lower() == _ATTEMPT]:
                del headers[name]
            headers[ATTEMPT_HEADER] = "1"  # always the SDK's: the attempt's number
        return headers

    def limits(
        self, retries: RetryConfig | None, timeout_ms: float | None
    ) -> tuple[RetryConfig, float, float]:
        """A call's retry settings, attempt limit and first attempt's limit (seconds)."""
        if retries is None and timeout_ms is None:
            return self.default_limits
        config = self.retry_config if retries is None else check_retry_config(retries)
        timeout_s = self.timeout_s if timeout_ms is None else check_timeout_ms(timeout_ms)
        return config, timeout_s, first_attempt_timeout(config, timeout_s)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: ApiKeySource | ApiKey | None,
        server_url: str | None,
        retry_config: RetryConfig | None,
        timeout_ms: float | None,
        max_response_bytes: int,
        default_headers: Mapping[str, str] | None,
        session_headers: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        """Check the constructor arguments and fill in defaults and environment values.
        `session_headers`: what the HTTP session the client sends on sets on every request
        (a parent's, for ``with_options``; none at all behind a proxy, which would see them
        on CONNECT), if not this client's own."""
        retry = (
            DEFAULT_RETRY_CONFIG
            if retry_config is None
            else check_retry_config(retry_config, "retry_config")
        )
        timeout_s = (
            DEFAULT_TIMEOUT_MS / 1000.0 if timeout_ms is None else check_timeout_ms(timeout_ms)
        )
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or (max_response_bytes < 1)
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a positive integer, got {max_response_bytes!r}"
            )
        try:
            defaults = (
                {} if default_headers is None else check_headers(default_headers, "default_headers")
            )
        except RequestValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        return cls(
            server_url=resolve_server_url(server_url),
            api_key=resolve_api_key(api_key),
            retry_config=retry,
            timeout_s=timeout_s,
            max_response_bytes=max_response_bytes,
            default_headers=defaults,
            session_headers=session_headers,
        )


def session_headers_for(api_key: ApiKey, default_headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a client's HTTP session sends on every request (see `session_headers`)."""
    headers = session_headers(api_key.get() if api_key.is_static else None)
    overridden = {name.lower() for name in default_headers}
    for name in [n for n in headers if n.lower() in overridden]:
        del headers[name]
    headers.update(default_headers)
    return headers


def _differences(mine: Mapping[str, str], shared: Mapping[str, str]) -> dict[str, str]:
    """What `mine` sends that `shared` does not, or sends otherwise. (A header `shared`
    has and `mine` lacks, a key, say, is overridden by the call's own.)"""
    return {name: value for name, value in mine.items() if shared.get(name) != value}
