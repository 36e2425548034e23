"""Distributed builds on Ray: the same chunks and vectors as ``LocalEngine``, made by a pool of
actors spread over a cluster. The builder still writes the index; this engine only feeds it.

Why it is built this way:

* The unit of work is a *shard*, a contiguous run of ``batch_size`` items, and each shard is
  one Ray Data row. A shard is therefore also the unit of retry: a worker process that dies
  mid-shard is restarted and the whole shard runs again, so nothing half-done is ever read.
* The workers are a Ray Data actor pool (``map_batches`` with a callable class) whose actors
  load the model once each and keep it, with ``num_cpus`` per actor sized to the nodes.
* A worker hands a shard back as ``.npy`` vectors plus JSON lines of chunk rows, never pickle.
  Where every node shares the driver's filesystem (one machine, or ``shard_dir`` on a shared
  mount) the shard is written as files there, atomically, and only its number travels; on
  any other cluster the same bytes come back through Ray's object store, which always works.
  The driver puts shards back in input order, so results arrive as ``LocalEngine``'s do.
* Actors embed through the driver's embedding cache file (on the same machine, or a shared
  mount; elsewhere the cache quietly switches itself off), so re-indexing on Ray skips texts
  already embedded, as a local build does. Their ONNX Runtime and torch thread pools are
  capped to the CPUs Ray gave them, so actors on one node do not oversubscribe it.
* Ray's own log lines (token authentication, actor restart advice) stay out of the user's
  terminal unless ``verbose``; failures still arrive as one exception.
* Paths are read on the workers, so on a multi-machine cluster the corpus must be at the same
  path on every node. A file the driver sees but a worker does not is an error, never a silent
  skip. ``Document`` items (raw texts) travel inside their shard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import Embedder, load_embedder
from ..errors import MissingDependencyError, ModelError, SemsearchError, UsageError
from ..ingest.document import Document
from ..store.records import ChunkRow
from ..util import first_line
from .engine import Engine, EngineCounts, Processed
from .ray_logs import ray_log_lines_hidden as _ray_log_lines_hidden
from .ray_worker import ShardWorker
from .settings import ChunkParams, Item

__all__ = ["RayEngine", "ShardWorker"]

log = logging.getLogger("semsearch")

#: Items per shard: one unit of work, of retry and of one embedding call.
DEFAULT_BATCH = 64
#: Times a dead worker is restarted and its shard retried before the build fails.
DEFAULT_RETRIES = 3
#: Ray Data settings changed for the duration of a build: no progress bars or banners.
_QUIET = {"enable_progress_bars": False, "print_on_execution_start": False}


def import_ray() -> Any:
    """Ray with Ray Data, or the one-line install hint."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None
    return ray


class RayBuildError(SemsearchError):
    """The Ray job failed (a shard failed after its retries, or the cluster went away)."""


class RayEngine(Engine):
    """Chunks and embeds on a Ray cluster; yields exactly what ``LocalEngine`` would.

    ``address``: None starts Ray's own local instance in this process (or reuses the one this
    process runs), never a cluster that someone else started on the machine; ``"auto"`` joins
    the cluster this machine belongs to; ``"ray://head:10001"`` connects as a client.
    ``num_workers``: actors (default: as many as fit, each with as many CPUs as the smallest
    node, so one per node on a uniform cluster). ``batch_size``: items per shard. ``shard_dir``:
    where workers write shard files; it must be the same shared path on every node. Without it,
    a one-machine cluster uses a temporary directory and a multi-machine one returns shards
    through the object store. ``make_embedder``: how a worker gets its embedder (picklable;
    default ``load_embedder(model)``). ``expect``: the ``(name, precision, dim)`` the index is
    built with; a worker whose embedder differs fails the build instead of mixing vectors.
    ``embedding_cache``: the cache file actors look vectors up in and add them to (None: no
    cache). ``verbose``: let Ray's own warnings and error logs through [default: when the
    ``semsearch`` logger shows DEBUG, as ``--verbose`` sets it].
    """

    #: The actor class; a subclass can be set here (tests use one that crashes on cue).
    worker_class: type[ShardWorker] = ShardWorker

    def __init__(
        self,
        model: str | None,
        *,
        address: str | None = None,
        num_workers: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        shard_dir: Path | None = None,
        retries: int = DEFAULT_RETRIES,
        make_embedder: Callable[[], Embedder] | None = None,
        expect: tuple[str, str, int] | None = None,
        embedding_cache: Path | None = None,
        verbose: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers is not None and num_workers < 1:
            raise UsageError(f"num_workers must be at least 1, got {num_workers}")
        if retries < 0:
            raise UsageError(f"retries must be 0 or more, got {retries}")
        self.ray = import_ray()
        self.model = model
        self.address = address
        self.num_workers = num_workers
        self.batch_size = batch_size
        self.shard_dir = Path(shard_dir) if shard_dir is not None else None
        self.retries = retries
        self.make_embedder = make_embedder or functools.partial(load_embedder, model)
        self.expect = expect
        self.embedding_cache = embedding_cache
        self.verbose = log.isEnabledFor(logging.DEBUG) if verbose is None else verbose
        self.counts = EngineCounts()
        self._started_ray = False

    # --- cluster -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Join or start Ray once; quiet, no dashboard, worker logs kept out of our output."""
        ray = self.ray
        if ray.is_initialized():
            return
        level = logging.WARNING if self.verbose else logging.CRITICAL
        kwargs: dict[str, Any] = {"log_to_driver": self.verbose, "logging_level": level}
        if self.address is None:
            kwargs["include_dashboard"] = False
            self._started_ray = True
        elif self.address.startswith("ray://"):
            kwargs = {}  # a client passes other arguments on to the server, with a warning
            _require_ray_client()
        try:
            # "local": Ray's None would join the newest cluster started on this machine.
            ray.init(address=self.address or "local", **kwargs)
        except ValueError as exc:  # Ray's own "requires pip package `ray[client]`"
            if "ray[client]" in str(exc):
                raise _missing_client() from None
            raise UsageError(f"cannot use Ray at {self.address!r}: {first_line(exc)}") from None
        except ConnectionError as exc:
            raise SemsearchError(
                f"cannot connect to Ray at {self.address}: {first_line(exc)}"
            ) from None
        except Exception as exc:  # e.g. a local node that did not start in time under load
            self._started_ray = False
            raise RayBuildError(f"cannot start or reach Ray: {first_line(exc)}") from None

    def close(self) -> None:
        """Stop Ray if this engine started it (a cluster it joined is left running)."""
        if self._started_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._started_ray = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0)]

    def _pool(self, shards: int) -> tuple[int, int]:
        """(actors, CPUs per actor). By default actors as big as the smallest node, as many as
        fit (one per node on a uniform cluster); never more than fit, so none waits forever."""
        cpus = [int(n["Resources"]["CPU"]) for n in self._nodes()]
        if not cpus or max(cpus) < 1:
            raise RayBuildError("the Ray cluster has no CPUs to run workers on")
        per = max(1, min(c for c in cpus if c >= 1))
        if self.num_workers is not None:
            per = max(1, min(per, sum(cpus) // self.num_workers))
        fit = sum(c // per for c in cpus)
        return max(1, min(self.num_workers or fit, fit, shards)), per

    def _shared_fs(self) -> bool:
        """Whether workers can write files the driver reads: true when every node is here."""
        if self.shard_dir is not None:
            return True
        here = self.ray.util.get_node_ip_address()
        return all(n["NodeManagerAddress"] == here for n in self._nodes())

    # --- building ----------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Re-deriving damaged vectors is rare and small: done here, with a local model."""
        if not hasattr(self, "_local"):
            self._local = self.make_embedder()
        self.counts.embedded += len(texts)
        return self._local.encode(list(texts))

    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        items = list(items)
        if not items:
            return
        self.connect()
        shards = [items[a : a + self.batch_size] for a in range(0, len(items), self.batch_size)]
        out_dir = None
        if self._shared_fs():
            if self.shard_dir is not None:
                self.shard_dir.mkdir(parents=True, exist_ok=True)
            out_dir = Path(tempfile.mkdtemp(prefix="semsearch-shards-", dir=self.shard_dir))
        try:
            with _settings(self.ray, self.retries), _ray_log_lines_hidden(not self.verbose):
                rows = self._dataset(shards, params, out_dir).iter_rows()
                yield from self._in_order(rows, shards, out_dir)
        except Exception as exc:
            if not _from_ray(exc):
                raise
            reason = _reason(exc)
            if isinstance(exc, self.ray.exceptions.RayActorError):
                reason += f" (a worker process died; shards are retried {self.retries} times)"
            raise RayBuildError(f"Ray build failed: {reason}") from exc
        finally:
            if out_dir is not None:
                shutil.rmtree(out_dir, ignore_errors=True)

    def _dataset(self, shards: list[list[Item]], params: ChunkParams, out_dir: Path | None) -> Any:
        workers, cpus = self._pool(len(shards))
        table = [
            {"shard": k, "items": json.dumps([_describe(i) for i in s])}
            for k, s in enumerate(shards)
        ]
        ds = self.ray.data.from_items(table, override_num_blocks=len(table))
        with warnings.catch_warnings():  # the only way to bound restarts; deprecated from 2.5x
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            return ds.map_batches(
                self.worker_class,
                fn_constructor_kwargs={
                    "make_embedder": self.make_embedder,
                    "chunk_tokens": params.chunk_tokens,
                    "overlap": params.overlap,
                    "out_dir": str(out_dir) if out_dir else None,
                    "threads": cpus,
                    "cache": str(self.embedding_cache) if self.embedding_cache else None,
                },
                batch_size=1,
                batch_format="numpy",
                compute=self.ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus,
                # Ray Data's default restarts a worker that crashes on every try forever.
                max_restarts=self.retries,
                max_task_retries=self.retries,
            )

    def _in_order(
        self, rows: Iterator[Mapping[str, Any]], shards: list[list[Item]], out_dir: Path | None
    ) -> Iterator[Processed | None]:
        """Hold shards that finish early until every shard before them has been yielded."""
        done: dict[int, Mapping[str, Any]] = {}
        following = 0
        for row in rows:
            done[int(row["shard"])] = row
            while following in done:
                vectors, lines = _load(done.pop(following), following, out_dir)
                yield from self._results(shards[following], vectors, lines)
                following += 1
        if following != len(shards):
            raise RayBuildError(f"Ray returned {following} of {len(shards)} shards")

    def _results(
        self, items: list[Item], vectors: np.ndarray, lines: list[str]
    ) -> Iterator[Processed | None]:
        if len(lines) != len(items) + 1:
            raise RayBuildError(f"a shard came back with {len(lines) - 1} of {len(items)} items")
        head = json.loads(lines[0])
        model = tuple(head["model"])
        if self.expect is not None and model != tuple(self.expect):
            raise ModelError(f"a Ray worker embeds with {model}, the index needs {self.expect}")
        pos = 0
        for item, line in zip(items, lines[1:], strict=True):
            record = json.loads(line)
            if "skip" in record:
                if record["skip"] == "missing" and Path(item).exists():  # type: ignore[arg-type]
                    raise UsageError(
                        f"{item} is not visible to a Ray worker: files to index must be on a "
                        "filesystem every node mounts at the same path"
                    )
                log.warning("skipping %s: binary, unreadable or gone", item)
                self.counts.skipped.append(str(item))
                yield None
                continue
            rows = [ChunkRow(-1, -1, *r) for r in record["rows"]]
            if isinstance(item, Document):
                doc = dataclasses.replace(item, text="")
            else:  # named as LocalEngine names it, whatever the worker's working directory
                stat = tuple(record["stat"]) if record.get("stat") else None
                doc = Document(
                    str(item), str(item), "", record["sha256"], record.get("meta"),
                    title=record.get("title", ""), kind=record.get("kind", "text"),
                    stat=stat,  # type: ignore[arg-type]
                )  # fmt: skip
            yield Processed(doc, rows, vectors[pos : pos + len(rows)])
            pos += len(rows)
        if pos != len(vectors):
            raise RayBuildError(f"a shard came back with {len(vectors)} vectors for {pos} chunks")
        hits = int(head.get("cache_hits", 0))
        self.counts.embedded += pos - hits
        self.counts.cache_hits += hits


def _describe(item: Item) -> dict[str, str]:
    if isinstance(item, Document):
        return {
            "doc_id": item.doc_id,
            "source": item.source,
            "text": item.text,
            "sha256": item.sha256,
            "sections": json.dumps([list(s) for s in item.sections]),
        }
    return {"path": os.path.abspath(item)}


def _load(row: Mapping[str, Any], shard: int, out_dir: Path | None) -> tuple[np.ndarray, list[str]]:
    """A shard's vectors and JSON lines, from the object store or from its files (then removed)."""
    if out_dir is None:
        vectors = np.load(io.BytesIO(row["vectors"]), allow_pickle=False)
        text = str(row["rows"])
    else:
        npy, jsonl = out_dir / f"{shard:08d}.npy", out_dir / f"{shard:08d}.jsonl"
        try:
            vectors = np.load(npy, allow_pickle=False)
            text = jsonl.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RayBuildError(
                f"shard file {npy} is missing: shard_dir must be one filesystem shared by "
                "every node (or leave it unset to return shards through the object store)"
            ) from None
        npy.unlink()
        jsonl.unlink()
    return vectors, text.split("\n") if text else []


@contextlib.contextmanager
def _settings(ray: Any, retries: int) -> Iterator[None]:
    """Ray Data quiet and retrying for one build, then put back as it was."""
    wanted = {**_QUIET, "max_consecutive_actor_init_deaths": retries}
    context = ray.data.DataContext.get_current()
    saved = {k: getattr(context, k) for k in wanted if hasattr(context, k)}
    logger = logging.getLogger("ray.data")
    level = logger.level
    try:
        for k in saved:
            setattr(context, k, wanted[k])
        logger.setLevel(logging.CRITICAL)  # failures reach the caller as one exception instead
        yield
    finally:
        for k, v in saved.items():
            setattr(context, k, v)
        logger.setLevel(level)


def _from_ray(exc: BaseException) -> bool:
    return any(t.__module__.startswith("ray.") for t in type(exc).__mro__)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.+)$")


def _reason(exc: BaseException) -> str:
    """One line for a Ray failure: the worker's own exception when the traceback names one.

    Ray hands the worker's exception back only as text inside its own wrapper types.
    """
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    errors = [m for m in map(_ERROR_LINE.match, lines) if m and not m[1].startswith("ray.")]
    if errors:
        return f"{errors[-1][1].rsplit('.', 1)[-1]}: {errors[-1][2]}"[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _missing_client() -> MissingDependencyError:
    return MissingDependencyError(
        "the Ray client (needed for ray:// addresses)", package="'ray[client]'"
    )


def _require_ray_client() -> None:
    """A ``ray://`` address needs Ray's client extra (gRPC); say so before Ray does it in a
    traceback."""
    try:
        import grpc  # noqa: F401
        import ray.util.client  # noqa: F401
    except ImportError:
        raise _missing_client() from None
