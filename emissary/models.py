"""The wire models (msgspec Structs) and, under their familiar names, the API errors.

Input is strict: the request body forbids unknown fields and carries its allowed ranges as
`msgspec.Meta` constraints, checked before anything is sent. Output is lenient: response and
error bodies accept fields the server adds later.

The long names are those of the generated `emissary-client-sdk`; `CompletionRequest` and
`Completion` are short aliases for the same classes. A request body may also be a plain
dict: `GetCompletionsFromDeploymentRequestBodyTypedDict` (alias `CompletionRequestDict`)
types it, so mypy and pyright catch ``{"promt": ...}`` or ``{"prompt": 1}``.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeAlias, TypedDict, TypeVar

import msgspec
from multidict import CIMultiDict

if TYPE_CHECKING:
    import yarl

from .errors import (
    APIConnectionError,
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    APITimeoutError,
    EmissaryError,
    ResponseValidationError,
    SDKError,
)

__all__ = [
    "APIConnectionError",
    "APIResponse",
    "APIErrorInvalidInput",
    "APIErrorInvalidInputData",
    "APIErrorNotFound",
    "APIErrorNotFoundData",
    "APIErrorUnauthorized",
    "APIErrorUnauthorizedData",
    "APITimeoutError",
    "BatchFailure",
    "BatchOutcome",
    "BatchResult",
    "BatchSuccess",
    "Completion",
    "CompletionRequest",
    "CompletionRequestDict",
    "EmissaryError",
    "GetCompletionsFromDeploymentRequestBody",
    "GetCompletionsFromDeploymentRequestBodyTypedDict",
    "GetCompletionsFromDeploymentResponseBody",
    "RawResponse",
    "ResponseValidationError",
    "SDKError",
]

_FINITE = sys.float_info.max
INT32_MAX = 2**31 - 1
"""The largest ``int32`` (the spec's format for ``max_new_tokens``)."""
INT64_MAX = 2**63 - 1
"""The largest integer the API takes where the spec gives no format (a signed 64-bit one)."""

Temperature = Annotated[
    float, msgspec.Meta(ge=0, le=_FINITE, description="sampling temperature, >= 0")
]
TopP = Annotated[float, msgspec.Meta(ge=0, le=1, description="nucleus cut-off, in [0, 1]")]
TopK = Annotated[
    int, msgspec.Meta(ge=0, le=INT64_MAX, description="keep the k most likely tokens, >= 0")
]
MaxNewTokens = Annotated[
    int, msgspec.Meta(ge=1, le=INT32_MAX, description="upper bound on new tokens, an int32 >= 1")
]
NoRepeatNgramSize = Annotated[
    int, msgspec.Meta(ge=0, le=INT64_MAX, description="n-gram size never repeated")
]


class GetCompletionsFromDeploymentRequestBody(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """The prompt and generation settings of one completion request.

    Only `prompt` is required; settings left as ``None`` are not sent, so the deployment's
    own defaults apply.
    """

    prompt: str
    """The input prompt."""
    temperature: Temperature | None = None
    """Sampling temperature, a finite number >= 0."""
    max_new_tokens: MaxNewTokens | None = None
    """Upper bound on the number of generated tokens, an integer from 1 to 2**31 - 1."""
    top_p: TopP | None = None
    """Nucleus sampling: keep tokens up to this cumulative probability, in [0, 1]."""
    top_k: TopK | None = None
    """Keep only the k most likely tokens, an integer from 0 to 2**63 - 1."""
    no_repeat_ngram_size: NoRepeatNgramSize | None = None
    """N-grams of this size never repeat, an integer from 0 to 2**63 - 1."""
    do_sample: bool | None = None
    """Sample instead of greedy decoding."""


class GetCompletionsFromDeploymentResponseBody(msgspec.Struct, kw_only=True):
    """A completion: its `id` and generated text `response` (each may be absent)."""

    id: str | None = None
    """The unique identifier of the completion."""
    response: str | None = None
    """The generated text."""


class _RequestBodyDictRequired(TypedDict):
    prompt: str


class GetCompletionsFromDeploymentRequestBodyTypedDict(_RequestBodyDictRequired, total=False):
    """A request body as a dict, for type checkers: ``prompt`` is required, the rest may be
    left out (or None: not sent). The values are checked at run time all the same."""

    temperature: float | None
    max_new_tokens: int | None
    top_p: float | None
    top_k: int | None
    no_repeat_ngram_size: int | None
    do_sample: bool | None


CompletionRequest = GetCompletionsFromDeploymentRequestBody
CompletionRequestDict = GetCompletionsFromDeploymentRequestBodyTypedDict
Completion = GetCompletionsFromDeploymentResponseBody


class APIErrorInvalidInputData(msgspec.Struct, kw_only=True):
    """The body of a 400 response."""

    status: int
    error: str


class APIErrorUnauthorizedData(msgspec.Struct, kw_only=True):
    """The body of a 401 response."""

    status: int
    error: str


class APIErrorNotFoundData(msgspec.Struct, kw_only=True):
    """The body of a 404 response; `code` says what was not found."""

    status: int
    error: str
    code: str


class RawResponse(msgspec.Struct, frozen=True):
    """The HTTP response behind an `SDKError`: picklable, detached from the connection."""

    status_code: int
    headers: CIMultiDict[str]
    content: bytes
    url: str

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


T = TypeVar("T")


class APIResponse(Generic[T]):
    """The HTTP response behind a call, from ``...with_raw_response.create(...)``.

    Attributes:
        status_code: the HTTP status of the last attempt.
        headers: its headers (a case-insensitive mapping).
        content: its body, as bytes (decoded from gzip etc.).
        url: the URL the call went to (without any ``user:password@``).
        request_id: the server's ``X-Request-Id`` for it, or None.
        idempotency_key: the ``Idempotency-Key`` every attempt of the call carried.
        retries_taken: attempts minus one.
        elapsed: from the first attempt to the last byte (counted on the retry clock).

    `parse()` gives the result the plain method would have returned. Picklable. (The URL,
    the headers' copy and the timedelta are made when first asked for: most callers read a
    field or two.)
    """

    __slots__ = (
        "_elapsed_s",
        "_headers",
        "_parsed",
        "_url",
        "content",
        "idempotency_key",
        "retries_taken",
        "status_code",
    )

    def __init__(
        self,
        *,
        status_code: int,
        headers: Mapping[str, str],
        content: bytes,
        url: yarl.URL | str,
        idempotency_key: str,
        retries_taken: int,
        elapsed_s: float,
        parsed: T,
    ) -> None:
        self.status_code = status_code
        self._headers = headers
        self.content = content
        self._url = url
        self.idempotency_key = idempotency_key
        self.retries_taken = retries_taken
        self._elapsed_s = elapsed_s
        self._parsed = parsed

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive)."""
        return self._headers

    @property
    def url(self) -> str:
        """The URL the call went to, without credentials."""
        url = self._url
        return url if isinstance(url, str) else str(url.with_user(None))

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id`` for the response, or None."""
        return self._headers.get("X-Request-Id")

    @property
    def elapsed(self) -> datetime.timedelta:
        """From the call's first attempt to the last byte of its response."""
        return datetime.timedelta(seconds=self._elapsed_s)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def parse(self) -> T:
        """The call's result (a `Completion` for completions), read from this response."""
        return self._parsed

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            "status_code": self.status_code,
            "headers": CIMultiDict(self._headers),
            "content": self.content,
            "url": self.url,
            "idempotency_key": self.idempotency_key,
            "retries_taken": self.retries_taken,
            "elapsed_s": self._elapsed_s,
            "parsed": self._parsed,
        }
        return (_rebuild_response, (state,))

    def __repr__(self) -> str:
        return (
            f"APIResponse(status_code={self.status_code}, url={self.url!r}, "
            f"request_id={self.request_id!r}, retries_taken={self.retries_taken})"
        )


def _rebuild_response(state: dict[str, Any]) -> APIResponse[Any]:
    return APIResponse(**state)


class BatchResult(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One row of a batch (``batch`` / ``iter_batch``): its result, or the error that ended
    its call. A row's failure, bad input included, is its own result; it never aborts the
    batch. Picklable.

    Every row is a `BatchSuccess` or a `BatchFailure` (both subclasses of this class), and
    batches are typed as returning one or the other, so ``if result.ok:`` narrows: inside,
    ``result.result`` (and ``result.completion``) is the result, never None; in the
    ``else``, ``result.error`` is the error.
    """

    index: int
    """The row's position in the input (0-based)."""
    result: T | None = None
    """What the call returned (a `Completion` for completions), when the row succeeded."""
    error: EmissaryError | None = None
    """What ended the row's call (an `SDKError`, an `APIConnectionError`, a
    `RequestValidationError` for a bad body, ...), or None."""
    request_id: str | None = None
    """The server's ``X-Request-Id`` of the last answer, when there was one."""
    retries_taken: int = 0
    """The row's call's attempts minus one."""

    @property
    def ok(self) -> bool:
        """True when the row succeeded."""
        return self.error is None

    @property
    def completion(self) -> T | None:
        """`result`, under the name completions batches have always used."""
        return self.result


class BatchSuccess(BatchResult[T], frozen=True, kw_only=True):
    """A row that succeeded: `result` holds what its call returned."""

    result: T
    error: None = None

    @property
    def ok(self) -> Literal[True]:
        """Always True."""
        return True

    @property
    def completion(self) -> T:
        """`result`, under the name completions batches have always used."""
        return self.result


class BatchFailure(BatchResult[T], frozen=True, kw_only=True):
    """A row whose call failed: `error` says why."""

    result: None = None
    error: EmissaryError

    @property
    def ok(self) -> Literal[False]:
        """Always False."""
        return False


BatchOutcome: TypeAlias = BatchSuccess[T] | BatchFailure[T]
"""What a batch yields for each row: ``if result.ok:`` tells the two apart (for type
checkers too)."""
