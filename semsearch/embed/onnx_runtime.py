"""The fast path: the model run by ONNX Runtime with the fast tokenizer, no torch at all.

Pooling and normalisation are done in NumPy, mirroring sentence-transformers, so fp32 vectors
match the reference to ~1e-6. The model is exported once by :mod:`.onnx_export`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError, UsageError
from ..util import first_line, read_json_object, usable_cpus
from .base import Embedder, Kind, check_precision, normalize
from .models import resolve_model
from .onnx_export import (
    FORMAT_VERSION,
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ensure_onnx,
    import_onnxruntime,
)
from .onnx_lanes import Lanes
from .onnx_mapped import discard_mapped, ensure_mapped

#: Batches of at least this many tokens run on lanes (~0.3 s of work): below it, making the
#: lanes' sessions would cost more than they save, as for a search's best sentences.
LANE_TOKENS = 4096
#: One text of at most this many tokens (a query) runs on a one-thread session once one is
#: made (at the second such text, in a thread: a one-query process never makes it). Two
#: intra-op threads on so small a run wait on each other at every operator: one thread took
#: 0.88x the time of two for a 2-5 word query (docs/speed.md, "The query's encode").
QUERY_TOKENS = 64


class OnnxEmbedder(Embedder):
    """The reference model's vectors from ONNX Runtime: no torch at query time.

    ``name`` is the reference embedder's identity, so indexes built by either are
    interchangeable at fp32; ``precision`` tells caches fp32 and int8 vectors apart.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        precision: str = "fp32",
        model_dir: str | Path | None = None,
        model_cache: Path | None = None,
        threads: int | None = None,
    ) -> None:
        check_precision(precision)
        ort = import_onnxruntime()
        try:
            import tokenizers  # noqa: F401  (here, so a missing one is reported at once)
        except ImportError as exc:
            raise MissingDependencyError(
                exc.name or "onnxruntime", package=exc.name or "onnxruntime"
            ) from None
        if model_dir is None:
            if model_cache is None:
                raise UsageError("OnnxEmbedder needs model_dir or model_cache")
            identity, location = resolve_model(model)
            model_dir = ensure_onnx(identity, location, precision, model_cache)
        path = Path(model_dir)
        meta = read_json_object(path / META_FILE)
        if meta is None or meta.get("format") != FORMAT_VERSION:
            raise ModelError(f"{path}: not an ONNX export of this semsearch version")
        self.model_dir = path
        self.meta = meta
        self.name = str(meta["identity"])
        self.precision = str(meta["precision"])
        # Vectors of an older export format differ (int8 used to depend on the batch): they
        # must never be served from the cache for this one.
        # 8-bit weights (VNNI CPUs) give other int8 vectors than 7-bit ones.
        bits = "-w8" if meta.get("weight_bits") == 8 else ""
        self._cache_tag = f"{self.precision}-onnx{meta.get('format')}{bits}"
        self.dim = int(meta["dim"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.max_tokens = self.max_seq_length - 2
        self._prompts: dict[str, str] = dict(meta.get("prompts") or {})
        self._lower = bool(meta.get("do_lower_case", False))

        threads = threads or _cpu_count()
        # Creating the session (reading and optimising the graph) releases the GIL, so it
        # runs in a thread while the caller opens its index and the tokenizer loads;
        # the first encode waits for it (a cold query is ~0.08 s shorter on a quiet machine).
        # It is made from the copy whose weights ONNX Runtime maps (.onnx_mapped): a quarter
        # of the time, the same vectors.
        self._made = _Making(
            lambda: _new_session(ort, path / MODEL_FILE, _options(ort, threads), self.name)
        )

        # Batches run on one-thread sessions side by side (.onnx_lanes), made on first use.
        def lane() -> Any:
            return _new_session(ort, path / MODEL_FILE, _options(ort, 1), self.name)

        self._lanes = Lanes(lane, threads) if threads > 1 else None
        self._solo = _Later(lane) if threads > 1 else None

    @cached_property
    def _tok(self) -> Any:
        """The encoding tokenizer, loaded on first use. Its 30,522-entry vocabulary holds the
        GIL for ~20 ms: loaded as the session's thread starts, it kept that thread from its
        GIL-free part until done, and the first encode then waited for the session; loaded by
        the first encode, it runs while the session is being made (docs/front-door.md,
        stop 32)."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_seq_length)
        return tok

    @property
    def _session(self) -> Any:
        """The ONNX Runtime session, once the thread making it is done (its error, if any,
        is raised here, as :class:`ModelError`)."""
        return self._made.result()

    @cached_property
    def _inputs(self) -> list[str]:
        return [i.name for i in self._session.get_inputs()]

    @property
    def cache_tag(self) -> str:
        return self._cache_tag

    # -- encoding

    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = self._prompts.get(kind) or ""
        inputs = [prompt + t for t in texts] if prompt else list(texts)
        if self._lower:
            inputs = [t.lower() for t in inputs]
        encs = self._tok.encode_batch(inputs)
        skip = self._prompt_length(prompt) if prompt else 0
        out = np.empty((n, self.dim), dtype=np.float32)
        names = self._inputs

        # One text per run: nothing is padded, and int8 activation scales are taken over that
        # text alone, so its vector is bit-for-bit the same alone or in any batch (and with
        # any thread count). It is also faster here than padded batches: a 200-token text is
        # already a 200-row GEMM, and the ~0.2 ms per run is ~1% of it.
        def run_one(session: Any, i: int) -> None:
            enc = encs[i]
            ids = np.asarray(enc.ids, dtype=np.int64)[None, :]
            mask = np.ones_like(ids)
            feed = {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": np.asarray(enc.type_ids, dtype=np.int64)[None, :],
            }
            hidden = session.run(None, {k: feed[k] for k in names})[0]
            out[i] = self._pool(hidden, mask, skip)[0]

        costs = [len(e.ids) for e in encs]
        solo = None
        if n == 1 and costs[0] <= QUERY_TOKENS and self._solo is not None:
            solo = self._solo.get()
        if self._lanes is not None and sum(costs) >= LANE_TOKENS:
            self._lanes.run(costs, run_one)
        else:
            session = solo if solo is not None else self._session
            for i in range(n):
                run_one(session, i)
        return normalize(out)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray, skip: int) -> np.ndarray:
        """sentence-transformers' Pooling for right-padded batches, in numpy."""
        weights = mask.astype(np.float32)
        if skip:  # include_prompt=False: prompt tokens are not averaged
            weights[:, :skip] = 0.0
        parts = []
        for mode in self.meta["pooling"]:
            if mode == "cls":  # the first pooled token: [CLS], or the first after the prompt
                first = np.argmax(weights > 0, axis=1)
                parts.append(hidden[np.arange(len(hidden)), first])
            elif mode == "max":
                masked = np.where(weights[:, :, None] > 0, hidden, -np.inf)
                parts.append(masked.max(axis=1))
            else:
                total = np.einsum("bsd,bs->bd", hidden, weights)
                count = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
                parts.append(total / (count if mode == "mean" else np.sqrt(count)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _prompt_length(self, prompt: str) -> int:
        """Tokens the prompt occupies at the start (with [CLS]), when pooling must skip them."""
        if self.meta.get("include_prompt", True):
            return 0
        ids = self._tok.encode(prompt).ids
        special = self._special_ids
        return len(ids) - 1 if ids and ids[-1] in special else len(ids)

    @cached_property
    def _special_ids(self) -> set[int]:
        return {i for i, tok in self._tok.get_added_tokens_decoder().items() if tok.special}

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, exact up to the model's input length and capped at it above
        (the encoding tokenizer truncates): enough to tell a query that will be cut, without
        loading the untruncated tokenizer (~45 ms) on a search."""
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Exact counts from the encoding tokenizer when none reaches its cut (the usual
        query or unit), so a search never loads the untruncated one; else exact from it."""
        counts = self.count_tokens(texts)
        if max(counts, default=0) < self.max_tokens:
            return counts
        return super().token_counts(texts)

    # -- chunking support

    @cached_property
    def _span_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
        tok.no_truncation()
        tok.no_padding()
        return tok

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encs = self._span_tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encs]


def _options(ort: Any, threads: int) -> Any:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Spinning workers burn the CPU they wait on; on a busy 2-core box that made a batch
    # ~20% slower, and idle it costs little because each op is large.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _new_session(ort: Any, model: Path, opts: Any, name: str) -> Any:
    """A session of ``model``, made from its mapped copy when there is one (or it can be
    made), else (or when that fails) from the file itself."""
    error: Exception = FileNotFoundError(model)
    for path in dict.fromkeys((ensure_mapped(model), model)):
        try:
            return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            error = exc
            if path != model:  # a damaged copy: the next process makes it again
                discard_mapped(path)
    raise ModelError(f"cannot load ONNX model {name!r}: {first_line(error)}") from None


class _Making:
    """A value made by ``make`` in a thread of its own, started now; :meth:`result` waits
    for it and raises what ``make`` raised. The thread is not a daemon: a process that exits
    first waits for it rather than tearing the library down under it."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="semsearch-onnx-session")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._make()
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc

    def ready(self) -> Any:
        """The value when made, else (still making, or failed) None, without waiting."""
        if self._thread.is_alive() or self._error is not None:
            return None
        return self._value

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Later:
    """A value made by ``make`` in a thread of its own, started when :meth:`get` is asked the
    second time; until it is made (or if making it failed) :meth:`get` gives None."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._asked = 0
        self._making: _Making | None = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        making = self._making
        if making is None:
            with self._lock:
                self._asked += 1
                if self._asked == 2:
                    self._making = _Making(self._make)
            return None
        return making.ready()


#: Threads a new session uses when none are given; set by :func:`limit_threads`.
_thread_limit: int | None = None


def limit_threads(threads: int) -> None:
    """Cap the intra-op threads of ONNX sessions made from now on in this process, as
    ``torch.set_num_threads`` does for torch: a Ray actor given fewer CPUs than the machine has
    calls it, so actors sharing a node do not oversubscribe it. Vectors do not change."""
    global _thread_limit
    _thread_limit = max(1, int(threads))


def _cpu_count() -> int:
    if _thread_limit is not None:
        return _thread_limit
    return usable_cpus()
