"""Render ``results.json`` into ``results.md`` (one table per section) and PNG plots.

Kept apart from the measuring code so a report can be re-rendered, or rendered from a results
file measured elsewhere: ``python -m benchmarks.report benchmarks/results/results.json``.
Sections that are missing or failed are shown as such, never as a crash.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 1:
            return f"{x:.2f}"
        return f"{x:.3g}"
    return str(x).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _skipped(section: dict[str, Any]) -> list[str]:
    return [f"- {name}: skipped ({why})" for name, why in (section.get("skipped") or {}).items()]


def _failed(name: str, section: Any) -> str | None:
    if section is None:
        return f"_{name}: not run._"
    if isinstance(section, dict) and "error" in section:
        return f"_{name} failed: {fmt(section['error'])}_"
    if isinstance(section, dict) and isinstance(section.get("skipped"), str):
        return f"_{name} skipped: {fmt(section['skipped'])}_"
    return None


def _flatten(d: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    rows: list[list[Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            rows += _flatten(v, f"{prefix}{k}.")
        else:
            rows.append([f"{prefix}{k}", v])
    return rows


def render_meta(meta: dict[str, Any]) -> str:
    return "## Run\n\n" + table(["key", "value"], _flatten(meta))


def render_throughput(s: dict[str, Any]) -> str:
    m, gemm = s["model"], s["gemm"]
    samples = s.get("samples") or {"chunks": s}
    parts = ["## Embedding throughput"]
    for label, sample in samples.items():
        roof = sample["roofline"]
        rows = [
            [
                name,
                r["chunks_per_s"],
                r["tokens_per_s"],
                f"{r['vs_st_fp32']:.2f}x" if r.get("vs_st_fp32") else None,
                r["gflops"],
                f"{100 * r['roofline_fraction']:.1f}%",
                r.get("load_s"),
            ]
            for name, r in sample["embedders"].items()
        ]
        rows.append(
            ["fp32 GEMM roofline", roof["chunks_per_s"], roof["tokens_per_s"], None,
             roof["gflops"], "100%", None]
        )  # fmt: skip
        info = sample["sample"]
        parts.append(
            f"**{label}**: {fmt(info['chunks'])} texts, {fmt(info['tokens'])} tokens "
            f"(mean {fmt(info['mean_tokens'])} incl. [CLS]/[SEP]); medians of "
            f"{next(iter(sample['embedders'].values()), {}).get('parts', '?')} side-by-side parts."
        )
        parts.append(
            table(
                [
                    "embedder",
                    "texts/s",
                    "tokens/s",
                    "vs st-fp32",
                    "model GFLOP/s",
                    "of fp32 roofline",
                    "load s",
                ],
                rows,
            )
        )
    torch = gemm["before"].get("torch_gflops")
    notes = [
        f"Model: {m['layers']} layers, hidden {m['hidden']}, FFN {m['intermediate']}: "
        f"{m['matmul_params'] / 1e6:.2f} M matmul weights = "
        f"{m['flops_per_token_matmul'] / 1e6:.1f} MFLOP/token plus attention.",
        f"fp32 GEMM peak: {fmt(gemm['peak_gflops'])} GFLOP/s (numpy {gemm['before']['n']}², "
        f"median of {gemm['before']['repeat']}, best of before/after"
        + (f"; torch: {fmt(torch)} GFLOP/s" if torch else "")
        + ").",
        "load s = construct + first encode; for ONNX embedders it includes the one-time export "
        "when the model cache is cold.",
    ]
    ort_gemm = s.get("ort_gemm") or {}
    if "shapes" in ort_gemm:
        shapes = "; ".join(
            f"{shape}: fp32 {fmt(r['fp32'])}, int8 {fmt(r['int8'])} ({r['int8_over_fp32']:.2f}x)"
            for shape, r in ort_gemm["shapes"].items()
        )
        notes.append(f"ONNX Runtime GEMM GOP/s, M x K x N: {shapes}.")
    prof = s.get("profile")
    if prof:
        top = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in prof["ops"][:8])
        notes.append(f"onnx-int8 time by operator ({prof['texts']} texts, one per run): {top}.")
    parts.append("\n".join(f"- {n}" for n in notes))
    if s.get("skipped"):
        parts.append("\n".join(_skipped(s)))
    return "\n\n".join(parts)


def _prepare_note(prep: dict[str, Any] | None) -> list[str]:
    if not prep:
        return []
    if "error" in prep:
        return [f"- semsearch model preparation failed ({fmt(prep['error'])}); timed runs pay it."]
    return [
        f"- semsearch's one-time model preparation (ONNX export on first use, then cached per "
        f"user) ran before timing: {fmt(prep['seconds'])} s, not counted."
    ]


def render_cold(s: dict[str, Any]) -> str:
    w = s["wall_s"]
    rows = [[p, t] for p, t in s["split_s"].items()]
    return "\n\n".join(
        [
            "## Cold CLI latency",
            f"`{s['command']}` on the seeds index ({s['seed_chunks']} chunks, embedder "
            f"{s.get('embedder', '?')}): median "
            f"**{fmt(w['median'])} s** over {s['runs']} fresh processes "
            f"(min {fmt(w['min'])}, max {fmt(w['max'])}).",
            table(["phase (median, s)", "seconds"], rows),
            "\n".join(
                [
                    "- other = wall minus the split: interpreter start and exit, CLI parsing, "
                    "whatever the CLI does beyond load + search, and printing.",
                    *_prepare_note(s.get("model_prepare")),
                ]
            ),
        ]
    )


def render_peers(s: dict[str, Any]) -> str:
    rows = []
    for name, r in s["systems"].items():
        ratio = r.get("ratio") or {}
        rows.append(
            [
                name,
                r["build_s"],
                r["query_s"],
                r["peak_rss_mb"],
                *(
                    f"{ratio[m]:.2f}×" if ratio.get(m) else "–"
                    for m in ("build_s", "query_s", "peak_rss_mb")
                ),
                r.get("recall_at_k"),
                r.get("overlap_with_semsearch"),
                r.get("indexed"),
                r.get("engine"),
            ]
        )
    head = [
        "system",
        "build s",
        f"{s['queries']} queries s",
        "peak RSS MiB",
        "build ×",
        "query ×",
        "RSS ×",
        f"recall@{s['k']}",
        "top-k overlap",
        "rows",
        "engine",
    ]
    intro = (
        f"{fmt(s['documents'])} documents as {fmt(s['chunks'])} identical chunks, same model "
        "directory, each system in its own process. × = peer / semsearch: above 1 means the peer "
        "takes longer or uses more memory than semsearch."
    )
    notes = [f"- {name}: {r['note']}" for name, r in s["systems"].items() if r.get("note")]
    notes += _prepare_note(s.get("semsearch_model_prepare"))
    for name, r in s["systems"].items():
        if len(r.get("runs") or []) > 1:
            per_run = "; ".join(
                f"build {fmt(x['build_s'])} s, queries {fmt(x['query_s'])} s" for x in r["runs"]
            )
            notes.append(f"- {name} ran first and last (mean shown): {per_run}.")
    notes.append(
        "- Build = imports + model load + embed + index + write to disk, in a fresh process; "
        f"queries = one at a time, top-{s['k']}, median of 3 passes after a warm-up query. "
        "The plain script searches exactly (flat), txtai is set to exact flat faiss, "
        "chromadb uses HNSW (its only index); semsearch's index is in the engine column."
    )
    notes.append(
        "- On a loaded machine (Run: loadavg above the core count) single-query times are "
        "bimodal, ~6 ms or ~400 ms per query, depending on whether OpenMP threads wait at "
        "barriers behind other processes: trust build ratios more than query ratios there."
    )
    parts = ["## End-to-end build vs peers", intro, table(head, rows), "\n".join(notes)]
    if s.get("skipped"):
        parts.append("\n".join(_skipped(s)))
    return "\n\n".join(parts)


def render_generic(title: str, s: Any) -> str:
    """Tables for a section this module does not know (e.g. the index benchmark)."""
    parts = [f"## {title}"]
    scalars = [[k, v] for k, v in s.items() if not isinstance(v, dict | list)]
    if scalars:
        parts.append(table(["key", "value"], scalars))
    for k, v in s.items():
        rows = list(v.values()) if isinstance(v, dict) else v
        names = list(v.keys()) if isinstance(v, dict) else None
        if isinstance(v, dict | list) and rows and all(isinstance(r, dict) for r in rows):
            cols = [
                c
                for c in dict.fromkeys(c for r in rows for c in r)
                if all(not isinstance(r.get(c), dict | list) for r in rows)
            ]
            head = (["name"] if names else []) + cols
            body = [
                ([n] if names else []) + [r.get(c) for c in cols]
                for n, r in zip(names or [None] * len(rows), rows, strict=True)
            ]
            parts += [f"### {k}", table(head, body)]
        elif isinstance(v, dict) and v and all(not isinstance(x, dict | list) for x in v.values()):
            parts += [f"### {k}", table(["key", "value"], list(v.items()))]
    return "\n\n".join(parts)


_SECTIONS = (
    ("throughput", "Embedding throughput", render_throughput),
    ("index", "Index build, latency and recall", None),
    ("cold_cli", "Cold CLI latency", render_cold),
    ("peers", "End-to-end build vs peers", render_peers),
    ("incremental", "Incremental re-indexing (1,000 files)", None),
    ("ray", "Distributed build on Ray", None),
)


def render_markdown(results: dict[str, Any], plots: Sequence[Path] = ()) -> str:
    parts = ["# semsearch benchmarks", render_meta(results.get("meta", {}))]
    for key, title, fn in _SECTIONS:
        section = results.get(key)
        failed = _failed(title, section)
        if failed or section is None:
            parts += [f"## {title}", failed or ""]
            continue
        try:
            parts.append(fn(section) if fn else render_generic(title, section))
        except (KeyError, TypeError, ValueError) as exc:
            parts += [f"## {title}", f"_cannot render ({type(exc).__name__}: {exc})_"]
    known = {"meta", *(key for key, _, _ in _SECTIONS)}
    for key, section in results.items():
        if key in known:
            continue
        failed = _failed(key, section)
        parts.append(f"## {key}\n\n{failed}" if failed else render_generic(key, section))
    if plots:
        parts += ["## Plots", "\n\n".join(f"![{p.stem}]({p.name})" for p in plots)]
    return "\n\n".join(parts) + "\n"


# --- plots ---------------------------------------------------------------------------------


def plot_all(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the PNGs this module knows; each one is skipped when its section is missing."""
    try:
        import matplotlib
    except ImportError:
        print(
            "[report] matplotlib is not installed: numbers written, no plots "
            "(plots need: pip install 'semsearch[bench]')",
            file=sys.stderr,
        )
        return []
    matplotlib.use("Agg")
    made = []
    for key, fn in (
        ("throughput", _plot_throughput),
        ("cold_cli", _plot_cold),
        ("peers", _plot_peers),
    ):
        section = results.get(key)
        if section and not _failed(key, section):
            try:
                made.append(fn(section, out_dir / f"{key}.png"))
            except (KeyError, TypeError, ValueError) as exc:
                print(f"[report] no {key} plot: {exc}", file=sys.stderr)
    return [p for p in made if p is not None]


def _plot_throughput(s: dict[str, Any], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    names = list(s["embedders"])
    if not names:
        return None
    vals = [s["embedders"][n]["tokens_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(names, vals, color="tab:blue")
    for b, n in zip(bars, names, strict=True):
        frac = s["embedders"][n]["roofline_fraction"]
        ax.annotate(
            f"{100 * frac:.0f}% of fp32 roofline",
            (b.get_x() + b.get_width() / 2, b.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    roof = s["roofline"]["tokens_per_s"]
    ax.axhline(roof, color="tab:red", linestyle="--", label=f"GEMM roofline {roof:,.0f} tok/s")
    ax.set_ylabel("tokens / s")
    ax.set_title("Embedding throughput vs this machine's fp32 GEMM limit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_cold(s: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.4))
    left = 0.0
    for phase, t in s["split_s"].items():
        ax.barh(["semsearch query"], [t], left=left, label=f"{phase} {t:.2f}s")
        left += t
    ax.set_xlabel("seconds (medians)")
    ax.set_title(f"Cold CLI: median wall {s['wall_s']['median']:.2f} s")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _plot_peers(s: dict[str, Any], path: Path) -> Path | None:
    import matplotlib.pyplot as plt
    import numpy as np

    names = [n for n, r in s["systems"].items() if r.get("ratio")]
    if not names:
        return None
    metrics = ("build_s", "query_s", "peak_rss_mb")
    labels = {"build_s": "build time", "query_s": "query time", "peak_rss_mb": "peak RSS"}
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, m in enumerate(metrics):
        vals = [s["systems"][n]["ratio"][m] or 0 for n in names]
        ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=labels[m])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("ratio to semsearch")
    ax.set_title(f"Peers on {s['chunks']:,} chunks, {s['queries']} queries (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def render(results: dict[str, Any], out_dir: Path) -> Path:
    """Write the plots and ``results.md`` into ``out_dir``; returns the markdown's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_all(results, out_dir)
    known = {p.name for p in plots}
    for section in results.values():  # plots written by delegated sections
        extra = section.get("plots") if isinstance(section, dict) else None
        for p in extra if isinstance(extra, list) else []:
            if Path(p).name not in known and (out_dir / Path(p).name).is_file():
                plots.append(out_dir / Path(p).name)
                known.add(Path(p).name)
    md = out_dir / "results.md"
    md.write_text(render_markdown(results, plots), encoding="utf-8")
    return md


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "benchmarks/results/results.json")
    results = json.loads(path.read_text(encoding="utf-8"))
    print(render(results, path.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
