"""Developer tasks: ``nox`` runs them all; ``nox -s tests-3.12`` one of them.

Sessions: tests on Python 3.10-3.13, lint (ruff), typecheck (mypy --strict; pyright on
what users' code sees), generated (the sync facade is fresh), examples; ``distributed``
(Ray and Dask, which CI runs apart); ``bench`` (the full side-by-side benchmark, needs
nginx) and ``bench_quick`` (the floor and emissary only, as CI runs it) on request.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
RUFF = "ruff==0.17.6"
"""One ruff for lint, format and the generated code (pyproject.toml's extras pin it too):
another version may format the generated code otherwise."""
nox.options.sessions = ["tests", "lint", "typecheck", "generated", "examples"]
nox.options.reuse_existing_virtualenvs = True

# pyenv installs each version under $PYENV_ROOT/versions/X.Y.Z/bin without putting it on
# PATH; add them so nox finds python3.10 ... python3.13.
_pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _bin in sorted(glob.glob(os.path.join(_pyenv, "versions", "3.*", "bin"))):
    if _bin not in os.environ.get("PATH", ""):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _bin


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite on one Python version."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


BASEDPYRIGHT = "basedpyright==1.40.2"
"""pyright, as Pylance users meet it, from the package index (it brings its own Node.js)."""


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the scripts, the examples and what users' code sees
    (tests/typing); pyright over the latter too, where it differs from mypy."""
    session.install("-e", ".", "mypy>=1.11", BASEDPYRIGHT)
    session.run("mypy", "--strict", "emissary", "scripts", "examples", "tests/typing")
    session.run("basedpyright", "--level", "error", "tests/typing")


@nox.session(python="3.11")
def generated(session: nox.Session) -> None:
    """Fail when emissary/_sync is stale (fix: python scripts/generate_sync.py)."""
    session.install(RUFF)  # the generator formats what it writes with ruff
    session.run("python", "scripts/generate_sync.py", "--check")


@nox.session(python="3.11")
def examples(session: nox.Session) -> None:
    """Run every example against the bundled emulator."""
    session.install("-e", ".")
    session.run("python", "examples/quickstart.py")
    session.run("python", "examples/async_service.py")
    session.run("python", "examples/see_and_steer.py")
    session.run("python", "examples/fine_tune.py")


@nox.session(python="3.11")
def distributed(session: nox.Session) -> None:
    """Ray Data and Dask: tests/distributed (a local Ray, a LocalCluster) and the Ray
    example with a few rows; apart from the main suite, which does not install them."""
    session.install("-e", ".[distributed]")
    session.run(
        "python", "-m", "pytest", "tests/distributed", "-o", "addopts=-ra", *session.posargs
    )
    session.run("python", "examples/ray_pipeline.py", "--rows", "2000")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The full benchmark: every client in its own virtualenv, against a local nginx."""
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(python="3.11")
def bench_quick(session: nox.Session) -> None:
    """A few seconds of the floor and emissary, so the benchmark never rots."""
    session.install("-e", ".")
    session.run("python", "benchmarks/bench.py", "--quick", *session.posargs)
