"""``emissary batch``: every line of a JSONL file through one of a deployment's inference
endpoints, into a JSONL file, resumable. Only the standard library at the top; the run
imports what it needs.

Exit status: 0 every row succeeded; 1 some rows failed; 2 usage or configuration error,
found before anything is sent; 4 stopped because INPUT could not be read or OUTPUT written
(a full or read-only file system, a closed pipe): the rows written are kept, and
``--resume`` finishes the run; 130 interrupted (SIGINT); 143 terminated (SIGTERM).

``--endpoint`` (`ENDPOINTS`) says where each row goes: ``completions`` (the default),
``chat`` (a body holds ``messages``), ``embeddings`` (``source_sentence`` and
``target_sentence``) or ``classification`` (``source_sentence``); each body is checked as
that endpoint's request body. An OUTPUT row holds the result under the endpoint's key
(`ENDPOINTS`: ``completion`` for completions and chat, ``embedding``, ``classification``)
as ``{"id": ..., "response": ...}``, the response as the API gave it.

``emissary batch`` INPUT lines: a request body object, or ``{"custom_id": "...", "body":
{...}}``. A line holding a ``custom_id`` or a ``body`` key is the latter and holds nothing
else (without its ``body``, it is its row's error, custom_id kept). Blank lines (nothing or
whitespace only) are not rows: skipped, not counted; a row's ``index`` is its line's number
(0-based) in INPUT. A line that cannot be read or sent (not JSON, nested too deeply, a
custom_id that is not valid Unicode, ...) is its own row's error: it never ends the batch.

It never loses or duplicates a row. Each OUTPUT line is written (in one write) as its row
completes (in completion order; ``index`` says which input line it answers), and fsynced
at most `FSYNC_INTERVAL_S` later (a timer: behind a slow row too) and at the end
(``EMISSARY_LOG=debug`` logs each fsync). After a crash or ``kill -9`` nothing written is
lost; after a power cut, at most the last second of rows, which ``--resume`` runs again. A
line is UTF-8 JSON; a row holding text UTF-8 cannot encode (a lone surrogate escape in its
custom_id) is written ASCII-only, its ``\\u`` escapes kept, so it reads back exactly as
given. ``-o -`` writes the rows to stdout, with no state file and no ``--resume``.

``--resume`` keeps the successful rows of OUTPUT (failed rows and a torn last line are
dropped), runs every other input line again, and gives each row the same
``Idempotency-Key`` as before: keys derive from the run's id and the row's line number.
The state file ``OUTPUT.emissary``, written beside OUTPUT as a run starts, holds that run's
``run_id``, ``project_id``, ``deployment_id``, ``endpoint`` and ``input_sha256`` (the SHA-256
of INPUT's bytes; null for stdin or a pipe, which can be read only once). ``--resume``
checks it all before it touches OUTPUT, and refuses (exit 2) another deployment, another
endpoint (a state file without one is a completions run's), another input (checked
when both runs read a regular file), or a state file it cannot use. Deleting the state
file is the way out of a refusal: the next ``--resume`` then starts a fresh key series
(rows sent again get new Idempotency-Keys, so a row that was in flight may be generated
twice) and checks no input.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    import uuid

    from ..models import BatchResult

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    StoppedError,
    UsageError,
    client,
    run,
)

FSYNC_INTERVAL_S = 1.0
STATE_SUFFIX = ".emissary"
_ENVELOPE = frozenset({"custom_id", "body"})
ENDPOINTS = {
    "completions": ("COMPLETIONS", "completion"),
    "chat": ("CHAT", "completion"),
    "embeddings": ("EMBEDDINGS", "embedding"),
    "classification": ("CLASSIFICATION", "classification"),
}
"""Each ``--endpoint``: its operation (a row of `emissary._operations`, by name) and the
key of an OUTPUT row that holds its result."""


# --- batch: input ------------------------------------------------------------------------


def _blank(text: bytes) -> bool:
    """A blank INPUT line (nothing, or whitespace only): not a row."""
    return not text.strip()


class _Line:
    """One input line, ready for the batch: its number, custom id and body (or why not).
    Whatever the line holds, reading it never raises: a line that cannot be used is its
    row's error (`problem`)."""

    __slots__ = ("body", "custom_id", "number", "problem")

    def __init__(self, number: int, text: bytes) -> None:
        self.number = number
        self.custom_id: str | None = None
        self.body: Any = None
        self.problem: str | None = None
        try:
            self.problem = self._read(text)
        except Exception as exc:  # nested too deeply (RecursionError), or unforeseen
            self.problem = f"line {number + 1} cannot be read ({type(exc).__name__}: {exc})"

    def _read(self, text: bytes) -> str | None:
        """Fill in the custom id and body; what is wrong with the line, if anything."""
        import json

        from .._validation import shown, unencodable

        where = f"line {self.number + 1}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"{where} is not JSON ({exc})"
        if isinstance(value, dict) and not _ENVELOPE.isdisjoint(value):
            custom_id = value.get("custom_id")
            if custom_id is not None and not isinstance(custom_id, str):
                return f"{where}: custom_id must be a string, got {shown(custom_id)}"
            self.custom_id = custom_id
            if custom_id is not None and (bad := unencodable(custom_id)) is not None:
                return f"{where}: custom_id has {bad}, which is not valid Unicode"
            others = ", ".join(shown(key) for key in value if key not in _ENVELOPE)
            if "body" not in value:
                found = f" (it holds {others})" if others else ""
                return f'{where} has no "body": with a custom_id, the request goes there{found}'
            if others:
                return (
                    f'{where} holds {others} beside "custom_id" and "body": nothing else is allowed'
                )
            value = value["body"]
        if not isinstance(value, dict):
            return f"{where} is not a JSON object (a request body)"
        self.body = value
        return None


class _Input:
    """INPUT's rows (its lines that are not blank), as `_Line`s. A regular file is read
    once first, to count its rows (the progress bar's total) and to take its SHA-256 (the
    run's input, kept in the state file); stdin or a pipe can be read only once, so it has
    neither."""

    def __init__(self, path: str) -> None:
        import hashlib

        self.path = path
        self.name = "stdin" if path == "-" else path
        self.skip: set[int] = set()
        """The line numbers OUTPUT already answers (``--resume``): not run again."""
        self.pending: dict[int, _Line] = {}
        """Each line handed to the batch, by its position there, until its row is written."""
        self.rows: int | None = None
        self.sha256: str | None = None
        digest, rows = hashlib.sha256(), 0
        try:
            if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
                return
            with open(path, "rb") as source:
                for text in source:
                    digest.update(text)
                    rows += not _blank(text)
        except OSError as exc:
            raise UsageError(_cannot("read", path, exc)) from None
        self.rows, self.sha256 = rows, digest.hexdigest()

    @property
    def total(self) -> int | None:
        """How many rows are left to run (unknown for stdin)."""
        return None if self.rows is None else max(0, self.rows - len(self.skip))

    def __iter__(self) -> Iterator[_Line]:
        """The rows to run; INPUT failing to be read raises `StoppedError`."""
        stream: IO[bytes] | None = None
        position = 0
        try:
            stream = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115
            for number, text in enumerate(stream):
                if number in self.skip or _blank(text):
                    continue
                line = self.pending[position] = _Line(number, text)
                position += 1
                yield line
        except OSError as exc:
            raise StoppedError(_cannot("read", self.name, exc)) from None
        finally:
            if stream is not None and stream is not sys.stdin.buffer:
                stream.close()


def _cannot(what: str, name: str, exc: OSError) -> str:
    return f"cannot {what} {name}: {exc.strerror or exc}"


# --- batch: output and state -------------------------------------------------------------


class _Output:
    """Where the rows go: OUTPUT, or stdout for ``-``. Each row is one write, made as it
    completes. A regular file is fsynced at most `FSYNC_INTERVAL_S` after each write, by a
    timer (so a row is synced even while no other comes), and when closed. Writing raises
    `OSError`; a failed fsync of the timer's is raised by the next write, or by `close`."""

    def __init__(self, path: str) -> None:
        import logging

        self.name = "stdout" if path == "-" else path
        if path == "-":
            sys.stdout.flush()
            self.fd = sys.stdout.fileno()
        else:
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            except OSError as exc:
                raise UsageError(_cannot("write", path, exc)) from None
        self.syncs = stat.S_ISREG(os.fstat(self.fd).st_mode)  # pipes and devices cannot
        self.timer: asyncio.TimerHandle | None = None
        self.failure: OSError | None = None
        self.written = 0
        self.log = logging.getLogger("emissary.cli")

    def write(self, line: bytes) -> None:
        """Append `line` and a newline (on the running loop, which runs the fsync timer)."""
        import asyncio

        if self.failure is not None:
            raise self.failure
        data = memoryview(line + b"\n")
        while data:
            data = data[os.write(self.fd, data) :]
        self.written += 1
        if self.syncs and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(FSYNC_INTERVAL_S, self.sync)

    def sync(self) -> None:
        """fsync now: when the timer fires, and at the end."""
        self.timer = None
        try:
            os.fsync(self.fd)
        except OSError as exc:
            self.failure = self.failure or exc
            return
        self.log.debug("%s fsynced: rows written: %d", self.name, self.written)

    def close(self) -> None:
        """fsync and close (stdout stays open); raises a failure not raised yet."""
        if self.timer is not None:
            self.timer.cancel()
        if self.syncs:
            self.sync()
        if self.name != "stdout":
            os.close(self.fd)
        if self.failure is not None:
            raise self.failure


def _not_empty(path: str) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0


def _finished_rows(path: str, key: str) -> tuple[set[int], bytes | None]:
    """The input lines OUTPUT already answers with a result (under `key`), and what OUTPUT
    is to hold
    so that each row appears once: its lines without the others (failed rows, a torn last
    line), or None when there is nothing to drop. Only reads."""
    import json

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UsageError(f"cannot resume into {path}: not a regular file")
        with open(path, "rb") as existing:
            data = existing.read()
    except FileNotFoundError:
        return set(), None
    except OSError as exc:
        raise UsageError(_cannot("read", path, exc)) from None
    *complete, torn = data.split(b"\n")  # `torn`: after the last newline (b"" if none)
    done: set[int] = set()
    kept: list[bytes] = []
    for line in complete:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue  # not a row of ours
        index = row.get("index") if isinstance(row, dict) else None
        if (
            isinstance(index, int)
            and not isinstance(index, bool)
            and row.get("error") is None
            and row.get(key) is not None
            and index not in done
        ):
            done.add(index)
            kept.append(line)
    if not torn and len(kept) == len(complete):
        return done, None
    return done, b"".join(line + b"\n" for line in kept)


def _replace(path: str, data: bytes) -> None:
    """Write `path` anew, atomically: a temporary file, fsynced, renamed over it. Only
    while a run is prepared: a failure is a `UsageError`, and leaves `path` as it was."""
    import contextlib

    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as new:
            new.write(data)
            new.flush()
            os.fsync(new.fileno())
        os.replace(temporary, path)
        _sync_directory(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # gone once renamed
            os.unlink(temporary)
        raise UsageError(_cannot("write", path, exc)) from None


def _sync_directory(path: str) -> None:
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _load_state(path: str) -> dict[str, Any] | None:
    """The state of the run in OUTPUT (see the module docstring), None if there is none;
    a `UsageError` if it cannot be used."""
    import json
    import uuid

    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(_cannot("read", path, exc)) from None
    try:
        state = json.loads(data)
        usable = (
            isinstance(state, dict)
            and all(
                isinstance(state.get(k), str) for k in ("run_id", "project_id", "deployment_id")
            )
            and isinstance(state.get("input_sha256", 0), str | None)
            and state.get("endpoint", "completions") in ENDPOINTS
        )
        if usable:
            uuid.UUID(state["run_id"])
    except (ValueError, RecursionError):
        usable = False
    if not usable:
        raise UsageError(
            f"{path} is not a state file of emissary batch: delete it to resume with a fresh "
            "series of Idempotency-Keys (rows sent again then get new keys)"
        )
    result: dict[str, Any] = state
    return result


def _start_run(
    output: str, resume: bool, rows: _Input, target: tuple[str, str], endpoint: str
) -> tuple[uuid.UUID, _Output]:
    """The run's id (the root of its rows' Idempotency-Keys) and OUTPUT open for its rows.
    With `resume`, the run in OUTPUT: its state and rows are checked before OUTPUT is
    touched; a refusal is a `UsageError` that leaves OUTPUT as it was."""
    import json
    import uuid

    state_path = output + STATE_SUFFIX
    state = _load_state(state_path) if resume else None
    if state is not None:
        if [state["project_id"], state["deployment_id"]] != list(target):
            raise UsageError(
                f"{output} holds a run for {state['project_id']}/{state['deployment_id']}, "
                f"not {target[0]}/{target[1]}"
            )
        if state.get("endpoint", "completions") != endpoint:
            raise UsageError(
                f"{output} holds a run of the {state.get('endpoint', 'completions')} "
                f"endpoint, not {endpoint}: resume with that --endpoint, or choose another "
                "OUTPUT"
            )
        if (
            None not in (state["input_sha256"], rows.sha256)
            and state["input_sha256"] != rows.sha256
        ):
            raise UsageError(
                f"{output} holds the run of another input than {rows.name} (their SHA-256 "
                "differ): resume with that input, or choose another OUTPUT"
            )
    key = ENDPOINTS[endpoint][1]
    done, rewritten = _finished_rows(output, key) if resume else (set(), None)
    rows.skip = done
    if rewritten is not None:
        _replace(output, rewritten)
    sink = _Output(output)
    if state is None:
        state = {
            "run_id": str(uuid.uuid4()),
            "project_id": target[0],
            "deployment_id": target[1],
            "endpoint": endpoint,
            "input_sha256": rows.sha256,
        }
        try:
            _replace(state_path, json.dumps(state).encode() + b"\n")
        except UsageError:
            sink.close()
            raise
    return uuid.UUID(state["run_id"]), sink


# --- batch: the run ----------------------------------------------------------------------


def main(options: argparse.Namespace) -> int:
    """Check everything (the arguments, INPUT, the run to resume) before touching OUTPUT
    or sending anything, then run."""
    import uuid

    from .. import _operations as ops
    from .._batch import check_batch_options
    from .._protocol import fill_path
    from ..errors import ConfigurationError, RequestValidationError

    concurrency: Any = options.concurrency
    if concurrency != "auto":
        try:
            concurrency = int(concurrency)
        except ValueError:
            raise UsageError(
                f"--concurrency must be auto or a number, got {concurrency!r}"
            ) from None
    try:
        check_batch_options(concurrency, options.max_concurrency, options.rpm, False)
        fill_path(
            getattr(ops, ENDPOINTS[options.endpoint][0]), (options.project, options.deployment)
        )
    except (ConfigurationError, RequestValidationError) as exc:
        raise UsageError(str(exc)) from None
    output = options.output
    if output == "-" and options.resume:
        raise UsageError("--resume needs an OUTPUT file: -o - (stdout) keeps no state")
    if output != "-" and not options.resume and _not_empty(output):
        raise UsageError(
            f"{output} exists and is not empty: pass --resume to continue that run, "
            "or choose another OUTPUT"
        )
    sdk = client(options)
    rows = _Input(options.input)
    if output == "-":
        run_id, sink = uuid.uuid4(), _Output(output)
    else:
        target = (options.project, options.deployment)
        run_id, sink = _start_run(output, options.resume, rows, target, options.endpoint)
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    return run(_execute(options, sdk, rows, run_id, sink, concurrency, progress))


async def _execute(
    options: argparse.Namespace,
    sdk: Any,
    rows: _Input,
    run_id: uuid.UUID,
    sink: _Output,
    concurrency: Any,
    progress: bool,
) -> int:
    import asyncio
    import time
    import uuid

    from .. import _operations as ops
    from .._batch import Batch
    from .._protocol import build_request
    from ..errors import BatchInputError, RequestValidationError

    operation, key = getattr(ops, ENDPOINTS[options.endpoint][0]), ENDPOINTS[options.endpoint][1]

    def describe(line: _Line) -> Any:
        if line.problem is not None:
            raise RequestValidationError(line.problem, field="line")
        idempotency_key = str(uuid.uuid5(run_id, str(line.number)))
        ids = (options.project, options.deployment)
        return build_request(operation, ids, line.body, {"idempotency_key": idempotency_key})

    started = time.monotonic()
    succeeded = failed = 0
    interrupted = False
    stopped: str | None = None
    batch: Batch[Any] = Batch(
        sdk,
        describe,
        rows,
        total=rows.total,
        concurrency=concurrency,
        max_concurrency=options.max_concurrency,
        requests_per_minute=options.rpm,
        retries=None,
        timeout_ms=None,
        progress=progress,
        ordered=False,
    )
    try:
        async with sdk, batch:
            try:
                while chunk := await batch.anext_ready():
                    for result in chunk:
                        data, ok = _output_line(rows.pending.pop(result.index), result, key)
                        try:
                            sink.write(data)
                        except OSError as exc:
                            raise StoppedError(_cannot("write", sink.name, exc)) from None
                        succeeded += ok
                        failed += not ok
            except BatchInputError as exc:  # INPUT unreadable; the rows that ran are written
                if not isinstance(exc.__cause__, StoppedError):
                    raise
                raise exc.__cause__ from None
    except asyncio.CancelledError:
        interrupted = True
        raise
    except StoppedError as exc:
        stopped = str(exc)
    finally:
        try:
            sink.close()
        except OSError as exc:
            stopped = stopped or _cannot("write", sink.name, exc)
        elapsed, kept = time.monotonic() - started, len(rows.skip)
        _summary(succeeded, failed, kept, elapsed, interrupted, options.output)
        if stopped is not None:
            _stopped(stopped, options.output)
    if stopped is not None:
        return EXIT_STOPPED
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _output_line(line: _Line, result: BatchResult[Any], key: str) -> tuple[bytes, bool]:
    """The row's OUTPUT line (its result under `key`), and whether it holds a result. A
    result that cannot be written (never expected) becomes the row's error: the row is
    answered all the same, and ``--resume`` runs it again."""
    try:
        row = _row(line, key, result.result, result.request_id, result.error)
        return _encode(row), result.ok
    except Exception as exc:
        return _encode(_row(line, key, None, result.request_id, exc)), False


def _row(
    line: _Line, key: str, answer: Any, request_id: str | None, error: BaseException | None
) -> dict[str, Any]:
    import msgspec

    return {
        "index": line.number,
        "custom_id": line.custom_id,
        key: None
        if answer is None
        else {"id": answer.id, "response": msgspec.to_builtins(answer.response)},
        "request_id": request_id,
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": str(error),
            "status_code": getattr(error, "status_code", None),
        },
    }


def _encode(document: dict[str, Any]) -> bytes:
    """A row as a line of UTF-8 JSON. Text UTF-8 cannot encode (a lone surrogate, which a
    custom_id may hold) makes the line ASCII-only instead, JSON's ``\\u`` escapes and all:
    it reads back exactly as it was given."""
    import json

    try:
        return json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(document).encode()


def _summary(
    succeeded: int, failed: int, kept: int, elapsed: float, interrupted: bool, output: str
) -> None:
    rate = (succeeded + failed) / elapsed if elapsed > 0 else 0.0
    text = (
        f"emissary batch: {succeeded + failed} rows in {elapsed:.1f} s ({rate:.1f} rows/s): "
        f"{succeeded} succeeded, {failed} failed"
    )
    if kept:
        text += f"; {kept} kept from before"
    if interrupted:
        text += "; interrupted" + _resume_hint(output)
    print(text, file=sys.stderr, flush=True)


def _stopped(reason: str, output: str) -> None:
    print(f"emissary: error: {reason}; stopped{_resume_hint(output)}", file=sys.stderr)


def _resume_hint(output: str) -> str:
    return "" if output == "-" else f": run again with --resume to finish {output}"
