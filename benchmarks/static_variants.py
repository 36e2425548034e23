"""Static models distilled with other options, for ``benchmarks/static_quality.py`` to score.

``python -m benchmarks.static_variants teacher OUT``
    model2vec's teacher pass over the bundled model's vocabulary, once (timed): the token
    vectors before PCA and weighting, saved as ``OUT/raw_base.npy``.
``python -m benchmarks.static_variants post OUT``
    From them, one static model directory per PCA dimensions (256, 128, none) x SIF
    coefficient (1e-4, 1e-3, 1e-5, no weighting), plus the shipped options in float32;
    exactly what ``model2vec.distill`` does after its teacher pass (the shipped options give
    the installed table bit for bit).
``python -m benchmarks.static_variants words OUT NAME (--corpus DIR [--max N] | --list FILE)``
    A vocabulary: the words a BEIR collection's chunks repeat (at least twice, the ``N`` most
    frequent) or those of a word list, lower-case letters only, that the teacher's WordPiece
    vocabulary splits; written to ``OUT/words_NAME.txt``.
``python -m benchmarks.static_variants vocab OUT NAME...``
    A static model with each vocabulary added (model2vec's ``vocabulary=``): the teacher runs
    on the added words only (timed); the base tokens' vectors come from ``raw_base.npy``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

UNUSED = re.compile(r"\[unused\d+\]")
WORD = re.compile(r"^[a-z]{3,}$")
MAX_TOKENS = 254


def _teacher() -> tuple[str, str, Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from skeletoken import TokenizerModel
    from transformers import AutoModel, AutoTokenizer

    from semsearch.embed.load import resolve_model
    from semsearch.embed.models import STATIC_TEACHER

    identity, location = resolve_model(STATIC_TEACHER)
    tok = AutoTokenizer.from_pretrained(location)
    base = TokenizerModel.from_transformers_tokenizer(tok).prune_added_tokens()
    return identity, location, AutoModel.from_pretrained(location), base


def _embed(model: Any, base: Any, tokens: list[str]) -> np.ndarray:
    from model2vec.distill.inference import create_embeddings
    from model2vec.tokenizer import turn_tokens_into_ids
    from skeletoken.external.transformers import reshape_embeddings

    model = reshape_embeddings(model, base)
    ids = turn_tokens_into_ids(tokens, base)
    return create_embeddings(tokenized=ids, model=model, device="cpu",
                             pad_token_id=base.pad_token_id or 0, pooling="mean")  # fmt: skip


def _write(out: Path, name: str, raw: np.ndarray, tokenizer_json: str, pca: Any, sif: Any,
           dtype: Any, seconds: float) -> None:  # fmt: skip
    from model2vec.distill.inference import apply_pca, compute_weights

    from semsearch.embed.onnx_export import fingerprint
    from semsearch.embed.static_distill import Distilled, write_static

    identity, location = _identity()
    table = (apply_pca(raw.copy(), pca) * compute_weights(len(raw), sif)[:, None]).astype(dtype)
    write_static(out / name, Distilled(table.astype(np.float32), tokenizer_json),
                 teacher=identity, stamp=fingerprint(location), max_tokens=MAX_TOKENS,
                 seconds=seconds)  # fmt: skip
    size = (out / name / "vectors.npy").stat().st_size
    print(json.dumps({"variant": name, "mb": round(size / 1e6, 1)}), flush=True)


def _identity() -> tuple[str, str]:
    from semsearch.embed.load import resolve_model
    from semsearch.embed.models import STATIC_TEACHER

    return resolve_model(STATIC_TEACHER)


def _vocabulary(base: Any, words: list[str]) -> Any:
    from model2vec.tokenizer import clean_and_create_vocabulary

    return clean_and_create_vocabulary(base.deep_copy(), words, token_remove_regex=UNUSED)


def teacher(out: Path) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    _, _, model, base = _teacher()
    tokens = _vocabulary(base, []).sorted_vocabulary
    raw = _embed(model, base, tokens)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "raw_base.npy", raw, allow_pickle=False)
    print(json.dumps({"tokens": len(tokens), "wall_s": round(time.perf_counter() - started, 1),
                      "cpu_s": round(time.process_time() - cpu, 1),
                      "loadavg": round(os.getloadavg()[0], 1)}), flush=True)  # fmt: skip


def post(out: Path) -> None:
    _, _, _, base = _teacher()
    tokenizer_json = _vocabulary(base, []).to_tokenizer().to_str()
    raw = np.load(out / "raw_base.npy", allow_pickle=False)
    for pca in (256, 128, None):
        for sif in (1e-4, 1e-3, 1e-5, None):
            _write(out, f"base_pca{pca}_sif{sif}_f16", raw, tokenizer_json, pca, sif,
                   np.float16, 0.0)  # fmt: skip
    _write(out, "base_pca256_sif0.0001_f32", raw, tokenizer_json, 256, 1e-4, np.float32, 0.0)


def words(out: Path, name: str, corpus: Path | None, word_list: Path | None, most: int) -> None:
    from tokenizers import Tokenizer

    _, location = _identity()
    tok = Tokenizer.from_file(str(Path(location) / "tokenizer.json"))
    vocab, norm, pre = tok.get_vocab(), tok.normalizer, tok.pre_tokenizer
    counts: collections.Counter[str] = collections.Counter()
    if corpus is not None:
        from benchmarks.ranking_dump import open_cached

        cached = open_cached(corpus, "test", "static")  # held: it closes the store when freed
        view = cached.index.live.view
        assert view is not None
        for text in view.store.chunk_texts(0, view.store.count_chunks()):
            counts.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
        chosen = [w for w, n in counts.most_common() if n >= 2 and WORD.match(w)]
    else:
        assert word_list is not None
        lines = word_list.read_text(encoding="utf-8", errors="ignore").splitlines()
        chosen = list(dict.fromkeys(norm.normalize_str(w) for w in lines if w[:1].islower()))
    chosen = [w for w in chosen if WORD.match(w) and w not in vocab][: most or None]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"words_{name}.txt").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    print(json.dumps({"words": name, "count": len(chosen)}), flush=True)


def vocab(out: Path, names: list[str]) -> None:
    _, _, model, base = _teacher()
    base_tokens = _vocabulary(base, []).sorted_vocabulary
    raw_base = np.load(out / "raw_base.npy", allow_pickle=False)
    row = {t: i for i, t in enumerate(base_tokens)}
    for name in names:
        added = (out / f"words_{name}.txt").read_text(encoding="utf-8").split()
        tm = _vocabulary(base, added)
        tokens = tm.sorted_vocabulary
        new = [t for t in tokens if t not in row]
        started, cpu = time.perf_counter(), time.process_time()
        raw_new = _embed(model, base, new) if new else raw_base[:0]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        at = {t: i for i, t in enumerate(new)}
        raw = np.stack([raw_base[row[t]] if t in row else raw_new[at[t]] for t in tokens])
        print(json.dumps({"vocabulary": name, "added": len(new), "teacher_wall_s": round(wall, 1),
                          "teacher_cpu_s": round(cpu, 1),
                          "loadavg": round(os.getloadavg()[0], 1)}), flush=True)  # fmt: skip
        _write(out, f"{name}_pca256_sif0.0001_f16", raw, tm.to_tokenizer().to_str(), 256, 1e-4,
               np.float16, wall)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("teacher", "post"):
        sub.add_parser(cmd).add_argument("out", type=Path)
    wd = sub.add_parser("words")
    wd.add_argument("out", type=Path)
    wd.add_argument("name")
    wd.add_argument("--corpus", type=Path, default=None)
    wd.add_argument("--list", dest="word_list", type=Path, default=None)
    wd.add_argument("--max", type=int, default=10_000)
    vc = sub.add_parser("vocab")
    vc.add_argument("out", type=Path)
    vc.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    if args.cmd == "teacher":
        teacher(args.out)
    elif args.cmd == "post":
        post(args.out)
    elif args.cmd == "words":
        if (args.corpus is None) == (args.word_list is None):
            parser.error("give one of --corpus and --list")
        words(args.out, args.name, args.corpus, args.word_list, args.max)
    else:
        vocab(args.out, args.names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
