"""The ``emissary`` command line: the whole platform from a shell.

    emissary models list | get NAME
    emissary projects create [--name N] | list | get ID | delete ID [--missing-ok] [--yes]
    emissary datasets upload -p P PATH|- [--name N] [--wait] | list | get | delete
    emissary training-jobs create -p P --base-model M (--train PATH | --train-dataset ID)
                           [--param K=V ...] [--wait] | list | get | cancel | delete
                           | checkpoints | wait ID [--max-wait 6h]
    emissary deployments create -p P --training-job ID [--checkpoint N|last] [--wait]
                         | list | get | cancel | delete | wait
    emissary fine-tune --base-model M --train PATH [-p P | --project-name N] [--state F]
    emissary chat | embed | classify | complete -p P -d D ...
    emissary batch INPUT -o OUTPUT -p P -d D [--endpoint E] [--resume]
    emissary emulator ...

The modules: `_parser` (the arguments; the resources and verbs as data), `_platform` (one
function runs any resource's verb; the creates, ``fine-tune`` and inference), `_output`
(one formatter: table, JSON or ids), `_batch` (resumable batches, exactly once) and
`_common` (the loop and its signals, the client, errors as exit statuses). docs/cli.md is
the user's guide.

``emissary --help`` costs little more than Python's start: only the standard library is
imported at the top of these modules, and each command imports the SDK when it runs. The
API key comes from ``EMISSARY_CLIENT_API_KEY`` only (arguments show in ``ps``).

Exit status: 0 done (a wait ended in success); 1 an API error (a missing resource, a
delete of one already gone), a wait that ended in failure (stderr names the status), a
delete declined, or some rows of a batch failed; 2 usage or configuration (a missing file
included), found before anything is sent; 3 ``--max-wait`` ran out (the work goes on); 4
``emissary batch`` stopped because INPUT could not be read or OUTPUT written; 130
interrupted (SIGINT: stderr says what keeps running and the command that cancels it); 143
terminated (SIGTERM). Every failure is one line on stderr; a usage error is one line after
argparse's usage block; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``emissary`` console script (and ``python -m emissary``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["emulator"]:
            from ..testing.__main__ import main as emulator

            return emulator(args[1:])
        from ._parser import build

        options = build(args).parse_args(args)
        return _dispatch(options)
    except KeyboardInterrupt:  # before the command's loop took over SIGINT
        print("emissary: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader left (| head): quiet, as `yes | head` is
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE


def _dispatch(options: argparse.Namespace) -> int:
    from ._common import report

    try:
        if options.command == "batch":
            from ._batch import main as batch

            return batch(options)
        from ._platform import main as platform

        return platform(options)
    except Exception as exc:  # one line; anything but a usage or SDK error is a bug: raised
        return report(exc)
