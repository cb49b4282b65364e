"""How a command's result is printed: ``--format table`` (a terminal's default), ``json``
(the default when stdout is not a terminal) or ``--quiet`` (only ids, one a line).

One formatter for every result: a model (a msgspec Struct), a list of them, or a dict.
JSON is the model as the API gave it (`msgspec.to_builtins`), indented, a list as an
array. A table shows a list as columns (`COLUMNS`, by the model's type) and one resource
as a field per line, with times as UTC dates, nested resources by their id (and status),
and long lists and vectors by their size.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

COLUMNS: dict[str, tuple[str, ...]] = {
    "BaseModelSummary": ("name", "type", "support_serverless"),
    "ProjectSummary": ("id", "name"),
    "DatasetSummary": ("id", "name", "is_uploaded", "created_at"),
    "TrainingJobSummary": ("id", "name", "base_model", "status", "progress", "created_at"),
    "TrainingJobCheckpoint": ("checkpoint", "created_at", "test_results.aggregated_test_result"),
    "DeploymentSummary": ("id", "name", "status", "created_at"),
}
"""The columns of a list of each model: its most telling fields (``get`` shows them all; a
dotted name is a field of a field)."""
HEADERS = {
    "support_serverless": "SERVERLESS",
    "is_uploaded": "UPLOADED",
    "created_at": "CREATED",
    "test_results.aggregated_test_result": "TEST RESULTS",
}
KEYS = {"BaseModelSummary": "name", "TrainingJobCheckpoint": "checkpoint"}
"""The field that identifies a model, when it is not ``id``."""
_TIMES = frozenset({"created_at", "updated_at", "timestamp"})


def resolve(options: Any) -> str:
    """``--format``, with ``auto`` decided: ``table`` on a terminal, else ``json``."""
    chosen: str = options.format
    if chosen == "auto":
        return "table" if sys.stdout.isatty() else "json"
    return chosen


def emit(result: Any, options: Any, ids: Sequence[str] | None = None) -> None:
    """Print `result` as the options say; `ids` are what ``--quiet`` prints (default: the
    result's id, or each one's for a list)."""
    if getattr(options, "quiet", False):
        for one in ids if ids is not None else _ids(result):
            print(one)
    elif resolve(options) == "json":
        print(json.dumps(plain(result), indent=2, ensure_ascii=False))
    elif isinstance(result, list):
        print(table(result))
    else:
        print(fields(result))


def plain(result: Any) -> Any:
    """`result` as JSON-ready builtins."""
    import msgspec

    return msgspec.to_builtins(result)


def key(item: Any) -> Any:
    """What identifies `item`: its id (a base model's name, a checkpoint's number)."""
    name = KEYS.get(type(item).__name__, "id")
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _ids(result: Any) -> list[str]:
    items = result if isinstance(result, list) else [result]
    return [str(key(item)) for item in items if key(item) is not None]


def table(items: list[Any]) -> str:
    """A list as aligned columns under a header (nothing but the header when empty)."""
    kind = type(items[0]).__name__ if items else ""
    names = COLUMNS.get(kind) or _field_names(items[0] if items else None) or ("id",)
    rows = [[HEADERS.get(n, n.upper().replace("_", " ")) for n in names]]
    rows += [[cell(name, _get(item, name)) for name in names] for item in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(names))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def fields(item: Any) -> str:
    """One resource, a field per line (fields with no value left out)."""
    values = item if isinstance(item, dict) else {n: getattr(item, n) for n in _field_names(item)}
    shown = [(name, cell(name, value)) for name, value in values.items() if value is not None]
    width = max((len(name) for name, _ in shown), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in shown)


def cell(name: str, value: Any) -> str:
    """One value, short, for a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in _TIMES and isinstance(value, int | float):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    if name == "progress" and isinstance(value, int | float):
        return f"{value:g}%"
    if isinstance(value, list):
        if value and all(isinstance(v, int | float) for v in value):
            return f"{len(value)} numbers"
        ids = [str(key(v)) for v in value if key(v) is not None]
        return f"{len(value)}" + (f": {', '.join(ids)}" if ids else "")
    if _field_names(value):  # a nested model: by its id and status, else all of it
        identity = key(value)
        status = getattr(value, "status", None)
        if identity is not None:
            return f"{identity}" + (f" ({status})" if status else "")
        return json.dumps(plain(value), ensure_ascii=False)
    if isinstance(value, dict):
        if all(isinstance(v, str | int | float | bool) for v in value.values()):
            return " ".join(f"{k}={v}" for k, v in value.items())
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _get(item: Any, name: str) -> Any:
    for part in name.split("."):
        item = getattr(item, part, None)
    return item


def _field_names(item: Any) -> tuple[str, ...]:
    return getattr(type(item), "__struct_fields__", ())
