"""Embedding throughput beside the machine's limit.

The limit is this machine's fp32 GEMM rate, measured in the same run (numpy matmul), because a
BERT-like encoder is almost all matmuls: the achieved model FLOP/s divided by it says how much
faster any embedder could possibly get here. Several embedders can be measured side by side
on the same sample; ONNX ones are registered only when ``semsearch.embed_onnx`` exists.
"""

from __future__ import annotations

import gc
import importlib.util
import json
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


def _time_gemm(fn: Callable[[], object], n: int, repeat: int) -> float:
    fn()  # warm-up: thread pool start, page faults
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / median(times) / 1e9


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
        from semsearch.embed.onnx_runtime import OnnxEmbedder  # type: ignore[import-not-found]

        return OnnxEmbedder(semsearch_model_arg(model_dir), precision=precision)

    return make


#: name -> (factory, module that must be importable). Add new backends here.
EMBEDDERS: dict[str, tuple[Callable[[str], _Encoder], str]] = {
    "st-fp32": (_st_fp32, "sentence_transformers"),
    "onnx-fp32": (_onnx("fp32"), "semsearch.embed_onnx"),
    "onnx-int8": (_onnx("int8"), "semsearch.embed_onnx"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def measure_embedder(
    encoder: _Encoder,
    texts: Sequence[str],
    lengths: Sequence[int],
    cfg: dict[str, Any],
    slices: int,
) -> dict[str, Any]:
    """Time ``slices`` interleaved parts of the sample and report the median rate of the parts,
    so a burst of load from another process spoils one part, not the result."""
    order = list(range(len(texts)))
    parts = [order[s::slices] for s in range(slices)]
    rates: list[dict[str, float]] = []
    for idx in parts:
        part = [texts[i] for i in idx]
        tokens = sum(lengths[i] for i in idx)
        flops = encoder_flops(cfg, [lengths[i] for i in idx])
        t = time.perf_counter()
        encoder.encode(part, kind="document")
        dt = time.perf_counter() - t
        rates.append(
            {
                "chunks_per_s": len(part) / dt,
                "tokens_per_s": tokens / dt,
                "gflops": flops / dt / 1e9,
            }
        )
    return {
        key: median(r[key] for r in rates) for key in ("chunks_per_s", "tokens_per_s", "gflops")
    } | {"slices": rates}


def run(
    texts: Sequence[str],
    model_dir: str,
    names: Sequence[str] = ("st-fp32", "onnx-fp32", "onnx-int8"),
    *,
    sample: int = 512,
    slices: int = 3,
    gemm_repeat: int = 7,
) -> dict[str, Any]:
    """GEMM peak, model FLOPs per token, and each embedder's rate on the same sample."""
    cfg = read_config(model_dir)
    texts = spread(texts, sample)
    lengths = token_lengths(model_dir, texts, cfg.get("max_seq_length"))
    mean_len = float(np.mean(lengths)) if lengths else 0.0
    per_token = encoder_flops(cfg, lengths) / max(sum(lengths), 1)
    log(f"throughput: GEMM peak ({gemm_repeat} repeats)")
    gemm_before = gemm_gflops(repeat=gemm_repeat)
    out: dict[str, Any] = {
        "model_dir": model_dir,
        "model": {
            "layers": cfg["num_hidden_layers"],
            "hidden": cfg["hidden_size"],
            "intermediate": cfg["intermediate_size"],
            "max_seq_length": cfg.get("max_seq_length"),
            "matmul_params": matmul_params(cfg),
            "flops_per_token_matmul": 2 * matmul_params(cfg),
            "flops_per_token": per_token,
        },
        "sample": {"chunks": len(texts), "tokens": sum(lengths), "mean_tokens": mean_len},
        "embedders": {},
        "skipped": {},
    }
    for name in names:
        if name not in EMBEDDERS:
            out["skipped"][name] = f"unknown embedder (known: {', '.join(EMBEDDERS)})"
            continue
        factory, module = EMBEDDERS[name]
        if not _importable(module):
            out["skipped"][name] = f"{module} is not importable"
            continue
        log(f"throughput: {name} on {len(texts)} chunks")
        try:
            t = time.perf_counter()
            enc = factory(model_dir)
            enc.encode(["warm-up"], kind="document")  # loads the model
            load_s = time.perf_counter() - t
            enc.encode(texts[: min(32, len(texts))], kind="document")  # full-batch warm-up
            res = measure_embedder(enc, texts, lengths, cfg, slices)
        except Exception as exc:  # a broken optional backend is reported, not fatal
            out["skipped"][name] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            continue
        res["load_s"] = load_s
        out["embedders"][name] = res
        del enc
        gc.collect()
    gemm_after = gemm_gflops(repeat=gemm_repeat)
    # The peak is the better of the two medians: load from other processes only lowers it.
    peak = max(gemm_before["numpy_gflops"], gemm_after["numpy_gflops"])
    out["gemm"] = {"before": gemm_before, "after": gemm_after, "peak_gflops": peak}
    out["roofline"] = {
        "gflops": peak,
        "tokens_per_s": peak * 1e9 / per_token if per_token else None,
        "chunks_per_s": peak * 1e9 / per_token / mean_len if per_token and mean_len else None,
    }
    for res in out["embedders"].values():
        res["roofline_fraction"] = res["gflops"] / peak
    return out
