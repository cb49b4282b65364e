"""The command line's arguments: the platform's resources and their verbs as data, the other
commands, and the types of their values (durations, ``--param``, ``--checkpoint``).

Only the standard library is imported here: ``emissary --help`` builds this parser and
nothing else. `RESOURCES` and `VERBS` also drive `emissary._cli._platform`, which runs any
``emissary RESOURCE VERB`` with one function.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

FORMATS = ("auto", "table", "json")


class Arg(NamedTuple):
    """One argument, as ``add_argument(*flags, **options)``; arguments sharing a `group`
    exclude each other (see `GROUPS`)."""

    flags: tuple[str, ...]
    options: dict[str, Any]
    group: str | None = None


def arg(*flags: str, group: str | None = None, **options: Any) -> Arg:
    """An `Arg`, written as ``add_argument`` would take it."""
    return Arg(flags, options, group)


GROUPS = {"train": True, "project": False}
"""Mutually exclusive groups: whether one of the group is required."""


class Resource(NamedTuple):
    """A kind of resource: ``emissary COMMAND VERB ...``, over ``client.NAMESPACE``."""

    command: str
    """The command's name: ``training-jobs``."""
    namespace: str
    """The client's namespace: ``training_jobs``."""
    noun: str
    """What one is called in messages: ``training job``."""
    id_keyword: str
    """The SDK's keyword for its id: ``training_job_id``."""
    metavar: str
    """Its id in the usage line: ``JOB``."""
    scoped: bool
    """Whether it lives in a project (``-p PROJECT``)."""
    verbs: tuple[str, ...]
    """Its verbs, keys of `VERBS`."""


class Verb(NamedTuple):
    """What a verb does to any resource: which method of the namespace it calls (None: the
    resource's own ``create``/``upload`` in `emissary._cli._platform`), whether it takes an
    id, its help (``{noun}`` is the resource's) and its own arguments (for a create: see
    `CREATE_ARGS`)."""

    method: str | None
    takes_id: bool
    help: str
    args: tuple[Arg, ...] = ()


# --- value types ---------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def duration(text: str) -> float | None:
    """A duration: ``45s``, ``90m``, ``6h``, ``1d``, ``1h30m``, or seconds (``3600``,
    ``2.5``); ``none`` waits without limit (None)."""
    text = text.strip().lower()
    if text == "none":
        return None
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration: write 45s, 90m, 6h, 1h30m, a number of "
                "seconds, or none"
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration >= 0")
    return seconds


def param(text: str) -> tuple[str, str | int | float]:
    """A training parameter, ``KEY=VALUE``: an integer (``3``) is sent as an integer, a
    decimal (``0.0002``, ``2e-4``) as a float, anything else as a string; a value in double
    quotes (``"3"``) is the string inside them. The API takes strings and numbers only, so
    ``true`` is the string ``"true"``."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    key = key.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return key, value[1:-1]
    if _INTEGER.fullmatch(value):
        return key, int(value)
    if _DECIMAL.fullmatch(value) and math.isfinite(number := float(value)):
        return key, number
    return key, value


def checkpoint(text: str) -> str | int:
    """``--checkpoint``: ``last`` or a checkpoint's number."""
    if text == "last":
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a checkpoint: last, or its number")


# --- the table -----------------------------------------------------------------------------

_MISSING_OK = arg("--missing-ok", action="store_true", help="succeed if it is gone already")
_YES = arg(
    "-y", "--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)"
)
_MAX_WAIT = arg(
    "--max-wait",
    type=duration,
    metavar="DURATION",
    default=argparse.SUPPRESS,
    help="give up after this long (45s, 90m, 6h, seconds, or none): exit 3, it goes on",
)
_WAIT = arg("--wait", action="store_true", help="wait until it is ready (see --max-wait)")
_NAME = arg("--name", help="its name")
_DESCRIPTION = arg("--description", help="its description")
_PARAM = arg(
    "--param",
    type=param,
    action="append",
    metavar="KEY=VALUE",
    help="a training parameter (repeatable): 3 is sent as a number, 0.0002 too, "
    'anything else (and "3", quoted) as a string',
)
_SERVER_TYPE = arg("--server-type", choices=("serverless", "on-demand"))

VERBS: dict[str, Verb] = {
    "list": Verb("list", False, "list the {noun}s"),
    "get": Verb("get", True, "show one {noun}"),
    "create": Verb(None, False, "create a {noun}"),
    "upload": Verb(None, False, "upload a file as a dataset"),
    "delete": Verb(
        "delete", True, "delete a {noun} (asks first on a terminal)", (_MISSING_OK, _YES)
    ),
    "cancel": Verb("cancel", True, "cancel a {noun}"),
    "checkpoints": Verb("list_checkpoints", True, "list the checkpoints a {noun} saved"),
    "wait": Verb(
        "wait", True, "wait until the {noun} ends: 0 done, 1 failed, 3 timed out", (_MAX_WAIT,)
    ),
}

RESOURCES: tuple[Resource, ...] = (
    Resource("models", "base_models", "base model", "base_model_name", "NAME", False,
             ("list", "get")),
    Resource("projects", "projects", "project", "project_id", "PROJECT", False,
             ("create", "list", "get", "delete")),
    Resource("datasets", "datasets", "dataset", "dataset_id", "DATASET", True,
             ("upload", "list", "get", "delete")),
    Resource("training-jobs", "training_jobs", "training job", "training_job_id", "JOB", True,
             ("create", "list", "get", "cancel", "delete", "checkpoints", "wait")),
    Resource("deployments", "deployments", "deployment", "deployment_id", "DEPLOYMENT", True,
             ("create", "list", "get", "cancel", "delete", "wait")),
)  # fmt: skip

CREATE_ARGS: dict[str, tuple[Arg, ...]] = {
    "projects": (_NAME,),
    "datasets": (
        arg("path", metavar="PATH", help="the file to upload, or - for stdin"),
        arg("--name", help="the dataset's name"),
        arg("--filename", help="the file name sent (default: PATH's; data for stdin)"),
        arg("--content-type", help="the file's media type (default application/octet-stream)"),
        _WAIT,
        _MAX_WAIT,
    ),
    "training-jobs": (
        arg("--base-model", required=True, metavar="MODEL", help="see: emissary models list"),
        arg("--train", metavar="PATH", group="train", help="upload this file (or -) to train on"),
        arg("--train-dataset", metavar="DATASET", group="train", help="a dataset uploaded"),
        arg("--test-dataset", metavar="DATASET", help="a dataset to test on"),
        arg("--split-ratio", type=float, metavar="R", help="train/test split, 0 < R < 1"),
        _PARAM,
        arg("--hf-model-link", metavar="URL", help="a Hugging Face model (base model HF_MODEL)"),
        _NAME,
        _DESCRIPTION,
        _WAIT,
        _MAX_WAIT,
    ),
    "deployments": (
        arg("--training-job", required=True, metavar="JOB", help="the training job to deploy"),
        arg(
            "--checkpoint",
            type=checkpoint,
            default="last",
            metavar="N|last",
            help="which checkpoint (default: the last one saved)",
        ),
        _SERVER_TYPE,
        _NAME,
        _DESCRIPTION,
        _WAIT,
        _MAX_WAIT,
    ),
}


# --- the parser ----------------------------------------------------------------------------

DESCRIPTION = (
    "The Emissary platform from a shell: base models, projects, datasets, training jobs, "
    "deployments, fine-tuning in one command, inference, and resumable batches. The API key "
    "is read from EMISSARY_CLIENT_API_KEY, the server from EMISSARY_SERVER_URL (or "
    "--server-url)."
)
EPILOG = (
    "Output: a table on a terminal, JSON when piped (--format), only ids with --quiet. "
    "Exit status: 0 done, 1 an API error or a wait that ended in failure, 2 usage or "
    "configuration (nothing sent), 3 --max-wait ran out, 4 batch INPUT/OUTPUT failed, "
    "130 interrupted, 143 terminated. See docs/cli.md."
)
BATCH_EPILOG = (
    "Each OUTPUT line: index, custom_id, the result under a key named by the endpoint "
    "(completion for completions and chat, embedding, classification; each {id, "
    "response}), request_id, error. Blank lines of INPUT are skipped; a row's index is its "
    "line number (from 0). OUTPUT.emissary, beside OUTPUT, is the run's state: its id (the "
    "root of the rows' Idempotency-Keys), the project, deployment and endpoint, and the "
    "SHA-256 of INPUT (none for stdin or a pipe). --resume refuses another deployment, "
    "endpoint or input, or an unusable state file, before touching OUTPUT. Deleting the "
    "state file starts a fresh key series: rows sent again get new Idempotency-Keys. Exit "
    "status: 0 every row succeeded, 1 some failed, 2 usage (nothing sent), 4 stopped: INPUT "
    "could not be read or OUTPUT written (the rows written are kept: fix it, then --resume), "
    "130 interrupted, 143 terminated."
)


def build(argv: list[str]) -> argparse.ArgumentParser:
    """The command line, for `argv`: every command is listed, and only the one `argv`
    names gets its arguments (the others are never parsed: their arguments would only cost
    time)."""
    from .._version import __version__

    top = argparse.ArgumentParser(prog="emissary", description=DESCRIPTION, epilog=EPILOG)
    top.add_argument("--version", action="version", version=f"emissary-python {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv else None
    for resource in RESOURCES:
        about = f"{resource.noun}s: {', '.join(resource.verbs)}"
        parser = commands.add_parser(resource.command, help=about, description=about)
        if resource.command == wanted:
            _resource(parser, resource)
    for name, (about, fill) in COMMANDS.items():
        parser = commands.add_parser(name, help=about, add_help=name != "emulator")
        if name == wanted:
            fill(parser)
    return top


def _resource(parser: argparse.ArgumentParser, resource: Resource) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in resource.verbs:
        verb = VERBS[name]
        text = verb.help.format(noun=resource.noun)
        leaf = verbs.add_parser(name, help=text, description=text[0].upper() + text[1:])
        if resource.scoped:
            leaf.add_argument("-p", "--project", required=True, help="the project id")
        if verb.takes_id:
            leaf.add_argument("id", metavar=resource.metavar, help=f"the {resource.noun}")
        _add(leaf, verb.args if verb.method else CREATE_ARGS[resource.command])
        _output(leaf)
        _connection(leaf)
        leaf.set_defaults(resource=resource)


def _fine_tune(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Create a project (or use -p), upload the data, train, pick a checkpoint and deploy "
        "it, waiting for each. With --state FILE, running the same command again after an "
        "interruption (Ctrl-C, kill -9, a reboot) resumes: nothing is uploaded, trained or "
        "deployed twice."
    )
    _add(parser, (
        arg("--base-model", required=True, metavar="MODEL", help="see: emissary models list"),
        arg("--train", metavar="PATH", group="train", help="the training data (or -)"),
        arg("--train-dataset", metavar="DATASET", group="train", help="a dataset uploaded"),
        arg("--test", metavar="PATH", help="test data"),
        arg("-p", "--project", group="project", help="an existing project (default: a new one)"),
        arg("--project-name", metavar="NAME", group="project", help="the new project's name"),
        arg("--state", metavar="FILE", help="record the run here; run again to resume it"),
        arg("--no-deploy", dest="deploy", action="store_false", help="stop after training"),
        arg("--checkpoint", type=checkpoint, default="last", metavar="N|last",
            help="which checkpoint to deploy (default: the last)"),
        _SERVER_TYPE, _PARAM,
        arg("--split-ratio", type=float, metavar="R", help="train/test split, 0 < R < 1"),
        arg("--hf-model-link", metavar="URL", help="a Hugging Face model (base model HF_MODEL)"),
        arg("--name", help="names the training job and deployment (and NAME-train, ...)"),
        _DESCRIPTION,
    ))  # fmt: skip
    _output(parser)
    _connection(parser)


def _chat(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print the reply to PROMPT (one user message, after SYSTEM if given)."
    _deployment(parser)
    parser.add_argument("-s", "--system", help="a system message before the prompt")
    _text(parser, "PROMPT")
    _sampling(parser)
    _inference_output(parser)
    _connection(parser)


def _embed(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Embed SOURCE and TARGET and compare them (cosine, manhattan, euclidean: all three "
        "unless some are named)."
    )
    _deployment(parser)
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("target", metavar="TARGET")
    for measure in ("cosine", "manhattan", "euclidean"):
        parser.add_argument(f"--{measure}", action="store_true", default=None)
    _inference_output(parser)
    _connection(parser)


def _classify(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print the class of TEXT."
    _deployment(parser)
    _text(parser, "TEXT")
    _inference_output(parser)
    _connection(parser)


def _complete(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print one completion."
    _deployment(parser)
    _text(parser, "PROMPT")
    _sampling(parser)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object: id, response, request_id"
    )
    _connection(parser)


def _batch(parser: argparse.ArgumentParser) -> None:
    from ._batch import ENDPOINTS

    parser.description = (
        "Run every line of INPUT (a JSONL file, or - for stdin) against the deployment's "
        "--endpoint and write one JSON line per input line to OUTPUT as each completes. A "
        'line is a request body object, or {"custom_id": "...", "body": {...}}. After an '
        "interruption, run the same command with --resume: finished rows are kept, the "
        "others run again with the same Idempotency-Key."
    )
    parser.epilog = BATCH_EPILOG
    parser.add_argument("input", metavar="INPUT", help="JSONL file of request bodies, or -")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="JSONL results, or - for stdout"
    )
    _deployment(parser)
    parser.add_argument(
        "--endpoint",
        choices=tuple(ENDPOINTS),
        default="completions",
        help="what each line is sent to (default: completions)",
    )
    parser.add_argument(
        "--concurrency",
        default="auto",
        metavar="auto|N",
        help="requests in flight: adaptive (default) or a fixed number",
    )
    parser.add_argument(
        "--max-concurrency", type=int, default=64, metavar="N", help="the most under auto (64)"
    )
    parser.add_argument("--rpm", type=float, metavar="N", help="at most N requests a minute")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into OUTPUT"
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", default=None, help="a progress bar on stderr"
    )
    shown.add_argument("--no-progress", dest="progress", action="store_false")
    _connection(parser)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "fine-tune": ("local data to a deployed model, resumable", _fine_tune),
    "chat": ("one chat completion", _chat),
    "embed": ("embed and compare two sentences", _embed),
    "classify": ("classify a text", _classify),
    "complete": ("one completion", _complete),
    "batch": ("many inference calls, from JSONL to JSONL, resumable", _batch),
    "emulator": ("serve the local emulator (as python -m emissary.testing)", lambda p: None),
}
"""The commands that are not a resource's: their help line and what adds their arguments."""


def _add(parser: argparse.ArgumentParser, args: tuple[Arg, ...]) -> None:
    groups: dict[str, Any] = {}
    for one in args:
        where: Any = parser
        if one.group is not None:
            if one.group not in groups:
                required = GROUPS[one.group]
                groups[one.group] = parser.add_mutually_exclusive_group(required=required)
            where = groups[one.group]
        where.add_argument(*one.flags, **one.options)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="table on a terminal, JSON when piped (default: auto)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only ids")


def _inference_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="json: one JSON object with the request id (default: the text)",
    )


def _connection(parser: argparse.ArgumentParser) -> None:
    """The options of every command that talks to the server."""
    parser.add_argument("--server-url", help="the API's base URL (default: EMISSARY_SERVER_URL)")
    group = parser.add_argument_group("network")
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


def _deployment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--project", required=True, help="the project id")
    parser.add_argument("-d", "--deployment", required=True, help="the deployment id")


def _text(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "prompt",
        nargs="?",
        default=None,
        metavar=name,
        help="read from stdin when '-' or absent (and stdin is not a terminal)",
    )


def _sampling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, metavar="N")
    parser.add_argument("--temperature", type=float, metavar="T")
    parser.add_argument("--top-p", type=float, metavar="P")
    parser.add_argument("--top-k", type=int, metavar="K")
    parser.add_argument("--no-repeat-ngram-size", type=int, metavar="N")
    parser.add_argument("--do-sample", action="store_true", default=None)
