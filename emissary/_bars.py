"""Progress bars on stderr (``progress=True``), drawn by tqdm, imported on first use: for a
batch's rows, an upload's bytes and a wait's percent. Only where the caller asked for one."""

from __future__ import annotations

import importlib
import sys
from typing import Any


class Bar:
    """A tqdm bar on stderr: `show` moves it to a count and sets its note."""

    def __init__(self, total: int | None, unit: str, desc: str | None = None) -> None:
        tqdm = importlib.import_module("tqdm").tqdm  # untyped, and only imported here
        self.bar: Any = tqdm(
            total=total,
            unit=unit,
            desc=desc,
            file=sys.stderr,
            dynamic_ncols=True,
            unit_scale=unit == "B",
            unit_divisor=1024 if unit == "B" else 1000,
        )
        self.note: str | None = None

    def show(self, count: int, note: str | None = None) -> None:
        """Move to `count` (back too: a retried upload starts again) and show `note`."""
        if note != self.note:
            self.note = note
            self.bar.set_postfix_str(note or "", refresh=False)
        if count < self.bar.n:
            self.bar.reset(total=self.bar.total)
        self.bar.update(count - self.bar.n)

    def close(self) -> None:
        """Leave the bar as it is, on its own line."""
        self.bar.close()
