"""The ``emissary`` command line: ``complete``, ``batch`` and ``emulator``.

``emissary --help`` answers without importing aiohttp or the progress bar: this module
imports only the standard library at the top, and each command imports what it needs.
The API key comes from ``EMISSARY_CLIENT_API_KEY`` only (arguments show in ``ps``).

Exit status: 0 success, 1 a call (or some rows) failed, 2 usage or configuration error,
130 interrupted (SIGINT), 143 terminated (SIGTERM).

``emissary batch`` never loses or duplicates a row. Each output line is written and
flushed as its row completes (in completion order; ``index`` says which input line it
answers), and the file is fsynced at most a second apart and at the end. After a crash
or ``kill -9`` nothing flushed is lost; after a power cut, at most the last second of rows,
which ``--resume`` runs again. ``--resume`` keeps the successful rows of OUTPUT (a torn
last line is dropped), runs every other input line again, and gives each row the same
``Idempotency-Key`` as before: keys derive from the run's id, kept beside OUTPUT in
``OUTPUT.emissary``, and the row's line number.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import BatchResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
FSYNC_INTERVAL_S = 1.0
STATE_SUFFIX = ".emissary"


class UsageError(Exception):
    """Bad arguments or settings: reported in one line, exit status 2."""


# --- arguments ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    top = argparse.ArgumentParser(
        prog="emissary",
        description="Completions from Emissary deployments, one or many at a time. The API "
        "key is read from EMISSARY_CLIENT_API_KEY, the server from EMISSARY_SERVER_URL "
        "(or --server-url).",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    complete = commands.add_parser(
        "complete", help="one completion", description="Print one completion."
    )
    _target(complete)
    complete.add_argument(
        "prompt",
        nargs="?",
        default=None,
        help="the prompt; read from stdin when '-' or absent (and stdin is not a terminal)",
    )
    complete.add_argument("--max-new-tokens", type=int, metavar="N")
    complete.add_argument("--temperature", type=float, metavar="T")
    complete.add_argument("--top-p", type=float, metavar="P")
    complete.add_argument("--top-k", type=int, metavar="K")
    complete.add_argument("--no-repeat-ngram-size", type=int, metavar="N")
    complete.add_argument("--do-sample", action="store_true", default=None)
    complete.add_argument(
        "--json", action="store_true", help="print one JSON object: id, response, request_id"
    )
    _network(complete)

    batch = commands.add_parser(
        "batch",
        help="many completions, from JSONL to JSONL",
        description="Run every line of INPUT (a JSONL file, or - for stdin) and write one "
        "JSON line per input line to OUTPUT as each completes. A line is a request body "
        'object, or {"custom_id": "...", "body": {...}}. After an interruption, run the '
        "same command with --resume: finished rows are kept, the others run again with "
        "the same Idempotency-Key.",
    )
    batch.add_argument("input", metavar="INPUT", help="JSONL file of request bodies, or -")
    batch.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="JSONL results")
    _target(batch)
    batch.add_argument(
        "--concurrency",
        default="auto",
        metavar="auto|N",
        help="requests in flight: adaptive (default) or a fixed number",
    )
    batch.add_argument(
        "--max-concurrency", type=int, default=64, metavar="N", help="the most under auto (64)"
    )
    batch.add_argument("--rpm", type=float, metavar="N", help="at most N requests a minute")
    batch.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into OUTPUT"
    )
    shown = batch.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", default=None, help="a progress bar on stderr"
    )
    shown.add_argument("--no-progress", dest="progress", action="store_false")
    _network(batch)

    commands.add_parser(
        "emulator",
        help="serve the local emulator (as python -m emissary.testing)",
        add_help=False,
    )
    return top


def _target(command: argparse.ArgumentParser) -> None:
    command.add_argument("-p", "--project", required=True, help="the project id")
    command.add_argument("-d", "--deployment", required=True, help="the deployment id")
    command.add_argument("--server-url", help="the API's base URL (default: EMISSARY_SERVER_URL)")


def _network(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("network")
    group.add_argument(
        "--proxy",
        metavar="URL",
        help="proxy for every request (credentials belong in HTTPS_PROXY, not here: "
        "arguments show in ps)",
    )
    group.add_argument("--ca-bundle", metavar="PATH", help="PEM file or directory of CAs")
    group.add_argument(
        "--native-tls", action="store_true", help="trust the operating system's store"
    )
    group.add_argument(
        "--no-trust-env",
        dest="trust_env",
        action="store_false",
        help="ignore HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...",
    )


# --- commands ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The ``emissary`` console script (and ``python -m emissary``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["emulator"]:
        from .testing.__main__ import main as emulator

        return emulator(args[1:])
    options = parser().parse_args(args)
    try:
        if options.command == "complete":
            return _run(_complete(options, _prompt(options)))
        return _batch(options)
    except UsageError as exc:
        print(f"emissary: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(work: Any) -> int:
    """Run the command's coroutine; SIGINT and SIGTERM cancel it (exit 130 and 143)."""
    import asyncio
    import signal

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[int] = []

        def stop(signum: int) -> None:
            received.append(signum)
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        try:
            result: int = await work
            return result
        except asyncio.CancelledError:
            if not received:
                raise
            return EXIT_INTERRUPTED if received[0] == signal.SIGINT else EXIT_TERMINATED

    return asyncio.run(guarded())


def _client(options: argparse.Namespace) -> Any:
    from . import AsyncEmissaryClient
    from .errors import ConfigurationError

    try:
        return AsyncEmissaryClient(
            server_url=options.server_url,
            proxy=options.proxy,
            ca_bundle=options.ca_bundle,
            native_tls=options.native_tls,
            trust_env=options.trust_env,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _prompt(options: argparse.Namespace) -> str:
    """The prompt: the argument, or stdin when it is ``-`` or absent (and not a terminal)."""
    prompt: str | None = options.prompt
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise UsageError("give a PROMPT, or pipe one in on stdin")
        return sys.stdin.read()
    return prompt


async def _complete(options: argparse.Namespace, prompt: str) -> int:
    import json

    from .errors import ConfigurationError, EmissaryError, RequestValidationError

    body: dict[str, Any] = {"prompt": prompt}
    for name in ("max_new_tokens", "temperature", "top_p", "top_k", "no_repeat_ngram_size"):
        if getattr(options, name) is not None:
            body[name] = getattr(options, name)
    if options.do_sample:
        body["do_sample"] = True
    async with _client(options) as client:
        try:
            raw = await client.deployments.completions.with_raw_response.create(
                project_id=options.project, deployment_id=options.deployment, request_body=body
            )
        except (ConfigurationError, RequestValidationError) as exc:
            raise UsageError(str(exc)) from None
        except EmissaryError as exc:
            request_id = getattr(exc, "request_id", None)
            suffix = f" (request id {request_id})" if request_id else ""
            print(f"emissary: {type(exc).__name__}: {exc}{suffix}", file=sys.stderr)
            return EXIT_FAILED
    completion = raw.parse()
    if options.json:
        document = {"id": completion.id, "response": completion.response}
        print(json.dumps({**document, "request_id": raw.request_id}, ensure_ascii=False))
    else:
        print(completion.response or "")
    return EXIT_OK


# --- batch -------------------------------------------------------------------------------


class _Line:
    """One input line, ready for the batch: its number, custom id and body (or why not)."""

    __slots__ = ("body", "custom_id", "number", "problem")

    def __init__(self, number: int, text: bytes) -> None:
        import json

        self.number = number
        self.custom_id: str | None = None
        self.body: Any = None
        self.problem: str | None = None
        try:
            value = json.loads(text)
        except ValueError as exc:
            self.problem = f"line {number + 1} is not JSON ({exc})"
            return
        if isinstance(value, dict) and "body" in value and set(value) <= {"body", "custom_id"}:
            custom_id = value.get("custom_id")
            if custom_id is not None and not isinstance(custom_id, str):
                self.problem = f"line {number + 1}: custom_id must be a string"
                return
            self.custom_id, value = custom_id, value["body"]
        if not isinstance(value, dict):
            self.problem = f"line {number + 1} is not a JSON object (a request body)"
            return
        self.body = value


class _Output:
    """OUTPUT: rows appended and flushed one by one, fsynced at most a second apart."""

    def __init__(self, path: str) -> None:
        import time

        self.file: IO[bytes] = open(path, "ab")  # noqa: SIM115 (closed by close())
        self.clock = time.monotonic
        self.synced = self.clock()

    def write(self, line: bytes) -> None:
        self.file.write(line + b"\n")
        self.file.flush()
        if self.clock() - self.synced >= FSYNC_INTERVAL_S:
            self.sync()

    def sync(self) -> None:
        os.fsync(self.file.fileno())
        self.synced = self.clock()

    def close(self) -> None:
        self.file.flush()
        self.sync()
        self.file.close()


def _finished_rows(path: str) -> set[int]:
    """The input lines OUTPUT already answers with a completion; OUTPUT is rewritten
    without its other lines (failed rows, a torn last line) so that each row appears once."""
    import json

    try:
        with open(path, "rb") as existing:
            data = existing.read()
    except FileNotFoundError:
        return set()
    *complete, torn = data.split(b"\n")  # `torn`: after the last newline (b"" if none)
    done: set[int] = set()
    kept: list[bytes] = []
    for line in complete:
        try:
            row = json.loads(line)
            index = row["index"]
        except (ValueError, KeyError, TypeError):
            continue  # not a row of ours
        if row.get("error") is None and row.get("completion") is not None and index not in done:
            done.add(index)
            kept.append(line)
    if torn or len(kept) != len(complete):
        _replace(path, b"".join(line + b"\n" for line in kept))
    return done


def _replace(path: str, data: bytes) -> None:
    """Write `path` anew, atomically: a temporary file, fsynced, renamed over it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as new:
        new.write(data)
        new.flush()
        os.fsync(new.fileno())
    os.replace(temporary, path)
    _sync_directory(path)


def _sync_directory(path: str) -> None:
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _run_id(output: str, resume: bool, target: tuple[str, str]) -> str:
    """The run's id (the root of its rows' Idempotency-Keys), kept in OUTPUT.emissary."""
    import json
    import uuid

    state_path = output + STATE_SUFFIX
    if resume:
        try:
            with open(state_path, "rb") as state:
                saved = json.loads(state.read())
            if [saved.get("project_id"), saved.get("deployment_id")] != list(target):
                raise UsageError(
                    f"{output} holds a run for {saved.get('project_id')}/"
                    f"{saved.get('deployment_id')}, not {target[0]}/{target[1]}"
                )
            return str(uuid.UUID(saved["run_id"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass  # no state (an older run): new keys for the rows left
    run_id = str(uuid.uuid4())
    document = {"run_id": run_id, "project_id": target[0], "deployment_id": target[1]}
    _replace(state_path, json.dumps(document).encode() + b"\n")
    return run_id


class _Input:
    """INPUT's lines not yet answered, as `_Line`s; `pending` maps each one handed to the
    batch (by its position there) to its line until its row is written."""

    def __init__(self, path: str, skip: set[int]) -> None:
        self.path = path
        self.skip = skip
        self.pending: dict[int, _Line] = {}
        self.total: int | None = None
        """How many rows are left to run, for the progress bar (a file's lines are counted
        first; stdin's cannot be)."""
        if path != "-":
            try:
                with open(path, "rb") as counting:
                    lines, last = 0, b"\n"
                    while chunk := counting.read(1 << 20):
                        lines, last = lines + chunk.count(b"\n"), chunk[-1:]
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror}") from None
            lines += last != b"\n"  # a last line without its newline
            self.total = lines - len(skip)

    def __iter__(self) -> Iterator[_Line]:
        stream = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115
        position = 0
        try:
            for number, text in enumerate(stream):
                if number in self.skip:
                    continue
                line = self.pending[position] = _Line(number, text)
                position += 1
                yield line
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def _batch(options: argparse.Namespace) -> int:
    """Check the arguments and prepare OUTPUT (all before any request), then run."""
    import uuid

    from ._batch import check_batch_options
    from ._protocol import completion_path
    from .errors import ConfigurationError, RequestValidationError

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
        completion_path(options.project, options.deployment)
    except (ConfigurationError, RequestValidationError) as exc:
        raise UsageError(str(exc)) from None
    output = options.output
    if not options.resume and os.path.exists(output) and os.path.getsize(output) > 0:
        raise UsageError(
            f"{output} exists and is not empty: pass --resume to continue that run, "
            "or choose another OUTPUT"
        )
    client = _client(options)
    done = _finished_rows(output) if options.resume else set()
    rows = _Input(options.input, done)
    run = uuid.UUID(_run_id(output, options.resume, (options.project, options.deployment)))
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    return _run(_execute(options, client, rows, run, concurrency, progress, len(done)))


async def _execute(
    options: argparse.Namespace,
    client: Any,
    rows: _Input,
    run: Any,
    concurrency: Any,
    progress: bool,
    kept: int,
) -> int:
    import asyncio
    import json
    import time
    import uuid

    from ._batch import Batch
    from ._protocol import completion_request
    from .errors import RequestValidationError

    def describe(line: _Line) -> Any:
        if line.problem is not None:
            raise RequestValidationError(line.problem, field="line")
        return completion_request(
            project_id=options.project,
            deployment_id=options.deployment,
            request_body=line.body,
            idempotency_key=str(uuid.uuid5(run, str(line.number))),
        )

    sink = _Output(options.output)
    started = time.monotonic()
    succeeded = failed = 0
    interrupted = False
    batch = Batch(
        client,
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
        async with client:
            while chunk := await batch.anext_ready():
                for result in chunk:
                    line = rows.pending.pop(result.index)
                    sink.write(_row(line, result, json.dumps))
                    succeeded += result.ok
                    failed += not result.ok
    except asyncio.CancelledError:
        interrupted = True
        await batch.aclose()
        raise
    finally:
        sink.close()
        elapsed = time.monotonic() - started
        _summary(succeeded, failed, kept, elapsed, interrupted, options.output)
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _row(line: _Line, result: BatchResult, dumps: Callable[..., str]) -> bytes:
    error = result.error
    document = {
        "index": line.number,
        "custom_id": line.custom_id,
        "completion": None
        if result.completion is None
        else {"id": result.completion.id, "response": result.completion.response},
        "request_id": result.request_id,
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": str(error),
            "status_code": getattr(error, "status_code", None),
        },
    }
    return dumps(document, ensure_ascii=False).encode()


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
        text += f"; interrupted: run again with --resume to finish {output}"
    print(text, file=sys.stderr, flush=True)
