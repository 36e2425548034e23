"""Read a BEIR-format collection (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Used to measure semsearch on labelled data. The corpus is streamed line by line so a
multi-gigabyte corpus never sits in memory as JSON; queries and qrels are small and loaded
whole. Every malformed input becomes one :class:`UsageError` line naming file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..errors import UsageError


@dataclass(frozen=True, slots=True)
class BeirDoc:
    """One corpus document. ``title`` is "" when the collection has none."""

    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and body as one string, the way BEIR feeds documents to dense models."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True, slots=True)
class BeirQuery:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirCollection:
    """A collection's judged queries and qrels; the corpus is read on demand by :meth:`corpus`."""

    root: Path
    split: str
    queries: tuple[BeirQuery, ...]
    qrels: Mapping[str, Mapping[str, int]]

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    def corpus(self) -> Iterator[BeirDoc]:
        """Stream the documents in file order (each call reads the file again)."""
        return read_corpus(self.corpus_path)


def load_beir(root: str | Path, split: str = "test") -> BeirCollection:
    """Open a BEIR directory: queries restricted to those judged in ``qrels/<split>.tsv``.

    Like BEIR's own loader, queries without judgments are dropped, because ``queries.jsonl``
    usually holds every split's queries. A judged query missing from ``queries.jsonl`` is an error.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UsageError(f"BEIR collection {base}: not a directory")
    corpus = base / "corpus.jsonl"
    if not corpus.is_file():
        raise UsageError(f"BEIR collection {base}: missing corpus.jsonl")
    qrels_file = base / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        have = sorted(p.stem for p in (base / "qrels").glob("*.tsv"))
        raise UsageError(
            f"missing qrels file {qrels_file} "
            f"(splits in this collection: {', '.join(have) if have else 'none'})"
        )
    qrels = read_qrels(qrels_file)
    all_queries = read_queries(base / "queries.jsonl")
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        raise UsageError(
            f"{base / 'qrels' / f'{split}.tsv'}: {len(missing)} judged quer"
            f"{'y is' if len(missing) == 1 else 'ies are'} not in queries.jsonl "
            f"(first: {missing[0]!r})"
        )
    queries = tuple(BeirQuery(qid, text) for qid, text in all_queries.items() if qid in qrels)
    frozen = MappingProxyType({q: MappingProxyType(dict(d)) for q, d in qrels.items()})
    return BeirCollection(base, split, queries, frozen)


def read_corpus(path: str | Path) -> Iterator[BeirDoc]:
    """Yield documents from a BEIR ``corpus.jsonl``; blank lines are skipped, ids must be unique."""
    path = Path(path)
    seen: set[str] = set()
    for lineno, obj in _jsonl(path):
        doc_id = _id_field(obj, path, lineno)
        text = obj.get("text")
        if not isinstance(text, str):
            raise UsageError(f"{path}:{lineno}: document {doc_id!r} has no string 'text'")
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise UsageError(f"{path}:{lineno}: document {doc_id!r} has a non-string 'title'")
        if doc_id in seen:
            raise UsageError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        yield BeirDoc(doc_id, title, text)


def read_queries(path: str | Path) -> dict[str, str]:
    """Query id -> text from a BEIR ``queries.jsonl``, in file order."""
    path = Path(path)
    queries: dict[str, str] = {}
    for lineno, obj in _jsonl(path):
        qid = _id_field(obj, path, lineno)
        text = obj.get("text")
        if not isinstance(text, str):
            raise UsageError(f"{path}:{lineno}: query {qid!r} has no string 'text'")
        if qid in queries:
            raise UsageError(f"{path}:{lineno}: duplicate query id {qid!r}")
        queries[qid] = text
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a BEIR qrels TSV (``query-id corpus-id score``).

    The first line is skipped when it is a header (its score column is not an integer).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"missing qrels file {path}")
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for lineno, raw in enumerate(f, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) != 3:
                    raise UsageError(
                        f"{path}:{lineno}: expected 3 tab-separated fields "
                        f"(query-id, corpus-id, score), got {len(fields)}"
                    )
                qid, doc_id, score = (x.strip() for x in fields)
                try:
                    rel = int(score)
                except ValueError:
                    if lineno == 1:
                        continue  # header
                    raise UsageError(
                        f"{path}:{lineno}: score {score!r} is not an integer"
                    ) from None
                if not qid or not doc_id:
                    raise UsageError(f"{path}:{lineno}: empty query or document id")
                qrels.setdefault(qid, {})[doc_id] = rel
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not qrels:
        raise UsageError(f"{path}: no judgments")
    return qrels


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, object) for each non-blank line; one-line errors for anything else."""
    if not path.is_file():
        raise UsageError(f"missing file {path}")
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise UsageError(f"{path}:{lineno}: not valid JSON") from None
                if not isinstance(obj, dict):
                    raise UsageError(f"{path}:{lineno}: expected a JSON object")
                yield lineno, obj
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _id_field(obj: Mapping[str, object], path: Path, lineno: int) -> str:
    raw = obj.get("_id")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or str(raw) == "":
        raise UsageError(f"{path}:{lineno}: missing or invalid '_id'")
    return str(raw)
