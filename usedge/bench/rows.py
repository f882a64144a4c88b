"""What every bench table shares: a row that says ``ok`` or why it did not run, and a result that carries the
machine, the command and the settings next to its rows (``usedge bench`` and its ``--profile``, ``--scaling``
and ``--stream`` tables all build on these two)."""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from typing import Any

OK = "ok"


class Row:
    """Mixin of a frozen dataclass row whose last field is ``status: str = OK``."""

    status: str

    @property
    def ok(self) -> bool:
        return self.status == OK

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def extras(self) -> dict[str, Any]:
        """Derived values written next to the fields in JSON (none by default)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **self.extras()}


class Result:
    """Mixin of a frozen dataclass result with ``rows``, ``machine``, ``command`` and ``settings``."""

    rows: tuple
    row_type: type[Row]

    def to_dict(self) -> dict[str, Any]:
        head = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rows"}
        return {**head, "columns": list(self.row_type.columns()), "rows": [r.to_dict() for r in self.rows]}

    def to_csv(self) -> str:
        """The rows as CSV, one column per row field (None as an empty cell)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.row_type.columns()), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
        return buf.getvalue()


__all__ = ["OK", "Result", "Row"]
