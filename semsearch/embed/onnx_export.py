"""One-time export of a sentence-transformers model to ONNX (and its int8 quantisation).

Importing torch and sentence-transformers costs seconds, so a cold query would spend most of
its time before the model runs. The transformer is exported once (torch is imported only
here), cached per user, and afterwards :mod:`.onnx_runtime` needs onnxruntime, ``tokenizers``
and NumPy only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelError
from ..util import first_line, read_json, read_json_object, scratch_dir, write_atomic
from .base import check_precision

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "semsearch-onnx.json"
#: Bump when the exported files or their meta change meaning; older exports are redone.
FORMAT_VERSION = 2
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
#: Weight bits of int8 exports on every CPU. 8 bits are exact on VNNI CPUs and closer to fp32
#: (cosine 0.9952 vs 0.9939) but no faster and not better at retrieval (docs/speed.md), and
#: one width everywhere keeps vectors alike across a mixed Ray cluster.
INT8_WEIGHT_BITS = 7
#: /proc/cpuinfo flags of an int8 dot product with 32-bit sums (vpdpbusd, AMX TMUL).
_INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", TOKENIZER_FILE)


def import_onnxruntime() -> Any:
    """onnxruntime with its telemetry off. Left on, it writes a device id and an event
    database under ``~/.cache/Microsoft``; an offline tool writes nothing outside its own
    cache. The switch is read when the library loads, so it is set before the first import."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", package="onnxruntime") from None
    return onnxruntime


# --------------------------------------------------------------------------- cache layout


def model_cache_dir(identity: str, cache: Path) -> Path:
    """The folder under ``cache`` for everything made from model ``identity``: its ONNX
    exports and the static model distilled from it."""
    tail = identity.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._")[:48] or "model"
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return cache / f"{safe}-{digest}"


def int8_dot_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """This CPU's (or the given ``/proc/cpuinfo`` text's) int8 dot-product flags; none where
    cpuinfo cannot be read (not Linux), which keeps the safe 7-bit weights."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return frozenset(flags & _INT8_DOT_FLAGS)


def int8_weight_bits(cpuinfo: str | None = None) -> int:
    """The widest int8 weights that are exact on this CPU: 8 where it has an int8 dot-product
    instruction (AVX-512 VNNI, AVX-VNNI, AMX), whose 32-bit sums cannot saturate; 7 elsewhere,
    where u8 x s8 pair sums are 16-bit and full 8-bit weights can overflow them. Exports use
    :data:`INT8_WEIGHT_BITS` unless told otherwise (see docs/speed.md for why)."""
    return 8 if int8_dot_flags(cpuinfo) else 7


def onnx_model_dir(
    identity: str, precision: str, cache: Path, *, weight_bits: int | None = None
) -> Path:
    """Where the export of ``identity`` at ``precision`` lives under ``cache`` (it may not
    exist yet). int8 exports are keyed on their weight bits, so one cache holds both."""
    check_precision(precision)
    name = precision
    if precision == "int8" and (weight_bits or INT8_WEIGHT_BITS) == 8:
        name = "int8-w8"
    return model_cache_dir(identity, cache) / name


def ensure_onnx(
    identity: str, location: str, precision: str, cache: Path, *, weight_bits: int | None = None
) -> Path:
    """Return the cached export of a model, exporting it first if missing or stale."""
    bits = (weight_bits or INT8_WEIGHT_BITS) if precision == "int8" else None
    out = onnx_model_dir(identity, precision, cache, weight_bits=bits)
    stamp = fingerprint(location)
    expect: dict[str, Any] = {"weight_bits": bits} if bits == 8 else {}

    def make() -> None:
        if bits is not None:  # quantised from the fp32 export, made first if needed
            fp32 = onnx_model_dir(identity, "fp32", cache)
            if not _is_current(fp32, identity, stamp):
                export_onnx(location, fp32, "fp32", identity=identity)
            _quantize_dir(fp32, out, bits)
        else:
            export_onnx(location, out, "fp32", identity=identity)

    return ensure_cached(out, lambda: _is_current(out, identity, stamp, expect), make, "ONNX model")


def ensure_cached(
    out: Path, current: Callable[[], bool], make: Callable[[], None], what: str
) -> Path:
    """``out`` once ``current()``, calling ``make()`` first when it is not. A file lock makes
    concurrent first runs make it once; the others wait and reuse it."""
    if current():
        return out
    from filelock import FileLock  # only when something is made: not on a model load

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(out.parent / ".lock", preserve_lock_file=True):
            if not current():
                make()
    except OSError as exc:
        raise ModelError(f"cannot write the {what} cache {out}: {first_line(exc)}") from None
    return out


def _is_current(out: Path, identity: str, stamp: str, extra: dict[str, Any] | None = None) -> bool:
    expect = {"format": FORMAT_VERSION, "identity": identity, "fingerprint": stamp, **(extra or {})}
    return is_complete(out, META_FILE, expect, (MODEL_FILE, TOKENIZER_FILE))


def is_complete(out: Path, meta_file: str, expect: dict[str, Any], files: tuple[str, ...]) -> bool:
    """Whether the cached model in ``out`` is whole (its meta, written last, exists) and was
    made from what ``expect`` says (format version, source model, its fingerprint)."""
    meta = read_json_object(out / meta_file)
    return (
        meta is not None
        and all(meta.get(key) == value for key, value in expect.items())
        and all((out / name).is_file() for name in files)
    )


def fingerprint(location: str | Path) -> str:
    """Sizes and mtimes of the source files, so a changed local model is exported again."""
    base = Path(location)
    parts = []
    for name in _WEIGHT_FILES:
        with contextlib.suppress(OSError):
            st = (base / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- export


def export_onnx(
    location: str | Path,
    out_dir: str | Path,
    precision: str = "fp32",
    *,
    identity: str | None = None,
    weight_bits: int | None = None,
) -> Path:
    """Export the sentence-transformers model at ``location`` into ``out_dir`` and return it.

    Writes ``model.onnx`` (inputs ``input_ids``/``attention_mask``[/``token_type_ids``], output
    ``last_hidden_state``, dynamic batch and sequence axes), ``tokenizer.json`` and a meta JSON
    with pooling, ``max_seq_length``, ``dim``, prompts and the source identity. Files are
    replaced atomically; the meta is written last and marks the export complete.
    """
    check_precision(precision)
    out = Path(out_dir)
    ident = identity if identity is not None else str(location)
    if precision == "int8":
        # The fp32 export it starts from is staged in our cache, not the system's /tmp: a
        # killed export's ~90 MB is then removed by the next one.
        with scratch_dir(out.parent, "export-") as tmp:
            export_onnx(location, tmp, "fp32", identity=ident)
            _quantize_dir(tmp, out, weight_bits or INT8_WEIGHT_BITS)
        return out
    src = _local_dir(str(location))
    meta = _st_config(src)
    out.mkdir(parents=True, exist_ok=True)
    try:
        hf_meta = _torch_export(str(src), out / MODEL_FILE, out / TOKENIZER_FILE)
    except (ModelError, MissingDependencyError):
        raise
    except Exception as exc:  # any exporter failure becomes one line naming the model
        raise ModelError(f"cannot export model {ident!r} to ONNX: {first_line(exc)}") from None
    meta.update(hf_meta)
    meta.update(
        format=FORMAT_VERSION,
        identity=ident,
        fingerprint=fingerprint(location),
        precision="fp32",
    )
    if meta["max_seq_length"] is None:
        meta["max_seq_length"] = hf_meta["model_max_length"]
    meta["dim"] = meta["hidden_size"] * len(meta["pooling"])
    write_atomic(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
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
    modules = read_json(location / "modules.json")
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
    pool_cfg = read_json_object(location / pool_dir / "config.json") or {}
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
    bert_cfg = read_json_object(location / "sentence_bert_config.json") or {}
    st_cfg = read_json_object(location / "config_sentence_transformers.json") or {}
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
        "num_heads": int(getattr(cfg, "num_attention_heads", 0) or 0),
        "inputs": names,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "model_max_length": model_max,
    }


def _quantize_dir(fp32_dir: Path, out: Path, weight_bits: int = INT8_WEIGHT_BITS) -> None:
    """Fuse the transformer's graph, then int8 its weights per output channel.

    ONNX Runtime's BERT fusions (Attention, SkipLayerNormalization, BiasGelu,
    EmbedLayerNormalization) let the quantiser cover the Q/K/V projections too (QAttention)
    and cut the element-wise passes between the GEMMs. By default weights keep 7 bits
    (``reduce_range``): x86 CPUs without VNNI multiply u8 x s8 pairs into saturating 16-bit
    sums, which full 8-bit weights can overflow; with 7 bits the integer GEMM is exact on every
    x86 CPU (cosine to fp32 0.9934 instead of 0.9925 on SciFact chunks). VNNI sums into 32
    bits, so there ``weight_bits=8`` is exact too and closer to fp32 (0.9952 against 0.9939
    on SciFact abstracts). Activations are quantised at run time over one text at a time
    (``OnnxEmbedder.encode``), so no calibration data is needed and a text's vector never
    depends on what else is embedded with it.
    """
    import_onnxruntime()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    meta = read_json_object(fp32_dir / META_FILE)
    if meta is None:
        raise ModelError(f"{fp32_dir}: not an exported model")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{MODEL_FILE}.{os.getpid()}.tmp"
    fused = out / f".fused.{os.getpid()}.onnx"
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.ERROR)  # the optimiser and quantiser log advice through root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            heads = int(meta.get("num_heads") or 0)
            graph = optimize_model(
                str(fp32_dir / MODEL_FILE),
                model_type="bert",
                num_heads=heads,
                hidden_size=int(meta["hidden_size"]) if heads else 0,
                opt_level=0,
                use_gpu=False,
            )
            graph.save_model_to_file(str(fused))
            quantize_dynamic(
                fused,
                tmp,
                per_channel=True,
                reduce_range=weight_bits < 8,
                op_types_to_quantize=["MatMul", "Attention"],
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        tok_tmp = out / f".{TOKENIZER_FILE}.{os.getpid()}.tmp"
        shutil.copyfile(fp32_dir / TOKENIZER_FILE, tok_tmp)
        os.replace(tok_tmp, out / TOKENIZER_FILE)
        os.replace(tmp, out / MODEL_FILE)
    except Exception as exc:
        raise ModelError(f"cannot quantise {meta.get('identity')!r}: {first_line(exc)}") from None
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)
        fused.unlink(missing_ok=True)
    meta["precision"] = "int8"
    meta["weight_bits"] = weight_bits
    write_atomic(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
