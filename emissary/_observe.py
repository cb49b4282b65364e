"""Seeing what a call does: log records and OpenTelemetry spans, for the request path.

Logging goes to the ``emissary`` logger (the library adds only a `logging.NullHandler`):
DEBUG, one record per attempt (method, path, status or error, attempt number, elapsed ms,
request id; the elapsed time is the wall clock's, `time.perf_counter`); INFO, each retry
scheduled (in `_retry`). ``EMISSARY_LOG=debug`` (or ``info``)
attaches a stderr handler to that logger alone. No record ever holds the API key, proxy
credentials, the prompt or the completion, and nothing is formatted when the level is off.

Tracing: when ``opentelemetry-api`` is installed and the client's ``tracing`` is on, every
logical call (all its attempts) is one span of kind CLIENT: an inference call is named by
the GenAI semantic conventions (``text_completion {deployment}``, ``chat {deployment}``,
...) and carries their attributes; any other is named by its operation
(``deployments.get``), with ``emissary.operation`` and its ids. The span is current while
the attempts run, so HTTP spans of aiohttp's own instrumentation nest under it. Prompt and
completion text are recorded only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
is ``true``. Without the package none of this is imported or run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ._protocol import REQUEST_ID_HEADER
from ._version import __version__
from .errors import SDKError

if TYPE_CHECKING:
    import yarl

    from ._protocol import Request, Response

_logger = logging.getLogger("emissary")
_logger.addHandler(logging.NullHandler())

_UNKNOWN = object()
LOG_ENV = "EMISSARY_LOG"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _configure_from_environment() -> None:
    """``EMISSARY_LOG=debug|info``: a stderr handler on the ``emissary`` logger only."""
    level = os.environ.get(LOG_ENV, "").strip().upper()
    if level not in ("DEBUG", "INFO"):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _logger.addHandler(handler)
    _logger.setLevel(level)


_configure_from_environment()


class Observer:
    """A client's logging and tracing; `active` is False when it has no tracer."""

    __slots__ = (
        "_capture",
        "_context",
        "_no_sdk",
        "_trace",
        "_tracer",
        "active",
        "debug_enabled",
        "logger",
    )

    def __init__(self, *, tracing: bool, logger: logging.Logger | None = None) -> None:
        self.logger = _logger if logger is None else logger
        """Where the client's records go: the ``emissary`` logger, or its ``debug_logger``."""
        self.debug_enabled = functools.partial(self.logger.isEnabledFor, logging.DEBUG)
        """True when DEBUG records are wanted (asked on every call: cheap, and honours a
        level set at any time)."""
        self._tracer: Any = None
        self._trace: Any = None
        self._context: Any = None
        self._capture = False
        if tracing and _installed("opentelemetry.trace"):
            # The API only (a no-op until an SDK is set up), imported as untyped modules: the
            # package is optional, and its presence must not change how this module checks.
            trace = importlib.import_module("opentelemetry.trace")
            self._trace = trace
            self._no_sdk = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
            trace.get_tracer_provider()  # loads one named by OTEL_PYTHON_TRACER_PROVIDER
            self._context = importlib.import_module("opentelemetry.context")
            self._tracer = trace.get_tracer("emissary", __version__)
            self._capture = os.environ.get(CAPTURE_CONTENT_ENV, "").lower() == "true"
        self.active = self._tracer is not None
        """True when calls make spans."""

    # --- logging ---------------------------------------------------------------------

    def attempt_ok(
        self,
        request: Request,
        number: int,
        response: Response,
        started: float,
    ) -> None:
        """One DEBUG record for an attempt that got a response the call accepted."""
        self.logger.debug(
            "%s %s attempt %d: %d in %.1f ms (request id %s)",
            request.method,
            request.path,
            number,
            response.status,
            (time.perf_counter() - started) * 1000,
            response.headers.get(REQUEST_ID_HEADER),
        )

    def attempt_failed(
        self,
        request: Request,
        number: int,
        error: BaseException,
        started: float,
    ) -> None:
        """One DEBUG record for a failed attempt: the server's status, or the error's type
        (and the proxy's status, for an `APIProxyError`)."""
        status = getattr(error, "status_code", None)
        what = type(error).__name__ if status is None else str(status)
        if status is not None and not isinstance(error, SDKError):
            what = f"{type(error).__name__} {status}"
        self.logger.debug(
            "%s %s attempt %d: %s in %.1f ms (request id %s)",
            request.method,
            request.path,
            number,
            what,
            (time.perf_counter() - started) * 1000,
            getattr(error, "request_id", None),
        )

    # --- tracing ---------------------------------------------------------------------

    def start(self, request: Request, url: yarl.URL) -> Any:
        """Open the call's span and make it current; None if it would not be recorded."""
        trace = self._trace
        # The API alone (no provider set): every span would be a no-op, so build none. The
        # API keeps its provider in this module global (None until one is set);
        # tests/test_observability.py guards the name. Cheaper than get_tracer_provider(),
        # which reads the environment on every call while none is set.
        provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
        if provider is None or isinstance(
            trace.get_tracer_provider() if provider is _UNKNOWN else provider, self._no_sdk
        ):
            return None
        attributes = request.span_attributes()
        gen_ai = request.operation.gen_ai is not None
        if gen_ai:
            attributes["gen_ai.provider.name"] = "emissary"
        attributes["server.address"] = url.host or ""
        if url.port is not None:
            attributes["server.port"] = url.port
        if self._capture and (messages := request.input_messages()) is not None:
            attributes["gen_ai.input.messages"] = _messages(messages)
        span = self._tracer.start_span(
            request.span_name(), kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        if not span.is_recording():  # no SDK, or sampled out: nothing more to do
            return None
        return span, self._context.attach(trace.set_span_in_context(span)), gen_ai

    def succeeded(self, handle: Any, response: Response, parsed: Any, retries: int) -> None:
        """Close the span of a call that returned."""
        span, token, gen_ai = handle
        response_id = getattr(parsed, "id", None) if gen_ai else None
        if response_id is not None:
            span.set_attribute("gen_ai.response.id", response_id)
        request_id = response.headers.get(REQUEST_ID_HEADER)
        if request_id is not None:
            span.set_attribute("emissary.request_id", request_id)
        if retries:
            span.set_attribute("http.request.resend_count", retries)
        if self._capture and gen_ai:
            text = getattr(parsed, "response", None)
            if isinstance(text, str):
                span.set_attribute("gen_ai.output.messages", _messages([("assistant", text)]))
        self._end(span, token)

    def failed(self, handle: Any, error: BaseException) -> None:
        """Close the span of a call that raised: status ERROR and ``error.type``."""
        span, token, _ = handle
        span.set_attribute("error.type", type(error).__name__)
        request_id = getattr(error, "request_id", None)
        if request_id is not None:
            span.set_attribute("emissary.request_id", request_id)
        retries = getattr(error, "retries_taken", 0)
        if retries:
            span.set_attribute("http.request.resend_count", retries)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(error).__name__))
        self._end(span, token)

    def _end(self, span: Any, token: Any) -> None:
        self._context.detach(token)
        span.end()


def _installed(name: str) -> bool:
    """True when `name` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent missing, or blocked in sys.modules
        return False


def _messages(messages: list[tuple[str, str]]) -> str:
    """A GenAI messages attribute: each (role, text) as a message with one text part."""
    return json.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in messages]
    )
