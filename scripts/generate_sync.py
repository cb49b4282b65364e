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
import subprocess
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
    """``AsyncCompletions`` -> ``Completions``; ``_AsyncBatches`` -> ``_Batches``."""
    private = "_" if name.startswith("_Async") else ""
    bare = name[len(private) :]
    if bare.startswith("Async") and bare[5:6].isupper():
        return private + bare[len("Async") :]
    return name


def generic_bases(cls: ast.ClassDef) -> list[ast.Subscript]:
    """The module's own generic bases of `cls` (``_AsyncBatches[Body, Result]``): their
    methods are written once, in a sync generic base of the same name made sync."""
    return [
        base
        for base in cls.bases
        if isinstance(base, ast.Subscript)
        and isinstance(base.value, ast.Name)
        and base.value.id.startswith("_Async")
    ]


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


def render_class(
    cls: ast.ClassDef, is_client: bool, classes: dict[str, ast.ClassDef], is_base: bool = False
) -> tuple[list[str], set[str]]:
    """The sync class for one async class, and the names its annotations use. `classes`:
    the module's classes by name, for the raw twins (``get = raw(AsyncX.get)``). A generic
    base (`is_base`: ``_AsyncBatches[Body, Result]``) becomes one whose methods use the
    subclass's ``_inner`` and ``_runner``; a class with such bases inherits their twins."""
    name = sync_name(cls.name)
    used: set[str] = set()
    if is_client:
        base = "(SyncClientBase)"
    elif is_base:
        generic = next(b for b in cls.bases if ast.unparse(b).startswith("Generic["))
        base = f"({ast.unparse(generic)})"
        used |= _names(generic)
    elif bases := generic_bases(cls):
        base = f"({', '.join(annotation(b) for b in bases)})"
        used |= set().union(*(_names(b) for b in bases))
    else:
        base = ""
    lines = [f"class {name}{base}:", *docstring_lines(ast.get_docstring(cls), "    "), ""]
    if is_base:
        parameters = ast.unparse(generic).removeprefix("Generic")
        lines += [f"    _inner: {cls.name}{parameters}", "    _runner: LoopThread", ""]
        used |= {cls.name, "LoopThread"}
    elif not is_client and generic_bases(cls):
        lines += [f"    _inner: {cls.name}", ""]  # (the base's, narrowed)
    children: list[tuple[str, str]] = []
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
            children.append((attr, ast.unparse(node.annotation)))
            used |= _names(node.annotation)

    if not is_client and not is_base:
        # Every resource wraps its async twin (and the client, for its loop thread).
        lines += [
            f"    def __init__(self, inner: {cls.name}, client: SyncClientBase) -> None:",
            "        self._inner = inner",
            "        self._client = client  # keeps the client (and its loop) alive",
            "        self._runner = client._runner",
            *(
                f"        self.{attr} = {sync_name(child)}(inner.{attr}, client)"
                for attr, child in children
            ),
            "",
        ]
        used |= {cls.name}

    for node in body:
        if isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id.startswith("_") for t in node.targets
        ):
            continue  # private state (``_operation = ...``): the async twin's own
        if isinstance(node, ast.Assign):  # ``get = raw(AsyncX.get)``: a raw twin
            method, returns = _raw_twin(node, classes)
            lines += _sync_method(method, f"APIResponse[{annotation(returns)}]", is_client)
            used |= _signature_names(method) | _names(returns) | {"APIResponse"}
            continue
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
        if node.name == "__init__" and is_client:
            params, forward = signature(node)
            used |= _signature_names(node)
            lines += def_lines("__init__", params, "None")
            lines += docstring_lines(ast.get_docstring(node), "        ")
            lines.append("        super().__init__(")
            lines.append(f"            {cls.name}(")
            lines += [f"                {f}," for f in forward]
            lines += ["            )", "        )", ""]
            lines.append("    def _bind(self) -> None:")
            lines += [
                f"        self.{attr} = {sync_name(child)}(self._async_client.{attr}, self)"
                for attr, child in children
            ]
            lines.append("")
        elif isinstance(node, ast.AsyncFunctionDef) and not node.name.startswith("_"):
            if is_client and node.name in LIFECYCLE:
                continue
            used |= _signature_names(node) | _names(node.returns)
            lines += _sync_method(node, annotation(node.returns), is_client)
    while lines and lines[-1] == "":
        lines.pop()
    return lines, used


def _raw_twin(
    node: ast.Assign, classes: dict[str, ast.ClassDef]
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.expr]:
    """The method a ``name = raw(AsyncX.name)`` line derives from, and its return type."""
    call = node.value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "raw"
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Attribute)
        and isinstance(call.args[0].value, ast.Name)
    ):
        raise SystemExit(f"cannot generate a sync twin of: {ast.unparse(node)}")
    owner, attribute = call.args[0].value.id, call.args[0].attr
    method = next(
        (
            n
            for n in classes[owner].body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == attribute
        ),
        None,
    )
    if method is None or method.returns is None:
        raise SystemExit(f"{owner}.{attribute}: no such method with a return type")
    target = node.targets[0]
    if not (isinstance(target, ast.Name) and target.id == attribute):
        raise SystemExit(f"a raw twin keeps its method's name: {ast.unparse(node)}")
    return method, method.returns


def _sync_method(
    node: ast.FunctionDef | ast.AsyncFunctionDef, returns: str, is_client: bool
) -> list[str]:
    """A sync method that runs the async one of the same name on the private loop (which
    makes the coroutine there: see `LoopThread.run`)."""
    params, forward = signature(node)
    target = "self._async_client" if is_client else "self._inner"
    return [
        *def_lines(node.name, params, returns),
        *docstring_lines(ast.get_docstring(node), "        "),
        f"        return self._runner.run({', '.join([f'{target}.{node.name}', *forward])})",
        "",
    ]


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
    """The text of one generated module (formatted by ruff, as the rest of the package)."""
    tree = ast.parse(target.source.read_text())
    rel = target.source.relative_to(ROOT).as_posix()
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    by_name = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    bases = {
        b.value.id: by_name[b.value.id]
        for cls in classes
        for b in generic_bases(cls)
        if isinstance(b.value, ast.Name)
    }
    body: list[str] = []
    used: set[str] = set()
    for cls, is_base in [*((c, True) for c in bases.values()), *((c, False) for c in classes)]:
        lines, names = render_class(cls, target.is_client, by_name, is_base)
        body += [*lines, "", ""]
        used |= names
    local = {sync_name(c.name) for c in [*classes, *bases.values()]}
    type_vars = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "TypeVar"
        for t in node.targets
        if isinstance(t, ast.Name) and t.id in used
    }
    async_names = [c.name for c in classes] + list(bases) + sorted(type_vars)
    imports = _imports(tree, used, local | type_vars, target.is_client, async_names)
    header = [
        f'"""The sync facade of {rel}: each class runs its async twin',
        "on a private loop.",
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
    return _ruff("\n".join(header + body) + "\n", target.output)


def _ruff(text: str, path: Path) -> str:
    """`text` with its imports sorted and formatted by ruff, under the project's settings."""
    name = str(path.relative_to(ROOT))
    for command in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", name, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff {command[0]} failed on {name}:\n{done.stderr}")
        text = done.stdout
    return text


def _imports(
    tree: ast.Module, used: set[str], local: set[str], is_client: bool, classes: list[str]
) -> list[str]:
    """The generated module's imports: those of the source that its annotations use (with
    sync names for async ones), those the source only type-checks still under
    ``if TYPE_CHECKING:`` (ruff sorts them)."""
    wanted = {n for n in used if n not in local}
    plain: list[str] = []
    checking: list[str] = []
    for node in tree.body:
        guarded = isinstance(node, ast.If)  # TYPE_CHECKING blocks
        for item in node.body if isinstance(node, ast.If) else [node]:
            into = checking if guarded else plain
            if isinstance(item, ast.Import):  # ``import ssl``, for ``ssl.SSLContext``
                into += [f"import {a.name}" for a in item.names if a.name in wanted]
                continue
            if not isinstance(item, ast.ImportFrom):
                continue
            names = sorted(a.name for a in item.names if a.name in wanted and a.name not in local)
            if not item.level:  # ``AsyncIterator`` from collections.abc: ``Iterator`` instead
                names = sorted({sync_name(name) for name in names})
            if not names:
                continue
            module = item.module or ""
            if item.level == 1 and all(n.startswith("Async") for n in names):
                # async sibling classes: import their sync twins from the generated sibling
                into.append(f"from .{module} import {', '.join(sync_name(n) for n in names)}")
                continue
            prefix = ".._async." if item.level == 1 else "." * item.level
            into.append(f"from {prefix}{module} import {', '.join(names)}")
    module = "client" if is_client else "resources"
    plain.append(f"from .._async.{module} import {', '.join(classes)}")
    plain.append("from .base import SyncClientBase")
    if "LoopThread" in used:
        checking.append("from .._loop import LoopThread")
    if checking:
        plain.append("from typing import TYPE_CHECKING")
        plain += ["", "if TYPE_CHECKING:", *(f"    {line}" for line in checking)]
    return plain


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
