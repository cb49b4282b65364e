"""What came back: raw responses, the bodies of error responses, and batch results."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar

import msgspec
from multidict import CIMultiDict

if TYPE_CHECKING:
    import yarl

from ..errors import EmissaryError


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
        idempotency_key: the ``Idempotency-Key`` every attempt of the call carried (a
            POST's; None for other methods).
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
        idempotency_key: str | None,
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
        """The call's result (what the plain method returns), read from this response."""
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


class UploadProgress(msgspec.Struct, frozen=True):
    """How far an upload is, for ``datasets.upload(progress=callable)``: `sent` of `total`
    bytes of the file (not the multipart framing; `total` None when the size is not known)
    in `attempt` (1, 2, ...), told as each attempt starts (`sent` 0) and after each chunk."""

    sent: int
    total: int | None
    attempt: int
    filename: str


class FineTuneRun(msgspec.Struct, kw_only=True):
    """What ``fine_tune`` made, step by step (None: not reached yet, or not asked for)."""

    project: Any = None
    """The project (`ProjectSummary` or `ProjectDetail`)."""
    train_dataset: Any = None
    """The training data, uploaded (`DatasetDetail`)."""
    test_dataset: Any = None
    """The test data, if any (`DatasetDetail`)."""
    training_job: Any = None
    """The finished training job (`TrainingJobDetail`)."""
    checkpoint: Any = None
    """The checkpoint deployed (`TrainingJobCheckpoint`)."""
    deployment: Any = None
    """The deployment, deployed (`DeploymentDetail`), unless ``deploy=False``."""


class FineTuneEvent(msgspec.Struct, frozen=True):
    """A step of ``fine_tune`` starting or done, for its ``on_event`` callable: `step`
    (``"project"``, ``"upload"``, ``"training"``, ``"checkpoint"``, ``"deployment"``),
    `state` (``"started"``, ``"resumed"``, ``"progress"`` or ``"done"``) and the
    resource as it is now, if any."""

    step: str
    state: str
    resource: Any = None
