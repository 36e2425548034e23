"""End-to-end build + query: semsearch vs sentence-transformers + faiss, txtai and chromadb.

Every system gets the same model directory, the same pre-chunked texts and the same queries,
and runs in its own process so its peak memory (``VmHWM``, see :func:`peak_rss_mb`) is its own.
Results are ratios to semsearch measured in one run, because absolute times on a shared 2-core
machine drift. A peer that is not installed or fails is reported as skipped with the reason.

Install the peers with ``pip install -c benchmarks/constraints-peers.txt
-r benchmarks/requirements-peers.txt`` (the constraint keeps the CPU torch).

Child usage (internal): ``python -m benchmarks.peers SYSTEM SPEC.json RESULT.json WORKDIR``.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import (
    REPO,
    Chunk,
    child_env,
    log,
    median,
    prepare_semsearch_model,
    scratch_dir,
    semsearch_model_arg,
)

#: "semsearch" runs with its defaults; "semsearch-<precision>" (e.g. semsearch-fp32) forces one.
SYSTEMS = ("semsearch", "semsearch-fp32", "st-faiss", "txtai", "chromadb")
BASELINE = "semsearch"
_METRICS = ("build_s", "query_s", "peak_rss_mb")


def run(
    chunks: Sequence[Chunk],
    queries: Sequence[tuple[str, str]],
    qrels: dict[str, set[str]],
    model_dir: str,
    systems: Sequence[str] = SYSTEMS,
    *,
    k: int = 10,
    timeout: float | None = None,
    repeat_baseline: bool = True,
) -> dict[str, Any]:
    """Build and query each system in a child process; ratios are ``system / semsearch``.
    With ``repeat_baseline`` semsearch runs first and again last, and its numbers are the mean.
    ``timeout`` per system defaults to 5 minutes plus half a second per chunk."""
    timeout = timeout if timeout is not None else 300 + 0.5 * len(chunks)
    tmp = scratch_dir("peers")
    try:
        spec = tmp / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "model_dir": model_dir,
                    "semsearch_model": semsearch_model_arg(model_dir),
                    "k": k,
                    "chunks": [[c.id, c.text] for c in chunks],
                    "queries": [t for _, t in queries],
                }
            ),
            encoding="utf-8",
        )
        doc_of = {c.id: c.doc_id for c in chunks}
        out: dict[str, Any] = {
            "chunks": len(chunks),
            "documents": len({c.doc_id for c in chunks}),
            "queries": len(queries),
            "k": k,
            "systems": {},
            "skipped": {},
        }
        if any(name.startswith(BASELINE) for name in systems):
            out["semsearch_model_prepare"] = prepare_semsearch_model(
                semsearch_model_arg(model_dir), tmp / "prepare"
            )
        order = list(systems)
        if repeat_baseline and BASELINE in order and len(order) > 1:
            order.append(BASELINE)  # A..A: the baseline's mean cancels a linear drift in load
        runs: dict[str, list[dict[str, Any]]] = {}
        for i, name in enumerate(order):
            log(f"peers: {name} ({len(chunks)} chunks, {len(queries)} queries)")
            res = _run_child(name, spec, tmp / f"{i}-{name}", timeout)
            if "skipped" in res:
                out["skipped"][f"{name} (repeat)" if name in runs else name] = res["skipped"]
                log(f"peers: {name} skipped: {res['skipped']}")
                continue
            runs.setdefault(name, []).append(res)
        for name, rs in runs.items():
            for res in _merge(name, rs):
                res["recall_at_k"] = _recall(res["ranked"], queries, qrels, doc_of)
                out["systems"][res.pop("name")] = res
        _compare(out["systems"])
        for res in out["systems"].values():
            res.pop("ranked")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(name: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system (metrics averaged over its runs), plus a row for semsearch's default
    query mode when that is not dense: same build, other ranking."""
    res = dict(runs[0], name=name)
    if len(runs) > 1:
        res["runs"] = [{m: r[m] for m in _METRICS} for r in runs]
        for m in (*_METRICS, "import_s", "default_query_s"):
            if all(isinstance(r.get(m), int | float) for r in runs):
                res[m] = sum(r[m] for r in runs) / len(runs)
    rows = [res]
    mode = res.pop("default_mode", None)
    default_query_s = res.pop("default_query_s", None)
    default_ranked = res.pop("default_ranked", None)
    if mode and default_ranked is not None:
        rows.append(
            {
                **{
                    m: res.get(m)
                    for m in ("import_s", "build_s", "peak_rss_mb", "indexed", "engine")
                },
                "name": f"{name}-{mode}",
                "query_s": default_query_s,
                "ranked": default_ranked,
                "note": f"same index as {name}, queried in its default mode ({mode})",
            }
        )
    return rows


def _run_child(name: str, spec: Path, work: Path, timeout: float) -> dict[str, Any]:
    """Run one system in a fresh interpreter; a crash or timeout becomes a skip reason."""
    work.mkdir(parents=True)
    result = work / "result.json"
    logfile = work / "log.txt"
    cmd = [sys.executable, "-m", "benchmarks.peers", name, str(spec), str(result), str(work)]
    t0 = time.perf_counter()
    with open(logfile, "wb") as logf:
        try:
            proc = subprocess.run(
                cmd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=child_env(work),
                cwd=REPO,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"skipped": f"timed out after {timeout:.0f} s"}
    if result.is_file():
        res = json.loads(result.read_text(encoding="utf-8"))
        if "skipped" in res or proc.returncode == 0:
            res["wall_s"] = time.perf_counter() - t0
            return res
    tail = logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    return {"skipped": f"exit code {proc.returncode}: " + " | ".join(tail)[-400:]}


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` belongs to the address space made at exec, so unlike
    ``ru_maxrss`` (which on Linux inherits the forking parent's high-water mark) it does not
    count the harness that started us."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _recall(
    ranked: list[list[str]],
    queries: Sequence[tuple[str, str]],
    qrels: dict[str, set[str]],
    doc_of: dict[str, str],
) -> float | None:
    """Mean fraction of each query's relevant documents found among the top-k chunks."""
    scores = []
    for (qid, _), ids in zip(queries, ranked, strict=True):
        rel = qrels.get(qid)
        if rel:
            found = {doc_of.get(i) for i in ids}
            scores.append(len(rel & found) / len(rel))
    return sum(scores) / len(scores) if scores else None


def _compare(systems: dict[str, dict[str, Any]]) -> None:
    """Add ratios to the baseline and top-k overlap with it (same model + chunks: near 1)."""
    base = systems.get(BASELINE)
    if base is None:
        return
    for res in systems.values():
        res["ratio"] = {m: res[m] / base[m] if base.get(m) else None for m in _METRICS}
        overlaps = [
            len(set(a) & set(b)) / max(len(b), 1)
            for a, b in zip(res["ranked"], base["ranked"], strict=True)
        ]
        res["overlap_with_semsearch"] = sum(overlaps) / len(overlaps) if overlaps else None


# --- children ------------------------------------------------------------------------------


_EMPTY = inspect.Parameter.empty


def _index_type(index: Any) -> str:
    """The vector index semsearch chose (its "auto" resolves by size), if it says."""
    try:
        return str(index.info().index_type)
    except Exception:  # an older or newer API: the label is informational only
        return "?"


class _Skip(Exception):
    """The system cannot run here (not installed); reported, not an error."""


def _timed_queries(
    search: Callable[[str], list[str]], queries: list[str], passes: int = 3
) -> tuple[float, list[list[str]]]:
    """Median time of ``passes`` passes over the queries, one query at a time as a user sends
    them; the median keeps one burst of outside load from deciding the number."""
    search(queries[0])  # warm-up: first-call allocations, lazy inits
    times, ranked = [], []
    for _ in range(passes):
        t = time.perf_counter()
        ranked = [search(q) for q in queries]
        times.append(time.perf_counter() - t)
    return median(times), ranked


def _child_semsearch(
    spec: dict[str, Any], work: Path, precision: str | None = None
) -> dict[str, Any]:
    """Dense search (what every peer does) is the baseline; semsearch's default mode, when it
    is another one (hybrid), is timed on the same index and reported beside it. ``precision``
    overrides semsearch's default (None keeps it)."""
    t0 = time.perf_counter()
    try:
        from semsearch import SemanticIndex
    except ImportError as exc:
        raise _Skip(f"semsearch API not importable: {exc}") from None
    import_s = time.perf_counter() - t0
    ids, texts = zip(*spec["chunks"], strict=True)
    kwargs: dict[str, Any] = {"precision": precision} if precision else {}
    index = SemanticIndex(model=spec["semsearch_model"], **kwargs)
    index.add_texts(list(texts), ids=list(ids))
    index.save(work / "index")
    build_s = time.perf_counter() - t0  # from process start: imports count
    k = spec["k"]
    mode = inspect.signature(index.search).parameters.get("mode")
    dense: dict[str, Any] = {"mode": "dense"} if mode is not None else {}
    query_s, ranked = _timed_queries(
        lambda q: [h.doc_id for h in index.search(q, k, **dense)], spec["queries"]
    )
    emb = index.embedder
    res = {
        "import_s": import_s,
        "build_s": build_s,
        "query_s": query_s,
        "indexed": len(index),
        "ranked": ranked,
        "engine": f"{type(emb).__name__} {getattr(emb, 'precision', '?')}, "
        f"{_index_type(index)} index",
    }
    if precision is None and mode is not None and mode.default not in ("dense", _EMPTY):
        res["default_mode"] = str(mode.default)
        res["default_query_s"], res["default_ranked"] = _timed_queries(
            lambda q: [h.doc_id for h in index.search(q, k)], spec["queries"]
        )
    return res


def _child_st_faiss(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """The plain script a user would write: encode, IndexFlatIP, write index + texts."""
    t0 = time.perf_counter()
    import faiss
    import numpy as np
    from sentence_transformers import SentenceTransformer

    import_s = time.perf_counter() - t0
    ids, texts = zip(*spec["chunks"], strict=True)
    model = SentenceTransformer(spec["model_dir"], device="cpu")
    vecs = model.encode(
        list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(np.ascontiguousarray(vecs, dtype=np.float32))
    faiss.write_index(index, str(work / "index.faiss"))
    (work / "chunks.json").write_text(json.dumps({"ids": ids, "texts": texts}), encoding="utf-8")
    build_s = time.perf_counter() - t0  # from process start: imports count
    k = spec["k"]

    def search(q: str) -> list[str]:
        qv = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        _, rows = index.search(np.ascontiguousarray(qv, dtype=np.float32), k)
        return [ids[r] for r in rows[0] if r >= 0]

    query_s, ranked = _timed_queries(search, spec["queries"])
    return {
        "import_s": import_s,
        "build_s": build_s,
        "query_s": query_s,
        "indexed": int(index.ntotal),
        "ranked": ranked,
        "engine": "sentence-transformers fp32, faiss IndexFlatIP",
    }


def _child_txtai(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """txtai with the same sentence-transformers model, stored content (like our chunk store)
    and exact flat faiss (its default turns approximate, IVF, above 5,000 rows)."""
    t0 = time.perf_counter()
    try:
        from txtai import Embeddings
    except ImportError as exc:
        raise _Skip(f"txtai not installed ({exc}); see benchmarks/requirements-peers.txt") from None
    import_s = time.perf_counter() - t0
    emb = Embeddings(
        path=spec["model_dir"],
        method="sentence-transformers",
        content=True,
        backend="faiss",
        faiss={"components": "IDMap,Flat"},
    )
    emb.index([(cid, text, None) for cid, text in spec["chunks"]])
    emb.save(str(work / "txtai"))
    build_s = time.perf_counter() - t0  # from process start: imports count
    k = spec["k"]
    query_s, ranked = _timed_queries(lambda q: [r["id"] for r in emb.search(q, k)], spec["queries"])
    return {
        "import_s": import_s,
        "build_s": build_s,
        "query_s": query_s,
        "indexed": int(emb.count()),
        "ranked": ranked,
        "engine": "sentence-transformers fp32, faiss IDMap,Flat, SQLite content",
    }


def _child_chromadb(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """chromadb, persistent, cosine HNSW (its only index), embedding with the same model through a
    custom embedding function, so its default ONNX model is never downloaded."""
    t0 = time.perf_counter()
    try:
        import chromadb
        from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    except ImportError as exc:
        raise _Skip(
            f"chromadb not installed ({exc}); see benchmarks/requirements-peers.txt"
        ) from None
    from sentence_transformers import SentenceTransformer

    import_s = time.perf_counter() - t0
    model_dir = spec["model_dir"]

    class LocalST(EmbeddingFunction[Documents]):
        def __init__(self, path: str) -> None:
            self.path = path
            self.model = SentenceTransformer(path, device="cpu")

        def __call__(self, input: Documents) -> Embeddings:
            vecs = self.model.encode(
                list(input), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
            )
            return list(vecs)

        @staticmethod
        def name() -> str:
            return "semsearch-bench-local-st"

        def get_config(self) -> dict[str, Any]:
            return {"path": self.path}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> LocalST:
            return LocalST(config["path"])

    client = chromadb.PersistentClient(
        path=str(work / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    col = client.create_collection(
        "bench",
        embedding_function=LocalST(model_dir),  # type: ignore[arg-type]
        configuration={"hnsw": {"space": "cosine"}},
    )
    batch = min(1024, client.get_max_batch_size())
    chunks = spec["chunks"]
    for s in range(0, len(chunks), batch):
        part = chunks[s : s + batch]
        col.add(ids=[c[0] for c in part], documents=[c[1] for c in part])
    build_s = time.perf_counter() - t0  # from process start: imports count
    k = spec["k"]
    query_s, ranked = _timed_queries(
        lambda q: list(col.query(query_texts=[q], n_results=k)["ids"][0]), spec["queries"]
    )
    return {
        "import_s": import_s,
        "build_s": build_s,
        "query_s": query_s,
        "indexed": int(col.count()),
        "ranked": ranked,
        "engine": "sentence-transformers fp32 (custom EF), HNSW cosine",
    }


_CHILDREN: dict[str, Callable[[dict[str, Any], Path], dict[str, Any]]] = {
    "st-faiss": _child_st_faiss,
    "txtai": _child_txtai,
    "chromadb": _child_chromadb,
}


def _child_main(argv: list[str]) -> int:
    name, spec_path, result_path, work = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        base, _, precision = name.partition("-")
        if base == BASELINE:
            res = _child_semsearch(spec, Path(work), precision or None)
        elif name in _CHILDREN:
            res = _CHILDREN[name](spec, Path(work))
        else:
            raise _Skip(f"unknown system (known: {', '.join(SYSTEMS)})")
        res["peak_rss_mb"] = peak_rss_mb()
    except _Skip as skip:
        res = {"skipped": str(skip)}
    Path(result_path).write_text(json.dumps(res), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
