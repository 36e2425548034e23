"""JSONL and CSV: one document per row, a chosen text field, the other fields as metadata."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..limits import MAX_ROWS
from .base import DROP, Unreadable, meta_value
from .text import decode

DATA_SUFFIXES = frozenset({".jsonl", ".ndjson", ".csv", ".tsv"})
#: Tried in order when no text field is given.
DEFAULT_TEXT_FIELDS = ("text", "content", "body", "abstract", "description")


@dataclass(frozen=True, slots=True)
class Row:
    """One record: its text, its other fields (JSON-typed), and the 1-based line it starts on."""

    text: str
    meta: Mapping[str, Any]
    line: int


class Skipped(NamedTuple):
    """A line left out (not JSON, a number too long, nesting too deep) or the row bound
    reached: the caller warns, naming the file and line."""

    line: int
    reason: str


def read_rows(
    data: bytes, suffix: str, text_field: str | None, name: str
) -> Iterator[Row | Skipped]:
    """Rows of a JSONL or CSV/TSV file, lazily; rows without the text field are skipped
    (counted by the caller). At most ``MAX_ROWS`` rows. Raises Unreadable when no row has
    the field."""
    text = decode(data)
    records = _jsonl(text) if suffix in (".jsonl", ".ndjson") else _csv(text, suffix)
    found = 0
    for line, record in records:
        if isinstance(record, Skipped):
            yield record
            continue
        field = text_field or next((f for f in DEFAULT_TEXT_FIELDS if f in record), None)
        value = record.get(field) if field else None
        if not isinstance(value, str) or not value.strip():
            continue
        if found == MAX_ROWS:
            yield Skipped(line, f"only the first {MAX_ROWS} rows are indexed")
            return
        found += 1
        meta = {k: meta_value(v) for k, v in record.items() if k != field}
        yield Row(value, {k: v for k, v in meta.items() if v is not DROP}, line)
    if not found:
        wanted = text_field or " / ".join(DEFAULT_TEXT_FIELDS)
        raise Unreadable(f"no row has a text field {wanted!r} (choose one with --text-field)")


def _jsonl(text: str) -> Iterator[tuple[int, Mapping[str, Any] | Skipped]]:
    for n, line in enumerate(io.StringIO(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, Skipped(n, f"not JSON ({exc.msg}); line skipped")
            continue
        except ValueError:  # an integer past Python's digit limit (4300 by default)
            yield n, Skipped(n, "a number with too many digits; line skipped")
            continue
        except RecursionError:
            yield n, Skipped(n, "JSON nested too deep; line skipped")
            continue
        if isinstance(record, Mapping):
            yield n, record


def _csv(text: str, suffix: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
    try:
        for record in reader:
            yield reader.line_num, {k: _typed(v) for k, v in record.items() if k is not None}
    except csv.Error as exc:
        raise Unreadable(f"bad CSV at line {reader.line_num} ({exc})") from None


def _typed(value: str | None) -> Any:
    """CSV has no types: numbers become numbers so ``--where year=2020`` matches as it
    does for JSONL; everything else stays text."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value
