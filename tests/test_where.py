"""Metadata filters (issue 20 item 3): SQL results against a brute-force Python oracle."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from semsearch import SemanticIndex, UsageError
from semsearch.store.chunkstore import ChunkStore
from semsearch.store.records import StoredDocument
from semsearch.store.where import OPERATORS, where_sql

from .conftest import FakeEmbedder

KEYS = ["year", "lang", "tags", "date", "flag"]
SCALARS: list[Any] = [None, True, False, 0, 1, 2020, 2021.5, -3, "en", "de", "soup", "2024-01-05",
                      "2023-12-31", ""]  # fmt: skip


def _random_meta(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.1:
        return None
    meta: dict[str, Any] = {}
    for key in KEYS:
        r = rng.random()
        if r < 0.25:
            continue
        if r < 0.45:
            meta[key] = [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
        else:
            meta[key] = rng.choice(SCALARS)
    return meta


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _holds(stored: Any, op: str, want: Any) -> bool:
    """The oracle for one scalar stored value."""
    if op == "$eq":
        if want is None or isinstance(want, bool) or isinstance(stored, bool) or stored is None:
            return stored is want
        if _number(want):
            return _number(stored) and stored == want
        return isinstance(stored, str) and stored == want
    if op == "$in":
        return any(_holds(stored, "$eq", w) for w in want)
    compare = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
               "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}[op]  # fmt: skip
    if _number(want):
        return _number(stored) and compare(stored, want)
    return isinstance(stored, str) and compare(stored, want)


def _matches(meta: Mapping[str, Any] | None, where: Mapping[str, Any]) -> bool:
    for key, cond in where.items():
        ops = cond if isinstance(cond, Mapping) else {"$eq": cond}
        for op, want in ops.items():
            positive = {"$ne": "$eq", "$nin": "$in"}.get(op, op)
            present = meta is not None and key in meta
            hit = False
            if present:
                assert meta is not None
                value = meta[key]
                values = value if isinstance(value, list) else [value]
                hit = any(_holds(v, positive, want) for v in values)
            if hit == (op in ("$ne", "$nin")):
                return False
    return True


def _random_where(rng: random.Random) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for key in rng.sample(KEYS, rng.randint(1, 2)):
        if rng.random() < 0.3:
            where[key] = rng.choice(SCALARS)
            continue
        ops: dict[str, Any] = {}
        for op in rng.sample(OPERATORS, rng.randint(1, 2)):
            if op in ("$in", "$nin"):
                ops[op] = [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
            elif op in ("$eq", "$ne"):
                ops[op] = rng.choice(SCALARS)
            else:
                ops[op] = rng.choice([0, 1, 2020, 2021, 1.5, "de", "en", "2024-01-01", "s"])
        where[key] = ops
    return where


@pytest.fixture(scope="module")
def store() -> tuple[ChunkStore, list[dict[str, Any] | None]]:
    rng = random.Random(20)
    metas = [_random_meta(rng) for _ in range(300)]
    s = ChunkStore.create(":memory:")
    for n, meta in enumerate(metas):
        doc = StoredDocument(f"d{n}", f"/x/d{n}.txt", "0", 0, "", "text", None, None, None)
        s.add_document(doc, [], meta)
    s.conn.execute(
        "INSERT INTO chunks SELECT rowid - 1, rowid, doc_id, 0, 0, 1, 1, 1, NULL, '', 'x'"
        " FROM documents ORDER BY rowid"
    )
    s.commit()
    return s, metas


def test_operators_match_the_python_oracle(
    store: tuple[ChunkStore, list[dict[str, Any] | None]],
) -> None:
    s, metas = store
    rng = random.Random(7)
    matched_some = 0
    for _ in range(400):
        where = _random_where(rng)
        got = s.rows_where(where).tolist()
        want = [n for n, m in enumerate(metas) if _matches(m, where)]
        assert got == want, where
        matched_some += 0 < len(want) < len(metas)
    assert matched_some > 100  # the filters discriminate, not all-or-nothing


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"year": {"$regex": "x"}}, r"unknown where operator '\$regex'"),
        ({"year": {"$in": "en"}}, "must be a list"),
        ({"year": {"$gt": None}}, "compares order"),
        ({"year": {"$gte": True}}, "compares order"),
        ({"year": {}}, "no operator"),
        ({"source": "*" * 60_000}, "too long"),
        ({"source": "caf\udce9"}, "not valid UTF-8"),
        ({"lang": "caf\udce9"}, "not valid UTF-8"),
        ({"year": {"$in": list(range(2000))}}, "more than"),
    ],
)
def test_bad_filters_are_usage_errors(where: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        where_sql(where)


def test_front_matter_lists_and_ranges_through_search(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = SemanticIndex.from_texts(
        ["tomato soup recipe", "bread recipe", "soup of the day"],
        ids=["a", "b", "c"],
        metadata=[
            {"tags": ["soup", "red"], "year": 2019},
            {"tags": ["bake"], "year": 2021},
            {"tags": "soup", "year": 2024, "date": "2024-03-01"},
        ],
        embedder=fake,
        path=tmp_path / "i",
    )
    ids = lambda where: sorted({h.doc_id for h in index.search("recipe soup", k=5, where=where)})  # noqa: E731
    assert ids({"tags": "soup"}) == ["a", "c"]
    assert ids({"year": {"$gte": 2020}}) == ["b", "c"]
    assert ids({"year": {"$gt": 2019, "$lt": 2024}}) == ["b"]
    assert ids({"tags": {"$nin": ["soup"]}}) == ["b"]
    assert ids({"date": {"$gte": "2024-01-01"}}) == ["c"]
    assert ids({"tags": {"$in": ["bake", "red"]}, "source": "a"}) == ["a"]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["tags=soup"], {"tags": {"$eq": "soup"}}),
        (["year>=2020", "year<2024"], {"year": {"$gte": 2020, "$lt": 2024}}),
        (["lang in en, de"], {"lang": {"$in": ["en", "de"]}}),
        (["lang not in en"], {"lang": {"$nin": ["en"]}}),
        (["note=stays in place"], {"note": {"$eq": "stays in place"}}),
        (["a!=null"], {"a": {"$ne": None}}),
        (['{"year": {"$gte": 2020}}'], {"year": {"$gte": 2020}}),
        (["date>2024-01-01"], {"date": {"$gt": "2024-01-01"}}),
    ],
)
def test_cli_where_syntax(args: list[str], want: dict[str, Any]) -> None:
    from semsearch.cli.query import parse_where

    assert parse_where(args, None) == want
    where_sql(want)  # and the store accepts what the CLI makes


@pytest.mark.parametrize("arg", ["novalue", "=x", "{not json", "[1]"])
def test_cli_where_syntax_errors(arg: str) -> None:
    from semsearch.cli.query import parse_where

    with pytest.raises(UsageError):
        parse_where([arg], None)


def _service(tmp_path: Path, fake: FakeEmbedder) -> Any:
    pytest.importorskip("starlette")
    from semsearch.serve.service import SearchService

    SemanticIndex.from_texts(
        ["soup one", "soup two", "soup three"], ids=["a", "b", "c"],
        metadata=[{"year": 2019, "tags": ["x"]}, {"year": 2021},
                  {"year": 2024, "tags": ["x", "y"]}],
        embedder=fake, path=tmp_path / "i",
    )  # fmt: skip
    return SearchService(tmp_path / "i", workers=1, embedder=fake)


def test_http_passes_operator_filters_through(tmp_path: Path, fake: FakeEmbedder) -> None:
    from semsearch.serve import params as P

    service = _service(tmp_path, fake)
    raw = {"q": "soup", "k": 5, "where": {"year": {"$gte": 2020}, "tags": {"$nin": ["y"]}}}
    hits = service.search(P.search_request(raw))["hits"]
    assert [h["doc_id"] for h in hits] == ["b"]
    with pytest.raises(UsageError, match=r"unknown where operator '\$like'"):
        service.search(P.search_request({"q": "soup", "where": {"year": {"$like": 1}}}))


def test_mcp_search_takes_where(tmp_path: Path, fake: FakeEmbedder) -> None:
    pytest.importorskip("mcp")
    import anyio
    from mcp import Client

    from semsearch.serve.mcp_server import create_mcp

    server = create_mcp(_service(tmp_path, fake))

    async def go() -> tuple[Any, Any]:
        async with Client(server) as client:
            good = await client.call_tool("search", {"query": "soup", "where": {"tags": "x"}})
            bad = await client.call_tool("search", {"query": "soup", "where": {"t": {"$x": 1}}})
            return good, bad

    good, bad = anyio.run(go)
    assert not good.is_error and bad.is_error
    text = good.content[0].text
    assert '"a"' in text and '"c"' in text and '"b"' not in text
    assert "unknown where operator" in bad.content[0].text
