"""`AsyncEmissaryClient`: settings, the transport, the retry runtime, and the one request
path (`_request`) that every operation goes through."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .._config import ApiKeySource, ClientSettings, parse_server_url, redact_url
from .._network import ProxyRules, proxy_rules, tls_context
from .._observe import Observer
from .._protocol import ATTEMPT_HEADER, IDEMPOTENCY_HEADER, Request, URLs
from .._retry import Retrying, RetryRuntime
from .._transport import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES, Transport
from .._upload import Multipart, UploadFile, UploadWatch
from ..errors import (
    APIConnectionError,
    ClientClosedError,
    ClientNotPicklableError,
    ConfigurationError,
    SDKError,
)
from ..models import APIResponse, FineTuneEvent, FineTuneRun, UploadProgress
from ..utils import RetryBudget, RetryConfig
from .resources import (
    AsyncBaseModels,
    AsyncDatasets,
    AsyncDeployments,
    AsyncProjects,
    AsyncTrainingJobs,
)

if TYPE_CHECKING:
    from .._batch import Pacer
    from .._fine_tune import CheckpointChoice

T = TypeVar("T")

_UNSET: Any = object()
_BUDGET_LEFT = "what was left of the call's max_elapsed_time (retry_config.backoff)"
_SECRET_OPTIONS = frozenset({"api_key", "server_url", "default_headers", "proxy"})


class AsyncEmissaryClient:
    """Async client for the Emissary API; use it as ``async with AsyncEmissaryClient() as c:``.

    Arguments:
        api_key: the API key, or a zero-argument callable returning it (called per request);
            defaults to the ``EMISSARY_CLIENT_API_KEY`` environment variable.
        server_url: the API's base URL; defaults to ``EMISSARY_SERVER_URL``.
        retry_config: how calls are retried; defaults to `emissary.utils.DEFAULT_RETRY_CONFIG`.
        timeout_ms: the limit for each attempt, connect to last body byte (default 60 s).
        max_connections: the size of the keep-alive connection pool (default 100).
        max_response_bytes: the largest success body accepted (default 16 MiB).
        retry_budget: the client-wide cap on retries (default `utils.RetryBudget()`: at most
            20 retries in a total outage, refilled by successes).
        default_headers: headers sent on every request, over the SDK's own.
        tracing: make an OpenTelemetry span for every call when ``opentelemetry-api`` is
            installed (default True); False turns it off.
        proxy: the proxy for every request, ``http://user:password@host:port`` (an
            ``https://`` proxy needs Python 3.11+); credentials go to the proxy alone.
        trust_env: when no `proxy` is given, read ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
            ``ALL_PROXY`` / ``NO_PROXY``, and trust ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``,
            as they are when the client is built (default True). ``~/.netrc`` is never read.
        ca_bundle: a PEM file or a directory of CA certificates, trusted instead of the
            defaults (a private CA, a TLS-inspecting gateway).
        ssl_context: the `ssl.SSLContext` to use as given (mutual TLS: load a client
            certificate into it with ``load_cert_chain``).
        native_tls: trust the operating system's certificate store, through ``truststore``
            (``pip install truststore``, or the extra ``truststore``).
        debug_logger: a `logging.Logger` that gets this client's records (DEBUG per
            attempt, INFO per retry) instead of the ``emissary`` logger; never the key.

    Arguments of the generated SDK that have no meaning here (``server_idx``,
    ``url_params``, ``client``, ``async_client``) raise `ConfigurationError` naming what
    to use instead (type checkers flag them too).

    The HTTP session is created on first use, on the event loop that uses it. Proxy and TLS
    settings belong to the connection pool: clients made by `with_options` share them.
    """

    base_models: AsyncBaseModels
    """The base models that can be fine-tuned: ``client.base_models.list()``."""
    projects: AsyncProjects
    """Projects: ``client.projects.create(...)``."""
    datasets: AsyncDatasets
    """A project's datasets: ``client.datasets.create(...)``."""
    training_jobs: AsyncTrainingJobs
    """Training jobs: ``client.training_jobs.create(...)``."""
    deployments: AsyncDeployments
    """Deployments, and inference on them: ``client.deployments.completions.create(...)``."""

    _settings: ClientSettings
    _transport: Transport
    _urls: URLs
    _retry_runtime: RetryRuntime
    _observer: Observer
    _proxies: ProxyRules | None
    _options: dict[str, Any]
    _parent: AsyncEmissaryClient | None
    _closed: bool

    def __init__(
        self,
        api_key: ApiKeySource | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: float | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retry_budget: RetryBudget | None = None,
        default_headers: Mapping[str, str] | None = None,
        tracing: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        native_tls: bool = False,
        debug_logger: logging.Logger | None = None,
        **unsupported: NoReturn,
    ) -> None:
        if unsupported:
            raise unsupported_argument(next(iter(unsupported)))
        self._init(
            {
                "api_key": api_key,
                "server_url": server_url,
                "retry_config": retry_config,
                "timeout_ms": timeout_ms,
                "max_connections": max_connections,
                "max_response_bytes": max_response_bytes,
                "retry_budget": retry_budget,
                "default_headers": default_headers,
                "tracing": tracing,
                "proxy": proxy,
                "trust_env": trust_env,
                "ca_bundle": ca_bundle,
                "ssl_context": ssl_context,
                "native_tls": native_tls,
                "debug_logger": debug_logger,
            },
            parent=None,
        )

    def _init(self, options: dict[str, Any], parent: AsyncEmissaryClient | None) -> None:
        """Set up from constructor `options`; with a `parent`, share its transport."""
        budget = options["retry_budget"]
        if budget is not None and not isinstance(budget, RetryBudget):
            raise ConfigurationError(
                "retry_budget must be an emissary.utils.RetryBudget or None, "
                f"got {type(budget).__name__}"
            )
        if not isinstance(options["tracing"], bool):
            raise ConfigurationError(f"tracing must be True or False, got {options['tracing']!r}")
        debug_logger = options["debug_logger"]
        if debug_logger is not None and not isinstance(debug_logger, logging.Logger):
            raise ConfigurationError(
                "debug_logger must be a logging.Logger (logging.getLogger(name)), got "
                f"{type(debug_logger).__name__}"
            )
        if parent is None:
            trust_env = options["trust_env"]
            if not isinstance(trust_env, bool):
                raise ConfigurationError(f"trust_env must be True or False, got {trust_env!r}")
            proxies = proxy_rules(options["proxy"], trust_env=trust_env, environ=os.environ)
            context = tls_context(
                ca_bundle=options["ca_bundle"],
                ssl_context=options["ssl_context"],
                native_tls=options["native_tls"],
                trust_env=trust_env,
                environ=os.environ,
            )
            # Behind a proxy every header goes with its request: aiohttp would also send a
            # session's headers (the key among them) to the proxy, outside the TLS tunnel.
            session_headers: Mapping[str, str] | None = None if proxies is None else {}
        else:
            proxies, context = parent._proxies, None
            session_headers = parent._settings.session_headers
        settings = ClientSettings.resolve(
            api_key=options["api_key"],
            server_url=options["server_url"],
            retry_config=options["retry_config"],
            timeout_ms=options["timeout_ms"],
            max_response_bytes=options["max_response_bytes"],
            default_headers=options["default_headers"],
            session_headers=session_headers,
        )
        # Kept for with_options and pickling; the key, URL, headers and proxy (which may
        # hold secrets) are read from the settings and `_origins`, whose reprs hide them.
        self._options = {k: v for k, v in options.items() if k not in _SECRET_OPTIONS}
        self._origins = _Origins(options, None if parent is None else parent)
        self._parent = parent  # keeps the shared pool's owner alive
        self._closed = False
        self._proxies = proxies
        if parent is None:
            self._transport = Transport(
                max_connections=options["max_connections"],
                headers=settings.session_headers,
                ssl_context=context,
            )
            self._urls = URLs()
            self._retry_runtime = RetryRuntime(budget=budget)
        else:
            self._transport, self._urls = parent._transport, parent._urls
            runtime = parent._retry_runtime
            self._retry_runtime = RetryRuntime(
                sleep=runtime.sleep,
                clock=runtime.clock,
                rng=runtime.random,
                budget=budget,
                bucket=runtime.bucket if budget is None else None,
            )
        self._settings = settings
        self._observer = Observer(tracing=options["tracing"], logger=debug_logger)
        self.base_models = AsyncBaseModels(self)
        self.projects = AsyncProjects(self)
        self.datasets = AsyncDatasets(self)
        self.training_jobs = AsyncTrainingJobs(self)
        self.deployments = AsyncDeployments(self)

    @property
    def server_url(self) -> str:
        """The base URL requests go to (unless a call overrides it)."""
        return self._settings.server_url

    @property
    def closed(self) -> bool:
        """True once the client (or the client whose pool it shares) has been closed."""
        return self._closed or self._transport.closed

    def with_options(
        self,
        *,
        api_key: ApiKeySource | None = _UNSET,
        server_url: str | None = _UNSET,
        retry_config: RetryConfig | None = _UNSET,
        timeout_ms: float | None = _UNSET,
        max_response_bytes: int = _UNSET,
        retry_budget: RetryBudget | None = _UNSET,
        default_headers: Mapping[str, str] | None = _UNSET,
        tracing: bool = _UNSET,
    ) -> AsyncEmissaryClient:
        """A client of this class with some settings changed, sharing this one's connection
        pool (and retry budget, unless `retry_budget` is given). Closing this client closes
        the pool for both; closing the new one only stops it from sending."""
        changes = {
            "api_key": api_key,
            "server_url": server_url,
            "retry_config": retry_config,
            "timeout_ms": timeout_ms,
            "max_response_bytes": max_response_bytes,
            "retry_budget": retry_budget,
            "default_headers": default_headers,
            "tracing": tracing,
        }
        settings = self._settings
        options = {
            **self._options,
            "api_key": settings.api_key,
            "server_url": settings.server_url,
            "default_headers": settings.default_headers,
            **{k: v for k, v in changes.items() if v is not _UNSET},
        }
        clone = type(self).__new__(type(self))
        clone._init(options, parent=self._parent or self)
        return clone

    async def fine_tune(
        self,
        *,
        base_model: str,
        train: UploadFile | None = None,
        test: UploadFile | None = None,
        train_dataset_id: str | None = None,
        test_dataset_id: str | None = None,
        project_id: str | None = None,
        project_name: str | None = None,
        train_test_split_ratio: float | None = None,
        parameters: dict[str, str | float | int] | None = None,
        hf_model_link: str | None = None,
        name: str | None = None,
        description: str | None = None,
        deploy: bool = True,
        checkpoint: CheckpointChoice = "last",
        server_type: str | None = None,
        state: str | os.PathLike[str] | None = None,
        progress: bool = False,
        on_event: Callable[[FineTuneEvent], object] | None = None,
    ) -> FineTuneRun:
        """From local data to a deployed model, in one call.

        Checks first, before anything is made: the base model exists (and can be
        deployed serverless, if ``server_type="serverless"``), and each local source can be
        read. Then it creates the project (unless ``project_id`` is given; named
        ``project_name``), uploads ``train`` (any `AsyncDatasets.upload` source: a path,
        bytes, a file object, ...; or ``train_dataset_id=`` for data already uploaded: a
        ``str`` given as ``train`` is always a path) and ``test`` if any, waits until
        they are processed, trains (``train_test_split_ratio``, ``parameters``,
        ``hf_model_link``, ``name``, ``description`` go to the training job) and waits,
        picks a checkpoint (``"last"``, a number, or a callable given the checkpoints),
        deploys it (unless ``deploy=False``; ``server_type``) and waits until it is
        ``Deployed``.

        ``state=PATH`` records the run in a JSON file after each step (and the name of
        what each create makes, before it): running again with the same file resumes,
        re-attaching to the job or deployment in progress; no step is made twice, nothing
        is uploaded or trained twice. A step's error is raised as it is, with the run so
        far as its ``.run``. ``on_event`` gets a `models.FineTuneEvent` as each step starts,
        progresses and ends; ``progress=True`` draws the uploads' and waits' bars.

        Returns:
            A `models.FineTuneRun`: ``project``, ``train_dataset``, ``test_dataset``,
            ``training_job``, ``checkpoint``, ``deployment``.
        """
        from .._fine_tune import fine_tune

        return await fine_tune(
            self, base_model=base_model, train=train, test=test,
            train_dataset_id=train_dataset_id, test_dataset_id=test_dataset_id,
            project_id=project_id, project_name=project_name,
            train_test_split_ratio=train_test_split_ratio, parameters=parameters,
            hf_model_link=hf_model_link, name=name, description=description, deploy=deploy,
            checkpoint=checkpoint, server_type=server_type, state=state, progress=progress,
            on_event=on_event,
        )  # fmt: skip

    async def close(self) -> None:
        """Close the HTTP session; the client cannot send requests afterwards. (A client
        made by `with_options` only stops sending: the pool is its parent's.)"""
        self._closed = True
        if self._parent is None:
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncEmissaryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the settings, not the connections: the copy opens its own on first use,
        in whatever process and event loop it lands. A key or server URL given as an
        argument travels in the pickle; one read from the environment is read again where
        the copy is built (so a worker uses its own, and the pickle holds no secret)."""
        return (_rebuild, (type(self), self._pickled_options()))

    def _pickled_options(self) -> dict[str, Any]:
        options = dict(self._options)
        if options.get("ssl_context") is not None:
            raise ClientNotPicklableError(
                "a client built with ssl_context= cannot be pickled (an ssl.SSLContext does "
                "not pickle): pass ca_bundle= instead, or build the client where it is used"
            )
        origins = self._origins
        return {
            **options,
            "api_key": origins.api_key,
            "server_url": origins.server_url,
            "default_headers": self._settings.default_headers or None,
            "proxy": origins.proxy,
        }

    def __repr__(self) -> str:
        settings = getattr(self, "_settings", None)  # absent if __init__ raised
        if settings is None:
            return f"{type(self).__name__}(<not initialised>)"
        url = redact_url(settings.server_url)
        return f"{type(self).__name__}(server_url={url!r}, api_key=<redacted>)"

    async def _request(
        self,
        request: Request,
        *,
        retries: RetryConfig | None,
        server_url: str | None,
        timeout_ms: float | None,
        raw: bool = False,
        pacer: Pacer | None = None,
        not_after: float | None = None,
    ) -> Any:
        """The one request path: send `request` (retrying per the call's settings), parse
        its response, and return the result (or, with `raw`, the `models.APIResponse`).
        A batch's `pacer` admits each attempt and hears how it ended; the call's time
        budget starts when its first attempt is admitted. A wait's poll passes its deadline
        as `not_after` (on the retry clock): no attempt runs and no retry waits past it,
        and a call made at or after it is one attempt (`timeout_ms`), not retried.
        (Typed by the overloads of the resources' view of a client, `resources._Client`.)

        Every operation comes through here, so headers, retries, deadlines, timing,
        logging, tracing and raw responses are each done once, for all of them.
        """
        if self._closed:
            raise ClientClosedError("the client is closed; create a new client to send requests")
        settings = self._settings
        base = settings.server_url if server_url is None else parse_server_url(server_url)
        url = self._urls.get(base, request.path, request.query)
        proxy = None if self._proxies is None else self._proxies.for_server(base)
        config, timeout_s, first_timeout_s = (
            settings.default_limits  # the usual case: the call overrides neither
            if retries is None and timeout_ms is None
            else settings.limits(retries, timeout_ms)
        )
        headers = settings.call_headers(
            request.headers, request.idempotency_key, request.content_type, request.method == "POST"
        )
        runtime = self._retry_runtime
        observer = self._observer
        # A batch admits the call before its span starts: one cancelled while it waits
        # leaves no span open.
        ticket = 0 if pacer is None else await pacer.admit()
        span = observer.start(request, url) if observer.active else None
        started = runtime.clock()
        max_bytes = settings.max_response_bytes
        log = observer.debug_enabled()
        limit, number, retrying, reached = first_timeout_s, 1, None, False
        if not_after is not None and 0 < not_after - started < limit:
            limit = not_after - started
        try:
            while True:  # the attempts: one place sends and parses
                began = time.perf_counter() if log else 0.0
                try:
                    response = await self._transport.send(
                        request.method,
                        url,
                        headers,
                        request.body,
                        timeout_s=limit,
                        max_response_bytes=max_bytes,
                        proxy=proxy,
                        limited_by="timeout_ms" if limit >= timeout_s else _BUDGET_LEFT,
                        watch=None
                        if request.stall_timeout_s is None
                        else _watch(request, number, limit),
                    )
                    parsed = request.parse(response)
                except (SDKError, APIConnectionError) as error:
                    if request.method == "GET":
                        error.maybe_committed = False  # a read changes nothing
                    if (reached or request.missing_ok) and request.gone(error):
                        parsed = None  # a delete that an earlier attempt (or no one) made
                    else:
                        if pacer is not None:
                            pacer.settle(ticket, error)
                        if log:
                            observer.attempt_failed(request, number, error, began)
                        if retrying is None:
                            retrying = Retrying(
                                config, timeout_s, runtime, started, observer.logger,
                                # an upload's attempts take as long as the file: its waits
                                # and answers get the budget, counted from each failure
                                rolling=request.stall_timeout_s is not None,
                                not_after=not_after,
                            )  # fmt: skip
                        # Wait, or raise the error that ends the call:
                        limit = await retrying.after(
                            error, idempotent=request.idempotent, replayable=request.replayable
                        )
                        reached = reached or error.maybe_committed
                        number += 1
                        headers[ATTEMPT_HEADER] = str(number)
                        if pacer is not None:
                            ticket = await pacer.admit()
                        continue
                except BaseException as error:  # cancelled mid-attempt: free its slot
                    if pacer is not None:
                        pacer.settle(ticket, error)
                    raise
                if pacer is not None:
                    pacer.settle(ticket, None)
                if log:
                    observer.attempt_ok(request, number, response, began)
                break
        except BaseException as error:
            if span is not None:
                observer.failed(span, error)
            raise
        finally:
            if isinstance(request.body, Multipart):
                request.body.source.restore()  # the caller's file where it was
        runtime.bucket.deposit()
        if span is not None:
            observer.succeeded(span, response, parsed, number - 1)
        if not raw:
            return parsed
        return APIResponse(
            status_code=response.status,
            headers=response.headers,
            content=response.content,
            url=url,
            idempotency_key=headers.get(IDEMPOTENCY_HEADER),
            retries_taken=number - 1,
            elapsed_s=max(0.0, runtime.clock() - started),
            parsed=parsed,
        )


_REPLACEMENTS = {
    "server_idx": "the API has one server: pass server_url='https://...' (or set "
    "EMISSARY_SERVER_URL)",
    "url_params": "pass the whole URL as server_url='https://...'",
    "client": "the SDK makes its own aiohttp session: pass proxy=, ssl_context= or "
    "ca_bundle=, timeout_ms=, max_connections= or default_headers= for what an httpx "
    "client set",
    "async_client": "the SDK makes its own aiohttp session: pass proxy=, ssl_context= or "
    "ca_bundle=, timeout_ms=, max_connections= or default_headers= for what an httpx "
    "client set",
}
"""The generated SDK's constructor arguments that do not exist here, and what to use."""


def unsupported_argument(name: str) -> ConfigurationError:
    """The error for a constructor argument the client does not take: what to use instead
    of one of the generated SDK's, or the closest real one for a typo."""
    replacement = _REPLACEMENTS.get(name)
    if replacement is not None:
        return ConfigurationError(f"{name}= is not supported by emissary: {replacement}")
    import difflib
    import inspect

    parameters = inspect.signature(AsyncEmissaryClient.__init__).parameters
    known = [p for p in parameters if p not in ("self", "unsupported")]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the arguments: {', '.join(known)}"
    return ConfigurationError(f"unexpected argument {name}={hint}")


def _watch(request: Request, attempt: int, answer_s: float) -> UploadWatch:
    """The watch of one attempt of an upload: its stall timeout, the time its answer has
    after its last byte (the attempt's limit), and its progress reported as a
    `models.UploadProgress` of this attempt."""
    body, callback = request.body, request.on_progress
    assert isinstance(body, Multipart) and request.stall_timeout_s is not None
    total, name = body.source.size, body.file_name

    def sent(count: int) -> None:
        callback(UploadProgress(count, total, attempt, name))

    return UploadWatch(request.stall_timeout_s, answer_s, None if callback is None else sent)


class _Origins:
    """The settings a pickle must not freeze, as the constructor got them: the key and the
    server URL (None: read from the environment, as the copy will do again) and the proxy.
    A client made by `with_options` inherits its parent's unless it changed them."""

    __slots__ = ("api_key", "proxy", "server_url")

    def __init__(self, options: dict[str, Any], parent: AsyncEmissaryClient | None) -> None:
        key, url = options["api_key"], options["server_url"]
        if parent is None:
            self.api_key, self.server_url, self.proxy = key, url, options["proxy"]
            return
        inherited = parent._origins
        self.api_key = inherited.api_key if key is parent._settings.api_key else key
        self.server_url = inherited.server_url if url == parent._settings.server_url else url
        self.proxy = inherited.proxy

    def __repr__(self) -> str:
        return "_Origins(<redacted>)"


def _rebuild(cls: type[Any], options: dict[str, Any]) -> Any:
    """A client of `cls` (async or sync) built from pickled options."""
    return cls(**options)
