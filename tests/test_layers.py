"""The layer contract in pyproject.toml (cli/serve -> api -> ... -> embed) holds: no layer
imports one above it and the front ends reach the library only through ``semsearch.api``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO


def test_import_layers_hold() -> None:
    pytest.importorskip("importlinter", reason="pip install import-linter")
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_index_directory_names_are_spelled_only_in_store() -> None:
    """No code outside ``semsearch/store`` opens an index-directory file by name (as
    ``path / "CURRENT"`` once did in the CLI and the server): it asks the store."""
    import ast

    from semsearch.store import manifest

    names = {
        v for k, v in vars(manifest).items() if k.isupper() and isinstance(v, str) and v.strip()
    }
    assert {"CURRENT", "LOCK", "WATCH", "FRESH", "manifest.json"} <= names
    found = []
    for path in sorted((REPO / "semsearch").rglob("*.py")):
        if "store" in path.relative_to(REPO / "semsearch").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                if path.parent.name == "embed" and node.value == manifest.VECTORS:
                    continue  # a static model's own table file, not an index's
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, found
