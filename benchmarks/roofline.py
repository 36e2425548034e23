"""Embedding throughput beside the machine's limit.

The limit is this machine's fp32 GEMM rate, measured in the same run (numpy matmul), because a
BERT-like encoder is almost all matmuls: the achieved model FLOP/s divided by it says how much
faster any embedder could possibly get here. Several embedders can be measured side by side
on the same samples (whole documents and 200-token chunks), interleaved round by round so a
burst of load from another process hits every embedder alike. Beside the fp32 peak it measures
the int8 GEMM peak (ONNX Runtime's u8 x s8 MatMulInteger, the kernel int8 embedders use) and
profiles the int8 model by operator, which together say where the remaining time goes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import log, median, semsearch_model_arg, spread


class _Encoder(Protocol):
    def encode(self, texts: Sequence[str], *, kind: Any = "document") -> np.ndarray: ...


def gemm_gflops(n: int = 2048, repeat: int = 7) -> dict[str, Any]:
    """Median fp32 GFLOP/s of an ``n x n`` numpy matmul (and torch's, for information)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = {"n": n, "repeat": repeat, "numpy_gflops": _time_gemm(lambda: a @ b, n, repeat)}
    try:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch_gflops"] = _time_gemm(lambda: ta @ tb, n, repeat)
        out["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return out


def _time_gemm(
    fn: Callable[[], object], m: int, repeat: int, k: int | None = None, n: int | None = None
) -> float:
    """Median G(FL)OP/s of an ``m x k`` by ``k x n`` product (square when k, n are unset)."""
    fn()  # warm-up: thread pool start, page faults
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 2 * m * (k or m) * (n or m) / median(times) / 1e9


def read_config(model_dir: str) -> dict[str, Any]:
    """The transformer's ``config.json`` plus the sentence-transformers ``max_seq_length``."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    st = Path(model_dir) / "sentence_bert_config.json"
    if st.is_file():
        cfg["max_seq_length"] = json.loads(st.read_text(encoding="utf-8")).get("max_seq_length")
    return cfg


def matmul_params(cfg: dict[str, Any]) -> int:
    """Weights used in matmuls per token: Q, K, V, output projection and the two FFN layers."""
    h, i, n_layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return n_layers * (4 * h * h + 2 * h * i)


def encoder_flops(cfg: dict[str, Any], lengths: Sequence[int]) -> float:
    """FLOPs to encode sequences of these token lengths (padding excluded: it is not useful
    work): 2 per matmul weight per token, plus attention's QK^T and AV, 2*n*h each per token
    per layer. Embedding lookups, layer norms, softmax and pooling are a few percent; left out."""
    h, n_layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    lens = np.asarray(lengths, dtype=np.float64)
    return float(2 * matmul_params(cfg) * lens.sum() + 4 * n_layers * h * (lens**2).sum())


def token_lengths(model_dir: str, texts: Sequence[str], max_len: int | None) -> list[int]:
    """Tokens the model actually reads per text: with [CLS]/[SEP], truncated at ``max_len``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    lens = [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=True)]
    return [min(n, max_len) for n in lens] if max_len else lens


# --- embedders -----------------------------------------------------------------------------


def _st_fp32(model_dir: str) -> _Encoder:
    """semsearch's reference embedder; plain sentence-transformers if semsearch is missing."""
    try:
        from semsearch.embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model_dir)
    except ImportError:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_dir, device="cpu")

        class _Plain:
            def encode(self, texts: Sequence[str], *, kind: str = "document") -> np.ndarray:
                return model.encode(list(texts), batch_size=32, normalize_embeddings=True)

        return _Plain()


def _onnx(precision: str) -> Callable[[str], _Encoder]:
    def make(model_dir: str) -> _Encoder:
        from semsearch.embed import load_embedder

        return load_embedder(semsearch_model_arg(model_dir), precision, runtime="onnx")

    return make


def _onnx_int8(weight_bits: int) -> Callable[[str], _Encoder]:
    """int8 with a given weight width (the default export has 7 bits on every CPU)."""

    def make(model_dir: str) -> _Encoder:
        from semsearch import config
        from semsearch.embed import resolve_model
        from semsearch.embed.onnx_export import ensure_onnx
        from semsearch.embed.onnx_runtime import OnnxEmbedder

        identity, location = resolve_model(semsearch_model_arg(model_dir))
        cache = config.load().model_cache
        out = ensure_onnx(identity, location, "int8", cache, weight_bits=weight_bits)
        return OnnxEmbedder(model_dir=out)

    return make


#: name -> (factory, module that must be importable). Add new backends here.
EMBEDDERS: dict[str, tuple[Callable[[str], _Encoder], str]] = {
    "st-fp32": (_st_fp32, "sentence_transformers"),
    "onnx-fp32": (_onnx("fp32"), "semsearch.embed.onnx_runtime"),
    "onnx-int8": (_onnx("int8"), "semsearch.embed.onnx_runtime"),
    "onnx-int8-w7": (_onnx_int8(7), "semsearch.embed.onnx_runtime"),
    "onnx-int8-w8": (_onnx_int8(8), "semsearch.embed.onnx_runtime"),
}


def cpu_int8() -> dict[str, Any]:
    """The CPU's int8 dot-product flags and the widest int8 weights exact on it: every speed
    figure is only meaningful beside them."""
    try:
        from semsearch.embed.onnx_export import int8_dot_flags, int8_weight_bits
    except ImportError:
        return {}
    return {"int8_dot_flags": sorted(int8_dot_flags()), "exact_weight_bits": int8_weight_bits()}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def ort_gemm_peaks(m: int = 2048, repeat: int = 7, threads: int | None = None) -> dict[str, Any]:
    """GOP/s of ONNX Runtime's fp32 MatMul and int8 (u8 activations x s8 weights) MatMulInteger
    at the model's two GEMM shapes and a square one: the limits an fp32 and an int8 embedder
    run into on this CPU (an AVX2 CPU without VNNI has no 4x int8 instruction, a VNNI one has)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not importable"}
    rng = np.random.default_rng(0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or 0
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    out: dict[str, Any] = {"m": m, "repeat": repeat, "shapes": {}}
    for k, n in ((384, 1536), (1536, 384), (1024, 1024)):
        row = {}
        for name, op, x_type, w_type, x, w in (
            ("fp32", "MatMul", TensorProto.FLOAT, None,
             rng.standard_normal((m, k), dtype=np.float32),
             rng.standard_normal((k, n), dtype=np.float32)),
            ("int8", "MatMulInteger", TensorProto.UINT8, TensorProto.INT32,
             rng.integers(0, 255, (m, k), dtype=np.uint8),
             rng.integers(-63, 63, (k, n), dtype=np.int8)),
        ):  # fmt: skip
            graph = helper.make_graph(
                [helper.make_node(op, ["x", "w"], ["y"])],
                "gemm",
                [helper.make_tensor_value_info("x", x_type, [None, k])],
                [helper.make_tensor_value_info("y", w_type or TensorProto.FLOAT, None)],
                [numpy_helper.from_array(w, "w")],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            sess = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
            row[name] = _time_gemm(lambda s=sess, x=x: s.run(None, {"x": x}), m, repeat, k, n)
        row["int8_over_fp32"] = row["int8"] / row["fp32"]
        out["shapes"][f"{m}x{k}x{n}"] = row
    out["fp32_peak"] = max(r["fp32"] for r in out["shapes"].values())
    out["int8_peak"] = max(r["int8"] for r in out["shapes"].values())
    return out


def profile_operators(model_dir: Path, texts: Sequence[str], top: int = 12) -> dict[str, Any]:
    """Where an ONNX embedder's time goes: ONNX Runtime's own per-node profile, summed by
    operator type, for the same one-text-per-run calls ``OnnxEmbedder.encode`` makes."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    meta = json.loads((model_dir / "semsearch-onnx.json").read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=int(meta["max_seq_length"]))
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory(prefix="semsearch-profile-") as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(
            str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in sess.get_inputs()]
        for enc in tok.encode_batch(list(texts)):
            ids = np.asarray(enc.ids, dtype=np.int64)[None, :]
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.zeros_like(ids)}  # fmt: skip
            sess.run(None, {k: feed[k] for k in names})
        events = json.loads(Path(sess.end_profiling()).read_text(encoding="utf-8"))
    by_op: dict[str, float] = {}
    run_us = 0.0
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + float(e["dur"])
        elif e.get("cat") == "Session" and e.get("name") == "model_run":
            run_us += float(e["dur"])
    kernels = sum(by_op.values()) or 1.0
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])
    return {
        "texts": len(texts),
        "run_s": run_us / 1e6,
        "kernel_s": kernels / 1e6,
        "ops": [{"op": op, "share": us / kernels, "s": us / 1e6} for op, us in ranked[:top]],
    }


def _rates(dt: float, n: int, tokens: int, flops: float) -> dict[str, float]:
    return {"chunks_per_s": n / dt, "tokens_per_s": tokens / dt, "gflops": flops / dt / 1e9}


def measure_side_by_side(
    encoders: dict[str, _Encoder],
    texts: Sequence[str],
    lengths: Sequence[int],
    cfg: dict[str, Any],
    slices: int,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """Every embedder encodes the same ``slices`` interleaved parts of the sample, one after the
    other, ``rounds`` times; each reports the median rate over its parts. A burst of load from
    another process then spoils one part for one embedder, not the comparison."""
    parts = [list(range(s, len(texts), slices)) for s in range(slices)]
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in encoders}
    for r in range(rounds):
        for idx in parts:
            part = [texts[i] for i in idx]
            tokens = sum(lengths[i] for i in idx)
            flops = encoder_flops(cfg, [lengths[i] for i in idx])
            names = list(encoders) if r % 2 == 0 else list(encoders)[::-1]
            for name in names:
                t = time.perf_counter()
                encoders[name].encode(part, kind="document")
                rates[name].append(_rates(time.perf_counter() - t, len(part), tokens, flops))
    return {
        name: {
            key: median(x[key] for x in rs) for key in ("chunks_per_s", "tokens_per_s", "gflops")
        }
        | {"parts": len(rs)}
        for name, rs in rates.items()
    }


def run(
    samples: dict[str, Sequence[str]],
    model_dir: str,
    names: Sequence[str] = ("st-fp32", "onnx-fp32", "onnx-int8"),
    *,
    sample: int = 512,
    slices: int = 3,
    rounds: int = 3,
    gemm_repeat: int = 7,
    profile: int = 32,
) -> dict[str, Any]:
    """GEMM peaks, model FLOPs per token, and every embedder's rate on each named sample of
    texts (e.g. whole documents and chunks), measured side by side. The first sample is also
    reported at the top level, as earlier runs were."""
    cfg = read_config(model_dir)
    log(f"throughput: GEMM peaks ({gemm_repeat} repeats)")
    gemm_before = gemm_gflops(repeat=gemm_repeat)
    int8 = ort_gemm_peaks(m=2048 if rounds > 1 else 256, repeat=gemm_repeat)
    out: dict[str, Any] = {
        "model_dir": model_dir,
        "model": {
            "layers": cfg["num_hidden_layers"],
            "hidden": cfg["hidden_size"],
            "intermediate": cfg["intermediate_size"],
            "max_seq_length": cfg.get("max_seq_length"),
            "matmul_params": matmul_params(cfg),
            "flops_per_token_matmul": 2 * matmul_params(cfg),
        },
        "ort_gemm": int8,
        "cpu_int8": cpu_int8(),
        "samples": {},
        "skipped": {},
    }
    encoders: dict[str, _Encoder] = {}
    loads: dict[str, float] = {}
    for name in names:
        if name not in EMBEDDERS:
            out["skipped"][name] = f"unknown embedder (known: {', '.join(EMBEDDERS)})"
            continue
        factory, module = EMBEDDERS[name]
        if not _importable(module):
            out["skipped"][name] = f"{module} is not importable"
            continue
        try:
            t = time.perf_counter()
            enc = factory(model_dir)
            enc.encode(["warm-up"], kind="document")  # loads the model
            loads[name] = time.perf_counter() - t
        except Exception as exc:  # a broken optional backend is reported, not fatal
            out["skipped"][name] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            continue
        encoders[name] = enc
    for label, all_texts in samples.items():
        texts = spread(all_texts, sample)
        lengths = token_lengths(model_dir, texts, cfg.get("max_seq_length"))
        log(f"throughput: {', '.join(encoders)} on {len(texts)} {label}, side by side")
        for enc in encoders.values():  # full-batch warm-up
            enc.encode(texts[: min(32, len(texts))], kind="document")
        res = measure_side_by_side(encoders, texts, lengths, cfg, slices, rounds)
        for name in res:
            res[name]["load_s"] = loads[name]
        per_token = encoder_flops(cfg, lengths) / max(sum(lengths), 1)
        mean_len = float(np.mean(lengths)) if lengths else 0.0
        out["samples"][label] = {
            "sample": {"chunks": len(texts), "tokens": sum(lengths), "mean_tokens": mean_len},
            "flops_per_token": per_token,
            "embedders": res,
        }
    if profile and "onnx-int8" in encoders and samples:
        log(f"throughput: operator profile of onnx-int8 on {profile} texts")
        model_path = Path(getattr(encoders["onnx-int8"], "model_dir", ""))
        first = spread(next(iter(samples.values())), profile)
        with contextlib.suppress(Exception):  # the profile is information, not a result
            out["profile"] = profile_operators(model_path, first)
    del encoders
    gc.collect()
    gemm_after = gemm_gflops(repeat=gemm_repeat)
    # The peak is the better of the two medians: load from other processes only lowers it.
    peak = max(gemm_before["numpy_gflops"], gemm_after["numpy_gflops"])
    out["gemm"] = {"before": gemm_before, "after": gemm_after, "peak_gflops": peak}
    for s in out["samples"].values():
        per_token = s["flops_per_token"]
        s["roofline"] = {
            "gflops": peak,
            "tokens_per_s": peak * 1e9 / per_token if per_token else None,
            "chunks_per_s": peak * 1e9 / per_token / s["sample"]["mean_tokens"]
            if per_token and s["sample"]["mean_tokens"]
            else None,
        }
        base = s["embedders"].get("st-fp32", {}).get("tokens_per_s")
        for res in s["embedders"].values():
            res["roofline_fraction"] = res["gflops"] / peak
            if base:
                res["vs_st_fp32"] = res["tokens_per_s"] / base
    if out["samples"]:  # the layout earlier results had: the first sample at the top level
        first_sample = next(iter(out["samples"].values()))
        out.update({k: first_sample[k] for k in ("sample", "embedders", "roofline")})
        out["model"]["flops_per_token"] = first_sample["flops_per_token"]
    return out
