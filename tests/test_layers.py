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
