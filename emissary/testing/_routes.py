"""The emulator's routing: the operation rows' path templates, compiled once.

Each ``{name}`` of a template (``/v1/projects/{project_id}``) matches one non-empty path
segment of the raw path (so ``%2F`` stays inside its segment), percent-decoded. An unknown
path is a 404 coded ``route_not_found``; a known path with another method a 405 whose
``Allow`` header lists the methods it takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .._operations import Operation
from ._answers import ApiError

_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Match:
    """A request's operation and its path parameters (percent-decoded), in order."""

    operation: Operation[Any]
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Path:
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    methods: Mapping[str, Operation[Any]]


class Router:
    """Finds the operation of a request from its method and raw path."""

    def __init__(self, operations: Iterable[Operation[Any]]) -> None:
        by_template: dict[str, dict[str, Operation[Any]]] = {}
        for operation in operations:
            methods = by_template.setdefault(operation.path, {})
            if operation.method in methods:
                raise ValueError(f"two operations for {operation.method} {operation.path}")
            methods[operation.method] = operation
        self._paths = tuple(
            _Path(_compile(template), tuple(_PARAMETER.findall(template)), methods)
            for template, methods in by_template.items()
        )

    def match(self, method: str, raw_path: str) -> Match:
        """The operation for `method` on `raw_path` (its query string is ignored), or
        `ApiError` 404 (no such path) or 405 (not with this method)."""
        path = raw_path.partition("?")[0]
        for candidate in self._paths:
            found = candidate.pattern.fullmatch(path)
            if found is None:
                continue
            operation = candidate.methods.get(method)
            if operation is None:
                allowed = ", ".join(sorted(candidate.methods))
                raise ApiError(
                    405,
                    f"{method} is not allowed on {path}; use {allowed}",
                    headers={"Allow": allowed},
                )
            params = {
                name: unquote(value)
                for name, value in zip(candidate.names, found.groups(), strict=True)
            }
            return Match(operation, params)
        raise ApiError(404, f"no route for {path}", code="route_not_found")


def _compile(template: str) -> re.Pattern[str]:
    """A template's pattern: its text literally, each parameter one segment."""
    pieces = _PARAMETER.split(template)  # text, name, text, name, ..., text
    return re.compile(
        "".join(re.escape(piece) if i % 2 == 0 else "([^/]+)" for i, piece in enumerate(pieces))
    )
