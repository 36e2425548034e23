"""JSONL and CSV: one document per row, a chosen text field, the other fields as metadata."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .base import Unreadable
from .text import decode

DATA_SUFFIXES = frozenset({".jsonl", ".ndjson", ".csv", ".tsv"})
#: Tried in order when no text field is given.
DEFAULT_TEXT_FIELDS = ("text", "content", "body", "abstract", "description")


@dataclass(frozen=True, slots=True)
class Row:
    """One record: its text, its other scalar fields, and the 1-based line it starts on."""

    text: str
    meta: Mapping[str, Any]
    line: int


def read_rows(data: bytes, suffix: str, text_field: str | None, name: str) -> Iterator[Row]:
    """Rows of a JSONL or CSV/TSV file; rows without the text field are skipped (counted
    by the caller). Raises Unreadable when no row has the field."""
    text = decode(data)
    records = _jsonl(text) if suffix in (".jsonl", ".ndjson") else _csv(text, suffix)
    found = False
    for line, record in records:
        field = text_field or next((f for f in DEFAULT_TEXT_FIELDS if f in record), None)
        value = record.get(field) if field else None
        if not isinstance(value, str) or not value.strip():
            continue
        found = True
        meta = {k: v for k, v in record.items() if k != field and _scalar(v)}
        yield Row(value, meta, line)
    if not found:
        wanted = text_field or " / ".join(DEFAULT_TEXT_FIELDS)
        raise Unreadable(f"no row has a text field {wanted!r} (choose one with --text-field)")


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


def _jsonl(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for n, line in enumerate(io.StringIO(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Unreadable(f"line {n} is not JSON ({exc.msg})") from None
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
