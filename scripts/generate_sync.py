"""Write the typed sync facade (`emissary/_sync/*.py`) from the async core (`emissary/_async`).

The async classes are the one source of every operation. For each ``AsyncX`` class this
script writes a class ``X`` with the same public methods, signatures, return types and
docstrings, whose bodies hand the async method's coroutine to the private loop
(`emissary._loop.LoopThread`, owned by `emissary._sync.base.SyncClientBase`).
Sub-resources (``completions: AsyncCompletions``) become attributes wrapping the async
ones, and the client's ``__init__`` builds the async client.

    python scripts/generate_sync.py          # rewrite the generated files
    python scripts/generate_sync.py --check  # exit 1 if they are stale (CI and tests)

Like httpcore's unasync step, it is plain text generation, not runtime metaprogramming: IDEs
and mypy see real classes.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "emissary"
# Lifecycle methods the hand-written `SyncClientBase` provides instead.
LIFECYCLE = {"close", "__aenter__", "__aexit__"}
TEXT_REPLACEMENTS = (
    ("async with ", "with "),
    ("await ", ""),
    ("Async client", "Client"),
)


@dataclass
class Target:
    """One generated module and the async module it comes from."""

    source: Path
    output: Path
    is_client: bool


TARGETS = (
    Target(PACKAGE / "_async/resources.py", PACKAGE / "_sync/resources.py", is_client=False),
    Target(PACKAGE / "_async/client.py", PACKAGE / "_sync/client.py", is_client=True),
)


def sync_name(name: str) -> str:
    """``AsyncCompletions`` -> ``Completions``."""
    return name[len("Async") :] if name.startswith("Async") and name[5:6].isupper() else name


def sync_text(text: str) -> str:
    """A docstring with its async wording turned sync."""
    for old, new in TEXT_REPLACEMENTS:
        text = text.replace(old, new)
    words = text.split("Async")
    return words[0] + "".join((w if w[:1].isupper() else "Async" + w) for w in words[1:])


class _SyncNames(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(id=sync_name(node.id), ctx=node.ctx), node)


def annotation(node: ast.expr | None) -> str:
    """An annotation rewritten to name the sync classes (``Iterable[X] | AsyncIterable[X]``
    becoming ``Iterable[X]``, not ``Iterable[X] | Iterable[X]``)."""
    assert node is not None
    tree = _SyncNames().visit(ast.parse(ast.unparse(node), mode="eval")).body
    members: list[str] = []
    for member in _union_members(tree):
        if (text := ast.unparse(member)) not in members:
            members.append(text)
    return " | ".join(members)


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def docstring_lines(doc: str | None, indent: str) -> list[str]:
    """A docstring as source lines at `indent`."""
    if not doc:
        return []
    lines = sync_text(doc).splitlines()
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    out = [f'{indent}"""{lines[0]}']
    out += [f"{indent}{line}".rstrip() for line in lines[1:]]
    out.append(f'{indent}"""')
    return out


def signature(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], list[str]]:
    """The parameter lines of `func` (after self) and the arguments forwarding them."""
    args = func.args
    params: list[str] = []
    forward: list[str] = []
    positional = args.args[1:]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        params.append(_param(arg, default))
        forward.append(arg.arg)
    if args.kwonlyargs:
        params.append("*")
    for arg, kwdefault in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(_param(arg, kwdefault))
        forward.append(f"{arg.arg}={arg.arg}")
    if args.kwarg is not None:
        params.append(f"**{args.kwarg.arg}: {annotation(args.kwarg.annotation)}")
        forward.append(f"**{args.kwarg.arg}")
    return params, forward


def _param(arg: ast.arg, default: ast.expr | None) -> str:
    text = f"{arg.arg}: {annotation(arg.annotation)}"
    if default is not None:
        if isinstance(default, ast.Constant) and isinstance(default.value, str):
            text += f" = {json.dumps(default.value)}"  # double quotes, as ruff writes them
        else:
            text += f" = {ast.unparse(default)}"
    return text


def def_lines(name: str, params: list[str], returns: str) -> list[str]:
    """A method header, one parameter per line."""
    return [
        "    def " + name + "(",
        "        self,",
        *[f"        {p}," for p in params],
        f"    ) -> {returns}:",
    ]


def render_class(cls: ast.ClassDef, is_client: bool) -> tuple[list[str], set[str]]:
    """The sync class for one async class, and the names its annotations use."""
    name = sync_name(cls.name)
    base = "(SyncClientBase)" if is_client else ""
    lines = [f"class {name}{base}:", *docstring_lines(ast.get_docstring(cls), "    "), ""]
    used: set[str] = set()
    children: list[str] = []
    body = cls.body
    for index, node in enumerate(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and not node.target.id.startswith("_")  # private state: the async twin's own
        ):
            attr = node.target.id
            lines.append(f"    {attr}: {annotation(node.annotation)}")
            following = body[index + 1] if index + 1 < len(body) else None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                lines += docstring_lines(str(following.value.value), "    ")
            lines.append("")
            children.append(attr)
            used |= _names(node.annotation)

    for node in body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if (
            isinstance(node, ast.FunctionDef)
            and not node.decorator_list
            and not node.name.startswith("_")
            and ast.unparse(node.returns or ast.Constant(None)).startswith("AsyncIterator[")
        ):
            # An async iterator (``iter_batch``): its twin iterates it from this thread.
            params, forward = signature(node)
            used |= _signature_names(node) | _names(node.returns)
            lines += def_lines(node.name, params, annotation(node.returns))
            lines += docstring_lines(ast.get_docstring(node), "        ")
            lines.append("        return self._runner.iterate(")
            lines.append(f"            self._inner.{node.name}(")
            lines += [f"                {f}," for f in forward]
            lines += ["            )", "        )", ""]
            continue
        if not node.name.startswith("_") and (
            isinstance(node, ast.FunctionDef) or node.decorator_list
        ):
            # A plain method or a property: its sync twin must be written by hand in the base
            # class (it may need the loop, or return a sync object). Fail loudly otherwise.
            if not is_client or node.name not in hand_written():
                raise SystemExit(
                    f"{cls.name}.{node.name}: cannot generate a sync twin of a plain method or "
                    "property; write it in emissary/_sync/base.py (SyncClientBase)"
                )
            continue
        if node.name == "__init__":
            params, forward = signature(node)
            if is_client:  # other classes get a fixed (inner, runner) signature below
                used |= _signature_names(node)
            lines += def_lines("__init__", params, "None")
            doc = ast.get_docstring(node)
            lines += docstring_lines(doc, "        ")
            if is_client:
                lines.append("        super().__init__(")
                lines.append(f"            {cls.name}(")
                lines += [f"                {f}," for f in forward]
                lines += ["            )", "        )", ""]
                lines.append("    def _bind(self) -> None:")
                source, runner = "self._async_client", "self"
            else:
                lines += [
                    "        self._inner = inner",
                    "        self._client = client  # keeps the client (and its loop) alive",
                    "        self._runner = client._runner",
                ]
                source, runner = "inner", "client"
            for child in children:
                child_cls = next(
                    ast.unparse(n.annotation)
                    for n in body
                    if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == child
                )
                lines.append(
                    f"        self.{child} = {sync_name(child_cls)}({source}.{child}, {runner})"
                )
            lines.append("")
        elif isinstance(node, ast.AsyncFunctionDef) and not node.name.startswith("_"):
            if is_client and node.name in LIFECYCLE:
                continue
            params, forward = signature(node)
            used |= _signature_names(node) | _names(node.returns)
            lines += def_lines(node.name, params, annotation(node.returns))
            lines += docstring_lines(ast.get_docstring(node), "        ")
            target = "self._async_client" if is_client else "self._inner"
            call = f"{target}.{node.name}("
            lines.append("        return self._runner.run(")
            lines.append(f"            {call}")
            lines += [f"                {f}," for f in forward]
            lines += ["            )", "        )", ""]
    if not is_client:
        # Non-client classes take the async object and the runner instead of the client.
        start = lines.index("    def __init__(")
        end = lines.index("    ) -> None:", start)
        lines[start : end + 1] = [
            f"    def __init__(self, inner: {cls.name}, client: SyncClientBase) -> None:"
        ]
        used |= {cls.name}
    while lines and lines[-1] == "":
        lines.pop()
    return lines, used


def hand_written() -> set[str]:
    """The public members `SyncClientBase` writes by hand (emissary/_sync/base.py)."""
    tree = ast.parse((PACKAGE / "_sync/base.py").read_text())
    base = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SyncClientBase")
    return {
        n.name
        for n in base.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("_")
    }


def _signature_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = func.args
    names: set[str] = set()
    for arg in args.args[1:] + args.kwonlyargs:
        names |= _names(arg.annotation)
    for default in [*args.defaults, *args.kw_defaults]:
        names |= _names(default)
    if args.kwarg is not None:
        names |= _names(args.kwarg.annotation)
    return names


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def render(target: Target) -> str:
    """The text of one generated module."""
    tree = ast.parse(target.source.read_text())
    rel = target.source.relative_to(ROOT).as_posix()
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    body: list[str] = []
    used: set[str] = set()
    for cls in classes:
        lines, names = render_class(cls, target.is_client)
        body += [*lines, "", ""]
        used |= names
    local = {sync_name(c.name) for c in classes}
    imports = _imports(tree, used, local, target.is_client, [c.name for c in classes])
    shown = ", ".join(f"`{sync_name(c.name)}`" for c in classes)
    header = [
        f'"""The sync facade: {shown};',
        "each runs its async twin on a private loop.",
        "",
        f"Generated from {rel} by scripts/generate_sync.py: do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        *imports,
        "",
        "",
    ]
    while body and body[-1] == "":
        body.pop()
    return "\n".join(header + body) + "\n"


def _imports(
    tree: ast.Module, used: set[str], local: set[str], is_client: bool, classes: list[str]
) -> list[str]:
    wanted = {n for n in used if n not in local}
    stdlib: list[str] = []
    package: list[str] = []
    for node in tree.body:
        nodes = [node]
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks
            nodes = list(node.body)
        for item in nodes:
            if isinstance(item, ast.Import):  # ``import ssl``, for ``ssl.SSLContext``
                stdlib += [f"import {a.name}" for a in item.names if a.name in wanted]
                continue
            if not isinstance(item, ast.ImportFrom):
                continue
            names = sorted(a.name for a in item.names if a.name in wanted and a.name not in local)
            if not item.level:  # ``AsyncIterator`` from collections.abc: ``Iterator`` instead
                names = sorted({sync_name(name) for name in names})
            if not names:
                continue
            module = item.module or ""
            sync_names = {sync_name(n) for n in names}
            if item.level == 1 and sync_names <= {
                sync_name(n) for n in names if n.startswith("Async")
            }:
                # an async sibling class: import its sync twin from the generated sibling
                package.append(f"from .{module} import {', '.join(sorted(sync_names))}")
                continue
            prefix = "." * item.level
            if item.level == 1:
                prefix = ".._async."
            line = _import_line(f"{prefix}{module}", names)
            (package if item.level else stdlib).append(line)
    if is_client:
        package.append(f"from .._async.client import {', '.join(classes)}")
        package.append("from .base import SyncClientBase")
    else:
        package.append(f"from .._async.resources import {', '.join(classes)}")
        package.append("from .base import SyncClientBase")
    # isort's order: plain ``import x`` lines before ``from x import y`` ones
    stdlib = sorted(set(stdlib), key=lambda line: (line.startswith("from "), line))
    return stdlib + ([""] if stdlib else []) + sorted(set(package), key=_import_key)


def _import_line(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= 100:
        return line
    return f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def _import_key(line: str) -> tuple[int, str]:
    module = line.split()[1]
    return (-module.count(".", 0, len(module) - len(module.lstrip("."))), module)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    options = parser.parse_args()
    stale = []
    for target in TARGETS:
        text = render(target)
        current = target.output.read_text() if target.output.exists() else None
        if current != text:
            stale.append(target.output.relative_to(ROOT).as_posix())
            if not options.check:
                target.output.write_text(text)
    if options.check and stale:
        print(
            f"stale generated sync code: {', '.join(stale)}; run: python scripts/generate_sync.py",
            file=sys.stderr,
        )
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
