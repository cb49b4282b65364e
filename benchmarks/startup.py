"""Import and construction cost, in instructions under callgrind (which this VM does not
spread as it spreads time).

    python benchmarks/startup.py [--against ee8cc79]

Counts ``python -c CODE`` for: nothing (Python's own start-up, subtracted from the rest),
importing the async client, importing it and building one `AsyncEmissaryClient`, and
importing and building (then closing) one `EmissaryClient`. With ``--against COMMIT`` the
same runs of that commit's tree (a git worktree) come first, and the ratios are this tree's
over it: issue 21 held the 25 operations to at most 1.10 times that of ``ee8cc79``, the last commit
with completions only. Needs valgrind; about 3 minutes with ``--against``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import HERE, ROOT
from instructions import counted

CASES = {
    "python": "pass",
    "import": "from emissary import AsyncEmissaryClient",
    "async client": (
        "from emissary import AsyncEmissaryClient\n"
        "AsyncEmissaryClient(api_key='k', server_url='http://127.0.0.1:1')"
    ),
    "sync client": (
        "from emissary import EmissaryClient\n"
        "EmissaryClient(api_key='k', server_url='http://127.0.0.1:1').close()"
    ),
}
"""What is counted: Python's start-up, then each case (its start-up subtracted)."""


def tree_counts(tree: Path) -> dict[str, int]:
    """Instructions of each case with `tree`'s package first on the path, start-up less."""
    os.environ["PYTHONPATH"] = str(tree)
    counts = {name: counted(["-c", code], name, 0, cwd=tree)[0] for name, code in CASES.items()}
    start = counts.pop("python")
    return {"python": start, **{name: count - start for name, count in counts.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="COMMIT", help="a commit to compare with")
    options = parser.parse_args()
    report: dict[str, object] = {}
    if options.against:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), options.against],
                cwd=ROOT, check=True, capture_output=True,
            )  # fmt: skip
            try:
                report[options.against] = tree_counts(tree)
            finally:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True
                )
    report["this tree"] = here = tree_counts(ROOT)
    print(
        f"{'case':<14}{'this tree (M)':>15}"
        + (f"{options.against:>15}{'ratio':>9}" if options.against else "")
    )
    for name, count in here.items():
        line = f"{name:<14}{count / 1e6:>15.1f}"
        if options.against:
            before = report[options.against][name]  # type: ignore[index]
            line += f"{before / 1e6:>15.1f}{count / before:>9.3f}"
        print(line)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
