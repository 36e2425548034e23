"""Fast path: the same model run by ONNX Runtime, without torch.

Importing torch and sentence-transformers costs seconds, so a cold query spends most of its
time before the model runs. Here the transformer is exported to ONNX once (torch is imported
only for that), cached per user, and afterwards a query needs onnxruntime, ``tokenizers`` and
numpy only. Pooling and normalisation are done in numpy, mirroring sentence-transformers, so
fp32 vectors match the reference to ~1e-6; ``int8`` trades ~0.5% cosine for ~2x throughput.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cache_dir
from .embed import Embedder, Kind, normalize, resolve_model
from .errors import MissingDependencyError, ModelError, UsageError

PRECISIONS = ("fp32", "int8")
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "semsearch-onnx.json"
#: Bump when the exported files or their meta change meaning; older exports are redone.
FORMAT_VERSION = 1
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
_LEGACY_POOLING_KEYS = {  # sentence-transformers' concatenation order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_ST_MODULES = {"Transformer", "Pooling", "Normalize"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", TOKENIZER_FILE)


# --------------------------------------------------------------------------- cache layout


def onnx_model_dir(identity: str, precision: str) -> Path:
    """Where the export of ``identity`` at ``precision`` is cached (it may not exist yet)."""
    _check_precision(precision)
    tail = identity.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._")[:48] or "model"
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    root = os.environ.get("SEMSEARCH_MODEL_CACHE")
    base = Path(root).expanduser() if root else cache_dir() / "onnx"
    return base / f"{safe}-{digest}" / precision


def ensure_onnx(identity: str, location: str, precision: str = "fp32") -> Path:
    """Return the cached export of a model, exporting it first if missing or stale.

    A file lock makes concurrent first runs export once; the others wait and reuse it.
    """
    out = onnx_model_dir(identity, precision)
    fingerprint = _fingerprint(location)
    if _is_current(out, identity, fingerprint):
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(out.parent / ".lock"):
            if _is_current(out, identity, fingerprint):
                return out
            if precision == "int8":  # quantised from the fp32 export, made first if needed
                fp32 = onnx_model_dir(identity, "fp32")
                if not _is_current(fp32, identity, fingerprint):
                    export_onnx(location, fp32, "fp32", identity=identity)
                _quantize_dir(fp32, out)
            else:
                export_onnx(location, out, "fp32", identity=identity)
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX model cache {out}: {_first_line(exc)}") from None
    return out


def _is_current(out: Path, identity: str, fingerprint: str) -> bool:
    meta = _read_json(out / META_FILE)
    return (
        meta is not None
        and meta.get("format") == FORMAT_VERSION
        and meta.get("identity") == identity
        and meta.get("fingerprint") == fingerprint
        and (out / MODEL_FILE).is_file()
        and (out / TOKENIZER_FILE).is_file()
    )


def _fingerprint(location: str | Path) -> str:
    """Sizes and mtimes of the source files, so a changed local model is exported again."""
    base = Path(location)
    parts = []
    for name in _WEIGHT_FILES:
        with contextlib.suppress(OSError):
            st = (base / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): exports still land atomically, maybe twice
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- export


def export_onnx(
    location: str | Path,
    out_dir: str | Path,
    precision: str = "fp32",
    *,
    identity: str | None = None,
) -> Path:
    """Export the sentence-transformers model at ``location`` into ``out_dir`` and return it.

    Writes ``model.onnx`` (inputs ``input_ids``/``attention_mask``[/``token_type_ids``], output
    ``last_hidden_state``, dynamic batch and sequence axes), ``tokenizer.json`` and a meta JSON
    with pooling, ``max_seq_length``, ``dim``, prompts and the source identity. Files are
    replaced atomically; the meta is written last and marks the export complete.
    """
    _check_precision(precision)
    out = Path(out_dir)
    ident = identity if identity is not None else str(location)
    if precision == "int8":
        with tempfile.TemporaryDirectory(prefix="semsearch-onnx-") as tmp:
            export_onnx(location, tmp, "fp32", identity=ident)
            _quantize_dir(Path(tmp), out)
        return out
    src = _local_dir(str(location))
    meta = _st_config(src)
    out.mkdir(parents=True, exist_ok=True)
    try:
        hf_meta = _torch_export(str(src), out / MODEL_FILE, out / TOKENIZER_FILE)
    except (ModelError, MissingDependencyError):
        raise
    except Exception as exc:  # any exporter failure becomes one line naming the model
        raise ModelError(f"cannot export model {ident!r} to ONNX: {_first_line(exc)}") from None
    meta.update(hf_meta)
    meta.update(
        format=FORMAT_VERSION,
        identity=ident,
        fingerprint=_fingerprint(location),
        precision="fp32",
    )
    if meta["max_seq_length"] is None:
        meta["max_seq_length"] = hf_meta["model_max_length"]
    meta["dim"] = meta["hidden_size"] * len(meta["pooling"])
    _write_atomic(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
    return out


def _local_dir(location: str) -> Path:
    """A model directory, or the Hugging Face cache snapshot of a hub name (never the network)."""
    path = Path(location)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelError(f"model {location!r}: not a model directory") from None
    for repo in (location, f"sentence-transformers/{location}"):
        with contextlib.suppress(Exception):
            return Path(snapshot_download(repo, local_files_only=True))
    raise ModelError(f"model {location!r}: not a directory and not in the Hugging Face cache")


def _st_config(location: Path) -> dict[str, Any]:
    """Read what sentence-transformers would apply around the transformer, without importing it."""
    modules = _read_json_any(location / "modules.json")
    pool_dir = "1_Pooling"
    if isinstance(modules, list):
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        extra = sorted(set(kinds) - _ST_MODULES)
        if extra:
            raise ModelError(
                f"model at {location}: modules {', '.join(extra)} are not supported by the ONNX "
                "backend (transformer + pooling only)"
            )
        pool_dir = next(
            (
                str(m.get("path", pool_dir))
                for m, k in zip(modules, kinds, strict=True)
                if k == "Pooling"
            ),
            pool_dir,
        )
    pool_cfg = _read_json(location / pool_dir / "config.json") or {}
    modes = pool_cfg.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if pool_cfg.get(key)]
    modes = [modes] if isinstance(modes, str) else list(modes or ["mean"])
    unsupported = [m for m in modes if m not in _POOLING_MODES]
    if unsupported:
        raise ModelError(
            f"model at {location}: pooling {', '.join(unsupported)} is not supported by the "
            "ONNX backend"
        )
    bert_cfg = _read_json(location / "sentence_bert_config.json") or {}
    st_cfg = _read_json(location / "config_sentence_transformers.json") or {}
    prompts = {k: v for k, v in (st_cfg.get("prompts") or {}).items() if isinstance(v, str) and v}
    max_len = bert_cfg.get("max_seq_length")
    return {
        "pooling": modes,
        "include_prompt": bool(pool_cfg.get("include_prompt", True)),
        "max_seq_length": int(max_len) if max_len is not None else None,
        "do_lower_case": bool(bert_cfg.get("do_lower_case", False)),
        "prompts": prompts,
    }


def _torch_export(location: str, model_path: Path, tokenizer_path: Path) -> dict[str, Any]:
    """Trace the HF model with torch.onnx and save its fast tokenizer; the only torch user."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelError(
            f"exporting a model to ONNX needs torch and transformers ({exc.name} is missing)"
        ) from None
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(location)
    # Eager attention traces to plain MatMul/Softmax, which ORT fuses and int8 quantises.
    model = AutoModel.from_pretrained(location, attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")

    class _Wrapper(torch.nn.Module):
        """Keyword call (transformers 5 wants keywords) returning only the token embeddings."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(names, tensors, strict=True))
            return self.inner(**kwargs, return_dict=True).last_hidden_state

    sample = tokenizer(
        ["a short sample", "a somewhat longer sample sentence for tracing"],
        padding=True,
        return_tensors="pt",
    )
    args = tuple(sample[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    tmp = model_path.with_name(f".{model_path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(model),
                args,
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter needs no onnxscript
            )
        src_tok = Path(location) / TOKENIZER_FILE
        tok_tmp = tokenizer_path.with_name(f".{tokenizer_path.name}.{os.getpid()}.tmp")
        if src_tok.is_file():
            shutil.copyfile(src_tok, tok_tmp)
        else:
            tokenizer.backend_tokenizer.save(str(tok_tmp))
        os.replace(tok_tmp, tokenizer_path)
        os.replace(tmp, model_path)
    finally:
        tmp.unlink(missing_ok=True)
    cfg = model.config
    max_pos = int(getattr(cfg, "max_position_embeddings", 512) or 512)
    model_max = int(min(getattr(tokenizer, "model_max_length", max_pos) or max_pos, max_pos))
    return {
        "hidden_size": int(cfg.hidden_size),
        "inputs": names,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "model_max_length": model_max,
    }


def _quantize_dir(fp32_dir: Path, out: Path) -> None:
    """Dynamic int8 of the MatMul weights, per output channel.

    Per-tensor scales drift to cosine ~0.94 on MiniLM; per-channel MatMul-only keeps ~0.995.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise MissingDependencyError("onnxruntime", "fast") from None
    meta = _read_json(fp32_dir / META_FILE)
    if meta is None:
        raise ModelError(f"{fp32_dir}: not an exported model")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{MODEL_FILE}.{os.getpid()}.tmp"
    try:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice through the root logger
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                fp32_dir / MODEL_FILE,
                tmp,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                weight_type=QuantType.QInt8,
            )
        tok_tmp = out / f".{TOKENIZER_FILE}.{os.getpid()}.tmp"
        shutil.copyfile(fp32_dir / TOKENIZER_FILE, tok_tmp)
        os.replace(tok_tmp, out / TOKENIZER_FILE)
        os.replace(tmp, out / MODEL_FILE)
    except Exception as exc:
        raise ModelError(f"cannot quantise {meta.get('identity')!r}: {_first_line(exc)}") from None
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)
    meta["precision"] = "int8"
    _write_atomic(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())


# --------------------------------------------------------------------------- embedder


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
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        _check_precision(precision)
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(exc.name or "onnxruntime", "fast") from None
        if model_dir is None:
            identity, location = resolve_model(model)
            model_dir = ensure_onnx(identity, location, precision)
        path = Path(model_dir)
        meta = _read_json(path / META_FILE)
        if meta is None or meta.get("format") != FORMAT_VERSION:
            raise ModelError(f"{path}: not an ONNX export of this semsearch version")
        self.model_dir = path
        self.meta = meta
        self.name = str(meta["identity"])
        self.precision = str(meta["precision"])
        self.dim = int(meta["dim"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.max_tokens = self.max_seq_length - 2
        self.batch_size = batch_size
        self._pad_id = int(meta.get("pad_id", 0))
        self._prompts: dict[str, str] = dict(meta.get("prompts") or {})
        self._lower = bool(meta.get("do_lower_case", False))

        self._tok = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=self.max_seq_length)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _cpu_count()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Spinning workers burn the CPU they wait on; on a busy 2-core box that made a batch
        # ~20% slower, and idle it costs little because each op is large.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(path / MODEL_FILE), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(f"cannot load ONNX model {self.name!r}: {_first_line(exc)}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]

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
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=n)
        skip = self._prompt_length(prompt) if prompt else 0
        # Longest first, so batches hold similar lengths and little padding.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = int(lengths[idx[0]])
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                enc = encs[i]
                k = len(enc.ids)
                ids[row, :k] = enc.ids
                types[row, :k] = enc.type_ids
                mask[row, :k] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self._session.run(None, {k: feed[k] for k in self._inputs})[0]
            out[idx] = self._pool(hidden, mask, skip)
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


# --------------------------------------------------------------------------- helpers


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _read_json_any(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    data = _read_json_any(path)
    return data if isinstance(data, dict) else None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
