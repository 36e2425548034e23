"""The search page in a real headless Chromium (Debian's ``chromium`` package), driven over
the DevTools protocol on a pipe: type a query key by key, check the debounced requests, the
rendered hits, the highlight, the mode switch, the source filter and that document text
cannot inject markup; save a screenshot to look at."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="pip install 'semsearch[serve]'")

from semsearch import SemanticIndex
from semsearch.serve.service import SearchService

from .conftest import SEEDS
from .test_serve_http import Server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "headless browser missing: apt-get install -y chromium (Debian package 'chromium')",
        allow_module_level=True,
    )

SCREENSHOT = (
    Path(os.environ.get("SEMSEARCH_SCREENSHOT_DIR", tempfile.gettempdir())) / "semsearch-page.png"
)
EVIL = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


class Browser:
    """Chromium with ``--remote-debugging-pipe``: JSON messages separated by NUL on fds 3/4."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-pipe",
            "--window-size=1100,900", "about:blank",
        ]  # fmt: skip

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            args,
            close_fds=False,
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            while b"\0" not in self._buf:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
        raise TimeoutError(method)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, session=True, **params)

    def js(self, expression: str) -> Any:
        r = self.page(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(expression)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)


class CountingService(SearchService):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.queries: list[str] = []

    def search(self, req: Any, **kw: Any) -> dict[str, Any]:
        self.queries.extend(req.queries)
        return super().search(req, **kw)


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("page") / "index"
    index = SemanticIndex(path=path, embedder=real_embedder)
    index.add_paths([SEEDS])
    index.upsert(
        [f"Harbour pelicans gather at dawn. {EVIL} Pelicans eat fish from the harbour."],
        ids=["notes/evil.html"],
    )
    s = Server(CountingService(path, workers=2, embedder=real_embedder))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_typing_is_debounced_and_results_render(page_server: Server, browser: Browser) -> None:
    base = f"http://127.0.0.1:{page_server.port}/"
    browser.page("Page.enable")
    browser.page("Page.navigate", url=base)
    browser.wait_for(
        "document.readyState === 'complete' && document.getElementById('info').textContent"
    )
    assert "6 documents" in browser.js("document.getElementById('info').textContent")
    browser.js("document.getElementById('q').focus()")
    page_server.service.queries.clear()  # type: ignore[attr-defined]
    query = "foreign minister visit"
    for ch in query:
        browser.page("Input.insertText", text=ch)
        time.sleep(0.03)  # a fast typist: well inside the debounce window
    browser.wait_for("document.querySelectorAll('li.hit').length > 0")
    browser.wait_for("document.getElementById('status').textContent.includes('hits')")
    sent = page_server.service.queries  # type: ignore[attr-defined]
    assert sent[-1] == query
    assert len(sent) < len(query) / 3, sent  # debounced, not one request per key
    hits = browser.js("[...document.querySelectorAll('li.hit')].map(li => li.innerText)")
    assert len(hits) == 10
    marks = browser.js("[...document.querySelectorAll('li.hit mark')].map(m => m.textContent)")
    assert len(marks) == len(hits) and all(m.strip() for m in marks)
    first_loc = browser.js("document.querySelector('a.loc').textContent")
    assert ":" in first_loc and first_loc.split(":")[0].endswith(".txt")
    # The location link opens the text around the hit.
    browser.js("document.querySelector('a.loc').click()")
    browser.wait_for("!!document.querySelector('.context .hitchunk')")
    shot = browser.page("Page.captureScreenshot", format="png")
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.stat().st_size > 10_000


def test_mode_switch_source_filter_and_escaping(page_server: Server, browser: Browser) -> None:
    base = f"http://127.0.0.1:{page_server.port}/"
    browser.page("Page.navigate", url=base + "?q=pelicans+harbour")
    browser.wait_for("document.querySelectorAll('li.hit').length > 0")
    top = browser.js("document.querySelector('li.hit p.text').textContent")
    assert "Pelicans" in top and "<img src=x" in top  # shown as text...
    assert browser.js("document.querySelectorAll('#results img, #results script').length") == 0
    assert browser.js("document.title") == "semsearch"  # ...never run
    browser.js("document.querySelector('input[value=keyword]').click()")
    browser.wait_for("document.getElementById('status').textContent.includes('keyword')")
    assert browser.js("document.querySelectorAll('li.hit').length") == 1  # only one doc has them
    browser.js(
        "const s = document.getElementById('source'); s.value = '*.txt';"
        "s.dispatchEvent(new Event('input'))"
    )
    browser.wait_for("document.getElementById('status').textContent.startsWith('0 hits')")
    assert page_server.service.queries[-1] == "pelicans harbour"  # type: ignore[attr-defined]


def _screenshot(browser: Browser, path: Path) -> None:
    """Save what the browser shows (also into $SEMSEARCH_SCREENSHOT_DIR, to look at)."""
    shot = browser.page("Page.captureScreenshot", format="png")
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    if os.environ.get("SEMSEARCH_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["SEMSEARCH_SCREENSHOT_DIR"]) / path.name)


def _load(browser: Browser, url: str) -> None:
    browser.page("Page.navigate", url=url)
    browser.wait_for("document.readyState === 'complete'")


def test_query_and_mode_live_in_the_url(page_server: Server, browser: Browser) -> None:
    """A shared link shows its results; each search is a history entry; back and forward
    bring the earlier search (box, mode and results) back."""
    base = f"http://127.0.0.1:{page_server.port}/"
    _load(browser, base + "?q=trade")
    browser.wait_for("document.querySelectorAll('li.hit').length > 0")
    assert browser.js("document.getElementById('q').value") == "trade"
    first_hits = browser.js("[...document.querySelectorAll('a.loc')].map(a => a.textContent)")
    browser.js("document.querySelector('input[value=keyword]').click()")
    browser.wait_for("document.getElementById('status').textContent.includes('keyword')")
    assert browser.js("location.search") == "?q=trade&mode=keyword"
    browser.js(
        "const q = document.getElementById('q'); q.value = 'pelicans harbour';"
        "q.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}))"
    )
    browser.wait_for("location.search.includes('pelicans')")
    assert browser.js("location.search") == "?q=pelicans+harbour&mode=keyword"
    browser.wait_for("document.getElementById('status').textContent.startsWith('1 hit')")
    browser.js("history.back()")
    browser.wait_for("document.getElementById('q').value === 'trade'")
    assert browser.js("location.search") == "?q=trade&mode=keyword"
    assert browser.js("document.querySelector('input[name=mode]:checked').value") == "keyword"
    browser.js("history.back()")
    browser.wait_for("document.querySelector('input[name=mode]:checked').value === 'hybrid'")
    browser.wait_for("document.getElementById('status').textContent.includes('hybrid')")
    assert browser.js("location.search") == "?q=trade"
    again = browser.js("[...document.querySelectorAll('a.loc')].map(a => a.textContent)")
    assert again == first_hits
    browser.js("history.forward()")
    browser.wait_for("document.getElementById('status').textContent.includes('keyword')")
    assert browser.js("document.getElementById('q').value") == "trade"


def test_typing_keeps_one_history_entry_per_search(page_server: Server, browser: Browser) -> None:
    base = f"http://127.0.0.1:{page_server.port}/"
    _load(browser, base)
    before = browser.js("history.length")
    browser.js("document.getElementById('q').focus()")
    for ch in "foreign minister":
        browser.page("Input.insertText", text=ch)
        time.sleep(0.25)  # slower than the debounce: several searches run while typing
    browser.wait_for("location.search === '?q=foreign+minister'")
    assert browser.js("history.length") - before == 1


def test_narrow_layout_at_360_px(page_server: Server, browser: Browser, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{page_server.port}/"
    browser.page(
        "Emulation.setDeviceMetricsOverride", width=360, height=740, deviceScaleFactor=2,
        mobile=True,
    )  # fmt: skip
    try:
        _load(browser, base + "?q=foreign+minister+visit")
        browser.wait_for("document.querySelectorAll('li.hit').length > 0")
        box = browser.js("document.getElementById('q').getBoundingClientRect().width")
        assert box >= 300, box  # the whole row, not ~6 characters
        assert browser.js("document.documentElement.scrollWidth") <= 360  # no sideways scroll
        modes = browser.js(
            "[...document.querySelectorAll('.modes label')]"
            ".map(l => l.getBoundingClientRect().right)"
        )
        assert max(modes) <= 360
        browser.js("document.querySelector('a.loc').click()")
        browser.wait_for("!!document.querySelector('.context .hitchunk')")
        assert browser.js("document.documentElement.scrollWidth") <= 360
        _screenshot(browser, tmp_path / "page-360px.png")
    finally:
        browser.page("Emulation.clearDeviceMetricsOverride")


def test_docs_page_is_readable_and_offline(
    page_server: Server, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{page_server.port}/"
    _load(browser, base + "docs")
    rows = browser.js("[...document.querySelectorAll('h2')].map(h => h.textContent)")
    assert any(r.startswith("GET /search") for r in rows) and "Fields of a hit" in rows
    cells = browser.js(
        "[...document.querySelectorAll('table tr')].map(tr => tr.innerText.split('\\t')[0])"
    )
    assert {"q", "k", "mode", "where", "doc_id", "location"} <= set(cells)
    assert '"type"' not in browser.js("document.body.innerText")  # no raw schema
    # Nothing loaded from anywhere but this server: no external script, style, font or image.
    urls = browser.js("performance.getEntriesByType('resource').map(r => r.name)")
    assert all(u.startswith(base) for u in urls), urls
    _screenshot(browser, tmp_path / "docs.png")
