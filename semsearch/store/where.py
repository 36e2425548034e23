"""Metadata filters as SQL over the chunk store (``d``: documents, ``c``: chunks).

A filter maps keys to conditions, all of which must hold:

* ``"source"``: a glob on the whole path or any trailing part of it (``"*.md"``).
* ``{"k": v}``: the metadata value equals ``v``; a list value matches when it holds ``v``.
* ``{"k": {"$op": v, ...}}``: each operator of :data:`OPERATORS` must hold. ``$in``/``$nin``
  take a list; ``$gt``... compare numbers with numbers and strings with strings (so ISO
  dates compare as dates); a list value matches when any element does. ``$ne`` and ``$nin``
  are the negations of ``$eq`` and ``$in``, so they also match documents without the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..util import check_text

#: Comparison operators and their SQL; the negated ones are ``NOT`` of a positive one.
_COMPARE = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_NEGATED = {"$ne": "$eq", "$nin": "$in"}
#: Every operator a filter may use, declared once.
OPERATORS: tuple[str, ...] = (*_COMPARE, "$in", *_NEGATED)
#: The longest ``source`` glob: SQLite refuses patterns over 50,000 bytes, and no path
#: needs more than this.
MAX_GLOB = 4096
#: The most values one ``$in``/``$nin`` may list (SQLite binds each as a parameter).
MAX_IN = 1000
#: SQLite's integers are 64-bit; a filter value beyond that is refused, not wrapped.
_INT64 = 1 << 63
#: A document's metadata as JSON, or an empty object when it is not valid JSON (an index
#: written before non-finite numbers were refused holds ``NaN``, which SQLite rejects).
_META = "(CASE WHEN json_valid(d.meta) THEN d.meta ELSE '{}' END)"


def where_sql(where: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """SQL conditions (ANDed) and their arguments for a filter; a bad filter is a
    :class:`UsageError` naming what is wrong."""
    if not isinstance(where, Mapping):
        raise UsageError(f"where must be a mapping of key to value, got {type(where).__name__}")
    clauses: list[str] = []
    args: list[Any] = []
    for key, cond in where.items():
        if not isinstance(key, str):
            raise UsageError(f"where keys must be strings, got {key!r:.40}")
        check_text(key, "a where key")
        if key == "source":
            glob = _source_glob(cond)
            clauses.append("(d.source GLOB ? OR d.source GLOB ?)")
            args += [glob, "*/" + glob]
            continue
        ops = cond if isinstance(cond, Mapping) else {"$eq": cond}
        if not ops:
            raise UsageError(f"where[{key!r:.40}] has no operator")
        for op, value in ops.items():
            clause, extra = _condition(key, op, value)
            clauses.append(clause)
            args += extra
    return clauses, args


def _source_glob(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError("where['source'] must be a non-empty glob string")
    check_text(value, "the source glob")
    if len(value) > MAX_GLOB:
        raise UsageError(f"the source glob is too long ({len(value):,} > {MAX_GLOB:,} characters)")
    return value


def _condition(key: str, op: Any, value: Any) -> tuple[str, list[Any]]:
    """One operator on one key: an EXISTS over the key's value (or its list's elements)."""
    if op not in OPERATORS:
        raise UsageError(
            f"unknown where operator {op!r:.40} for {key!r:.40}: use one of {', '.join(OPERATORS)}"
        )
    positive = _NEGATED.get(op, op)
    if positive == "$in":
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"where[{key!r:.40}][{op!r}] must be a list of values")
        if len(value) > MAX_IN:
            raise UsageError(f"where[{key!r:.40}][{op!r}] lists more than {MAX_IN:,} values")
        tests = [_test(key, op, "$eq", v) for v in value]
        test = "(" + " OR ".join(t for t, _ in tests) + ")" if tests else "0"
        targs = [a for _, extra in tests for a in extra]
    else:
        test, targs = _test(key, op, positive, value)
    # The key's value itself, or any element when it is a list.
    element = test.replace("{v}", "e")
    scalar = test.replace("{v}", "m")
    clause = (
        f"EXISTS (SELECT 1 FROM json_each({_META}) m WHERE m.key = ? AND ("
        f"(m.type != 'array' AND {scalar}) OR (m.type = 'array' AND "
        f"EXISTS (SELECT 1 FROM json_each(m.value) e WHERE {element}))))"
    )
    args = [key, *targs, *targs]
    return (f"NOT {clause}" if op in _NEGATED else clause), args


def _test(key: str, op: str, positive: str, value: Any) -> tuple[str, list[Any]]:
    """SQL testing one JSON value ``{v}`` (an alias of json_each) against ``value``."""
    name = f"where[{key!r:.40}][{op!r}]"
    sql_op = _COMPARE[positive]
    ordered = positive != "$eq"
    if value is None or isinstance(value, bool):
        if ordered:
            raise UsageError(f"{name} compares order, so it needs a number or a string")
        if value is None:
            return "{v}.type = 'null'", []
        return "{v}.type = ?", ["true" if value else "false"]
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise UsageError(f"{name} is too large an integer")
        return f"{{v}}.type IN ('integer', 'real') AND {{v}}.value {sql_op} ?", [value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(f"{name} must be a finite number")
        return f"{{v}}.type IN ('integer', 'real') AND {{v}}.value {sql_op} ?", [value]
    if isinstance(value, str):
        check_text(value, name)
        return f"{{v}}.type = 'text' AND {{v}}.value {sql_op} ?", [value]
    kind = type(value).__name__
    raise UsageError(f"{name} must be a string, number, boolean or None, not {kind}")
