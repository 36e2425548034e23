"""The line-pattern splitter (``semsearch/ingest/code.py``) against tree-sitter grammars.

For every file of the benchmark's trees in a language both know, the definitions each one
finds (functions, methods, classes, modules, types; a definition nested in a function is
not counted, as the splitter leaves it in its parent), compared by simple name within each file:
how many of tree-sitter's the splitter finds (recall), how many of the splitter's are
tree-sitter's (precision), and the time each takes. Needs the per-language grammar wheels:

    pip install tree-sitter tree-sitter-go tree-sitter-ruby tree-sitter-php tree-sitter-bash \\
        tree-sitter-elixir tree-sitter-javascript tree-sitter-typescript tree-sitter-python
    python -m benchmarks.code.treesitter_compare [--only NAME] [--show 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.code.score import HERE, SOURCE_GLOBS, source_files

_GRAMMAR = {
    "go": ("tree_sitter_go", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "shell": ("tree_sitter_bash", "language"),
    "elixir": ("tree_sitter_elixir", "language"),
    "js": ("tree_sitter_javascript", "language"),
    "ts": ("tree_sitter_typescript", "language_typescript"),
    "python": ("tree_sitter_python", "language"),
}
#: Node types that are definitions, per grammar.
_DEFINITIONS = {
    "go": {"function_declaration", "method_declaration", "type_spec"},
    "ruby": {"method", "singleton_method", "class", "module"},
    "php": {"function_definition", "method_declaration", "class_declaration",
            "interface_declaration", "trait_declaration", "enum_declaration"},
    "shell": {"function_definition"},
    "js": {"function_declaration", "generator_function_declaration", "class_declaration",
           "method_definition"},
    "ts": {"function_declaration", "generator_function_declaration", "class_declaration",
           "abstract_class_declaration", "method_definition", "interface_declaration",
           "type_alias_declaration", "enum_declaration", "function_signature"},
    "python": {"function_definition", "class_definition"},
}  # fmt: skip
_FUNCTIONS = {"function_declaration", "method_declaration", "method", "singleton_method",
              "function_definition", "method_definition", "generator_function_declaration",
              "arrow_function", "function_expression", "function"}  # fmt: skip
_ELIXIR_DEFINERS = {"def", "defp", "defmacro", "defmacrop", "defmodule", "defprotocol",
                    "defimpl", "defguard", "defdelegate"}  # fmt: skip


def _parser(language: str) -> Any:
    import importlib

    import tree_sitter

    module, attr = _GRAMMAR[language]
    grammar = getattr(importlib.import_module(module), attr)()
    return tree_sitter.Parser(tree_sitter.Language(grammar))


def _name(node: Any) -> str | None:
    named = node.child_by_field_name("name")
    return named.text.decode("utf-8", "replace") if named is not None else None


def tree_definitions(root: Any, language: str) -> Iterator[tuple[str, int]]:
    """(simple name, first line) of each definition not nested in a function."""
    stack = [(root, False)]
    while stack:
        node, in_function = stack.pop()
        found: tuple[str, int] | None = None
        if language == "elixir" and node.type == "call":
            target = node.child_by_field_name("target")
            if target is not None and target.text.decode() in _ELIXIR_DEFINERS:
                args = next((c for c in node.children if c.type == "arguments"), None)
                if args is not None and args.named_children:
                    head = args.named_children[0]
                    if head.type in ("call", "binary_operator"):  # f(x) / f(x) when ...
                        head = head.child_by_field_name("target") or head.named_children[0]
                        if head.type == "call":
                            head = head.child_by_field_name("target") or head
                    name = head.text.decode("utf-8", "replace").split("(")[0]
                    found = (name, node.start_point[0])
        elif node.type in _DEFINITIONS.get(language, ()):
            name = _name(node)
            if name:
                found = (name, node.start_point[0])
        elif language in ("js", "ts") and node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            name = _name(node)
            if name and value is not None and value.type in _FUNCTIONS:
                found = (name, node.start_point[0])
        if found and not in_function:
            yield found
        inner = in_function or node.type in _FUNCTIONS
        if language == "elixir" and found is not None:
            definer = node.child_by_field_name("target").text.decode()
            inner = inner or definer not in ("defmodule", "defprotocol", "defimpl")
        stack.extend((c, inner) for c in reversed(node.children))


def main() -> int:
    from semsearch.ingest.code import definition_sections, language_of

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--show", type=int, default=0, help="print this many misses per tree")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    spec = json.loads((HERE / "queries.json").read_text())
    parsers: dict[str, Any] = {}
    rows = []
    for tree in spec["trees"]:
        if args.only and tree["name"] not in args.only:
            continue
        root = Path(tree["path"])
        if not root.is_dir():
            continue
        files = source_files(root, tree.get("globs", SOURCE_GLOBS))
        both = ts_n = re_n = 0
        ts_s = re_s = 0.0
        misses: list[str] = []
        extras: list[str] = []
        for f in files:
            data = f.read_bytes()
            text = data.decode("utf-8", "replace")
            language = language_of(f.name, data[:512])
            if language == "js" and f.suffix in (".ts", ".tsx"):
                language = "ts"
            if language not in _GRAMMAR:
                continue
            if language not in parsers:
                parsers[language] = _parser(language)
            t0 = time.perf_counter()
            ts_defs = set(tree_definitions(parsers[language].parse(data).root_node, language))
            ts_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            sections = definition_sections(text, f.name).sections
            re_s += time.perf_counter() - t0
            # Compared by simple name within the file (clauses and overloads count once).
            ts_names = {n.split(".")[-1].split("::")[-1] for n, _ in ts_defs}
            re_names = {s.heading.rsplit(".", 1)[-1].split("::")[-1] for s in sections}
            hit = ts_names & re_names
            both += len(hit)
            ts_n += len(ts_names)
            re_n += len(re_names)
            rel = f.relative_to(root).as_posix()
            misses += [f"{rel} {n}" for n in sorted(ts_names - hit)]
            extras += [f"{rel} {n}" for n in sorted(re_names - hit)]
        if not ts_n:
            continue
        row = {
            "tree": tree["name"], "files": len(files), "treesitter_defs": ts_n,
            "splitter_defs": re_n, "recall": both / ts_n, "precision": both / max(re_n, 1),
            "treesitter_ms": 1000 * ts_s, "splitter_ms": 1000 * re_s,
        }  # fmt: skip
        rows.append(row)
        print(f"{tree['name']:16} files {len(files):4}  tree-sitter {ts_n:5}  splitter {re_n:5}  "
              f"recall {row['recall']:.3f}  precision {row['precision']:.3f}  "
              f"parse {row['treesitter_ms']:7.1f} ms  splitter {row['splitter_ms']:7.1f} ms",
              flush=True)  # fmt: skip
        for m in misses[: args.show]:
            print("    missed", m)
        for m in extras[: args.show]:
            print("    extra ", m)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if rows:
        print(f"median recall {statistics.median(r['recall'] for r in rows):.3f}, precision "
              f"{statistics.median(r['precision'] for r in rows):.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
