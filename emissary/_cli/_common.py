"""What every command shares: exit statuses, the event loop with its signal handling, the
client, and how a failure is told (one line on stderr, its exit status).

Only the standard library at the top; the SDK is imported by the functions that use it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
from collections.abc import Coroutine
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAIT_TIMEOUT, EXIT_STOPPED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143


class UsageError(Exception):
    """Bad arguments or settings: reported in one line, exit status 2."""


class StoppedError(Exception):
    """``emissary batch`` could not read INPUT or write OUTPUT mid-run: reported in one
    line, exit status 4."""


class NotDone(Exception):
    """Nothing was done, as it should not be (a delete declined at its prompt, a deployment
    of a job with no checkpoint): reported in one line, exit status 1."""


class Running:
    """What a command is waiting for, so that an interruption or a ``--max-wait`` that ran
    out can say what goes on on the server and the command that cancels it."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.command: str | None = None
        """The resource's command (``training-jobs``), once something is running."""
        self.project: str | None = None
        self.id: str | None = None
        self.noun = ""
        self.resume: str | None = None
        """How to pick the work up again, if it can be (``fine-tune --state``)."""

    def watch(self, command: str, noun: str, project: str | None, id: str | None) -> None:
        """Note what runs now (`id` None: being created, its id not known yet)."""
        self.command, self.noun, self.project, self.id = command, noun, project, id

    def done(self) -> None:
        """Nothing runs on the server any more."""
        self.command = None

    def line(self, verb: str) -> str:
        """``emissary COMMAND VERB -p PROJECT ID``, exactly, quoted for a shell."""
        assert self.command is not None
        words = ["emissary", self.command, verb]
        if self.project is not None:
            words += ["-p", self.project]
        words.append(self.id or "")
        if self.options.server_url:
            words += ["--server-url", self.options.server_url]
        return shlex.join(words)

    def hint(self) -> str:
        """What goes on on the server, and how to stop it or go on (or nothing)."""
        parts: list[str] = []
        if self.command is not None and self.id is None:
            parts.append(
                f"a {self.noun} may have been created: see "
                + shlex.join(["emissary", self.command, "list", "-p", self.project or ""])
            )
        elif self.command == "datasets":
            parts.append(f"the dataset {self.id} is processed on the server all the same")
        elif self.command is not None:
            parts.append(
                f"the {self.noun} {self.id} keeps running on the server; cancel it with: "
                + self.line("cancel")
            )
        if self.resume:
            parts.append(self.resume)
        return "; ".join(parts)


def run(work: Coroutine[Any, Any, int], running: Running | None = None) -> int:
    """Run the command's coroutine; SIGINT and SIGTERM cancel it (exit 130 and 143), and
    `running` says what goes on on the server."""
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
            interrupted = received[0] == signal.SIGINT
            if running is not None:
                hint = running.hint()
                word = "interrupted" if interrupted else "terminated"
                print(f"emissary: {word}{': ' if hint else ''}{hint}", file=sys.stderr)
            return EXIT_INTERRUPTED if interrupted else EXIT_TERMINATED

    return asyncio.run(guarded())


def client(options: argparse.Namespace) -> Any:
    """An `AsyncEmissaryClient` from the options and the environment (the key from
    ``EMISSARY_CLIENT_API_KEY`` only); bad settings are a `UsageError`."""
    from .. import AsyncEmissaryClient
    from .._config import API_KEY_ENV, SERVER_URL_ENV
    from ..errors import ConfigurationError

    if not os.environ.get(API_KEY_ENV):
        raise UsageError(f"no API key: set {API_KEY_ENV} (never an argument: ps shows those)")
    if not options.server_url and not os.environ.get(SERVER_URL_ENV):
        raise UsageError(f"no server URL: set {SERVER_URL_ENV} or pass --server-url")
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


def report(error: BaseException, running: Running | None = None) -> int:
    """Tell `error` in one line on stderr; its exit status. An `EmissaryError`'s message
    never holds the API key."""
    from ..errors import (
        ConfigurationError,
        EmissaryError,
        RequestValidationError,
        SDKError,
        WaitTimeoutError,
    )

    if isinstance(error, UsageError | ConfigurationError | RequestValidationError):
        print(f"emissary: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(error, NotDone):
        print(f"emissary: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not isinstance(error, EmissaryError):
        raise error
    request_id = getattr(error, "request_id", None)
    message = str(error)  # an SDKError's first line; the body is on the next ones
    message = (
        message.split("\n", 1)[0] if isinstance(error, SDKError) else " ".join(message.split("\n"))
    )
    text = f"emissary: {type(error).__name__}: {message}"
    text += f" (request id {request_id})" if request_id else ""
    if isinstance(error, WaitTimeoutError):
        if running is not None and running.command is not None and running.id is not None:
            text += f"; wait again: {running.line('wait')}"
            if running.command != "datasets":
                text += f"; or cancel it: {running.line('cancel')}"
        print(text, file=sys.stderr)
        return EXIT_WAIT_TIMEOUT
    print(text, file=sys.stderr)
    return EXIT_FAILED


def read_text(given: str | None, what: str) -> str:
    """The text argument, or stdin when it is ``-`` or absent (and not a terminal). An
    empty one is refused: it can only be a mistake (an empty file, a variable unset)."""
    text = given
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise UsageError(f"give a {what}, or pipe one in on stdin")
        text = sys.stdin.read()
    if not text:
        raise UsageError(f"the {what.lower()} is empty: give a {what}, or pipe one in on stdin")
    return text


def check_file(path: str) -> None:
    """A file to upload exists and is not a directory (``-`` is stdin): a `UsageError`
    before anything is sent otherwise."""
    if path == "-":
        return
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"cannot upload {path}: it is a directory")


def bars(options: argparse.Namespace) -> bool:
    """Whether to draw progress bars: on a terminal, unless ``--quiet``."""
    return sys.stderr.isatty() and not getattr(options, "quiet", False)
