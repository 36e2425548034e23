"""The README cannot drift: every command it shows is run here, in README order, against a
small tree in a temporary home, and the sample output it prints is checked against what
prints. The two install commands are checked for their exact text (CI runs the second)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO, sigint_default
from .test_watch import _wait_for

README = REPO / "README.md"
QUICK_START = (
    "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt . "
    '&& .venv/bin/semsearch query "trade decline"'
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e ".[test]" '
    "&& .venv/bin/python -m pytest -q"
)
README_HOME = "/home/me"  # the home directory the README's sample paths are written under
README_PORT = "8765"
TIMEOUT = 900  # seconds per command: the real model on a shared, loaded machine
STARTUP = 300  # seconds for a server or a watcher to answer, on the same machine


@dataclass(frozen=True)
class Block:
    lang: str
    text: str


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    return [
        Block(m.group(1), m.group(2))
        for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)
    ]


def shell_lines() -> list[str]:
    """Every command line of the README's bash blocks, comments cut."""
    lines = []
    for block in blocks(README.read_text(encoding="utf-8")):
        if block.lang == "bash":
            lines += [re.sub(r"\s{2,}#.*$", "", s).strip() for s in block.text.splitlines()]
    return [s for s in lines if s]


def test_the_two_install_commands_are_exactly_as_ci_runs_them() -> None:
    lines = shell_lines()
    assert lines[0] == QUICK_START
    assert lines[1] == TEST_COMMAND
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TEST_COMMAND in ci  # .ci/run runs the README's test command verbatim


def test_every_readme_command_is_one_this_test_knows_how_to_run() -> None:
    """A command added to the README without a way to run it here fails this fast test."""
    for line in shell_lines()[2:]:
        assert _kind(line) != "unknown", line


def test_links_in_the_readme_and_docs_resolve() -> None:
    """The README links to docs/ and docs/ back; a moved or renamed file breaks a link."""
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)\)", page.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+://", target):
                assert (page.parent / target).exists(), f"{page.name}: {target}"


def _kind(line: str) -> str:
    words = line.split()
    cmd = next(w for w in words if "=" not in w)  # skip VAR=value prefixes
    if cmd == "curl":
        return "curl"
    if cmd != "semsearch" or len(words) < 2:
        return "unknown"
    sub = words[words.index("semsearch") + 1]
    return sub if sub in ("serve", "watch") else "run"


# --- running them ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    home: Path
    env: dict[str, str]

    def run(self, line: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line], cwd=self.home, env=self.env, text=True,
            capture_output=True, timeout=timeout,
        )  # fmt: skip

    def start(self, line: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["bash", "-c", f"exec env {line}"], cwd=self.home, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_default,
        )  # fmt: skip


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """A home holding the folders the README names, with text its queries find."""
    home = tmp_path / "home"
    _write(
        home / "notes" / "exports.md", "# Exports\n\nExports fell because demand abroad dropped.\n"
    )
    _write(home / "notes" / "old.md", "# Old\n\nAn old note about the garden shed.\n")
    _write(
        home / "notes" / "soup.md",
        "---\ntags: [soup, winter]\nlang: en\n---\n# Soup\n\nA hot soup for winter evenings.\n",
    )
    _write(home / "papers" / "2024" / "budget.md", "# Budget\n\nThe 2024 budget cut spending.\n")
    _write(home / "papers" / "trade.md", "# Trade\n\nTrade with oil and a minister's visit.\n")
    _write(home / "repo" / "app.py", 'def budget():\n    """Sum the budget lines."""\n')
    _write(home / "repo" / "app.min.js", "var a=1;")
    _write(home / "repo" / "tests" / "fixtures" / "x.py", "x = 1\n")
    rows = [
        {
            "body": "Our refund policy returns your money within 30 days.",
            "lang": "en",
            "year": 2024,
        },
        {"body": "Notre politique de remboursement.", "lang": "fr", "year": 2023},
    ]
    _write(home / "data" / "rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    env = {
        **os.environ,
        "HOME": str(home),
        "SEMSEARCH_INDEX": str(home / ".local" / "share" / "semsearch" / "index"),
        "SEMSEARCH_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "SEMSEARCH_TOKEN"):
        env.pop(var, None)
    return Sandbox(home, env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def _up(port: int, token: str | None) -> bool:
    try:
        return _status(f"http://127.0.0.1:{port}/health", token) == 200
    except OSError:
        return False


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(sandbox: Sandbox, line: str, servers: list[subprocess.Popen[str]]) -> int:
    """Start one README ``serve`` command on a free loopback port and check it answers."""
    port = _free_port()
    proc = sandbox.start(f"{line} --port {port}")
    servers.append(proc)
    token = m.group(1) if (m := re.search(r"SEMSEARCH_TOKEN=(\S+)", line)) else None
    _wait_for(lambda: proc.poll() is not None or _up(port, token), f"`{line}` to answer", STARTUP)
    assert proc.poll() is None, proc.communicate()[1]
    if token:
        assert _status(f"http://127.0.0.1:{port}/health") == 401  # the token is required
    return port


def _watch(sandbox: Sandbox, line: str) -> None:
    """Start the README's ``watch``, make a change, see its batch line, press Ctrl-C."""
    proc = sandbox.start(line)
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        _wait_for(lambda: any(s.startswith("Watching") for s in lines), "watch to start", STARTUP)
        _write(sandbox.home / "notes" / "new.md", "# New\n\nA new note about the harbour.\n")
        batch = re.compile(r"^semsearch: \S+ [1-9][\d,]* added")
        _wait_for(lambda: any(batch.match(s) for s in lines), "the batch line", STARTUP)
        _wait_for(
            lambda: "notes/new.md" in sandbox.run("semsearch ls").stdout, "new.md indexed", STARTUP
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        proc.kill()
        reader.join(10)
    assert lines[-1].strip() == "semsearch: interrupted", lines
    assert not any("Traceback" in s for s in lines), lines


def _check_sample_output(sandbox: Sandbox, run: subprocess.CompletedProcess[str]) -> None:
    """The Quick start's sample output is what prints: its first line, and the top hit's
    location and first line of text."""
    readme = README.read_text(encoding="utf-8")
    sample = next(b.text for b in blocks(readme) if b.lang == "text").splitlines()
    first = sample[0].replace(README_HOME, str(sandbox.home))
    assert run.stderr.splitlines()[0] == first
    out = run.stdout.splitlines()
    top = next(s for s in sample if s.startswith("samples/"))
    assert out[:4] == sample[sample.index(top) : sample.index(top) + 4]


def _check_mcp(sandbox: Sandbox) -> None:
    """Start the server exactly as the README's client configuration says."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    readme = README.read_text(encoding="utf-8")
    config = json.loads(next(b.text for b in blocks(readme) if b.lang == "json"))
    server = config["mcpServers"]["semsearch"]
    args = [a.replace(README_HOME, str(sandbox.home)) for a in server["args"]]
    params = StdioServerParameters(
        command=server["command"], args=args, env=sandbox.env, cwd=str(sandbox.home)
    )

    async def go() -> tuple[object, object]:
        with anyio.fail_after(300):
            async with Client(params) as client:
                status = await client.call_tool("index_status", {})
                found = await client.call_tool("search", {"query": "refund policy", "k": 1})
                return status, found

    status, found = anyio.run(go)
    assert not getattr(status, "is_error", True) and not getattr(found, "is_error", True)
    assert "refund policy" in str(getattr(found, "content", ""))


def _check_python(sandbox: Sandbox) -> None:
    readme = README.read_text(encoding="utf-8")
    code = next(b.text for b in blocks(readme) if b.lang == "python")
    work = sandbox.home / "py"
    _write(work / "docs" / "trade.md", "# Trade\n\nTrade declined between the two countries.\n")
    _write(work / "docs" / "garden.md", "# Garden\n\nTomatoes need sun.\n")
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=sandbox.env, text=True,
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "docs/trade.md" in run.stdout.splitlines()[0]
    assert (work / "my-index" / "CURRENT").exists()


@pytest.mark.slow
def test_every_readme_command_runs_as_shown(
    sandbox: Sandbox, servers: list[subprocess.Popen[str]], real_embedder: object
) -> None:
    del real_embedder  # the model is exported once per session, before the commands need it
    pytest.importorskip("mcp", reason="pip install 'semsearch[serve]'")
    lines = shell_lines()
    quick = lines[0].split("&& .venv/bin/")[-1]  # the Quick start's query, after the install
    run = sandbox.run(quick)
    assert run.returncode == 0, run.stderr
    _check_sample_output(sandbox, run)

    port: int | None = None  # the first server stays up for the curl lines that follow it
    for line in lines[2:]:
        kind = _kind(line)
        if kind == "serve":
            started = _serve(sandbox, line, servers)
            port = port or started
            continue
        if kind == "watch":
            _watch(sandbox, line)
            continue
        if kind == "curl":
            assert port is not None, f"{line}: no server started before it"
            line = line.replace(README_PORT, str(port)).replace(
                "curl ", "curl -sS --fail-with-body ", 1
            )
        run = sandbox.run(line)
        assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
        assert "Traceback" not in run.stderr, run.stderr
        if "--json" in line or kind == "curl":
            json.loads(run.stdout)
    _check_mcp(sandbox)
    _check_python(sandbox)
