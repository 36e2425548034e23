"""The fault battery: kill, starve, corrupt and race an index, and check it never lies.

    python -m tests.fault_battery [--rounds N] [--seconds S] [--seed N] [--only PART]

Parts (all by default):

* ``kill``     SIGKILL at random points of ``index``, ``update``, ``optimize`` (a merge of
               every segment) and ``remove`` run in a subprocess; afterwards the index must
               answer exactly as before the operation or exactly as after it (an
               uninterrupted run on a copy gives "after"); a merge never changes answers.
* ``watch``    SIGKILL of ``semsearch watch`` at a random point of the batch applying edits
               or new files: the index answers as before or as after, verifies clean, and a
               restarted watcher catches up (:mod:`tests.fault_segments`).
* ``diskfull`` builds into a small tmpfs (root only; else injected ENOSPC): one
               ``SemsearchError`` line, and the old index answers as before; then a merge
               of four segments on a tmpfs filled to 8..512 KiB free (the injected ENOSPC
               at every write point of a merge is ``tests/test_fault_merge.py``).
* ``segment``  each file of each segment of a four-segment index damaged (flip, truncate,
               zero, delete): ``verify`` names segment and file, an update keeps everything
               or refuses naming ``repair``, and ``repair`` rebuilds the same answers.
* ``corrupt``  truncate, flip, zero, delete, replace with a directory or a symlink: CURRENT,
               manifest.json, chunks.sqlite, vectors.npy, index.faiss, also as if each file
               were too large to be checksummed on load. Loading and searching give one
               ``SemsearchError`` or the correct answer; the next update fails in one line
               or keeps every document. Never another exception.
* ``hostile``  files built to exhaust a reader (YAML alias bombs, an EPUB spine naming one
               chapter 2,000 times, a PDF page tree of shared nodes, a Flate bomb, an 8 MB
               Markdown list, 4M CSV rows, JSONL with a huge number and deep nesting): each
               read in a subprocess under 1 GB of address space gives a warning naming it,
               then all are indexed beside good files, which must all be there.
* ``race``     one writer process upserting ~10x/s, two reader processes loading and
               searching in a loop: zero failures allowed.

Exit status 1 if anything failed. ``tests/test_fault_battery.py`` runs a quick version in
the test suite; the fake embedder is used, the model is not what is being tested.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from semsearch import SemanticIndex, SemsearchError, index_paths  # noqa: E402
from semsearch.store import IndexDir  # noqa: E402
from tests import fault_segments  # noqa: E402
from tests.conftest import FakeEmbedder  # noqa: E402

QUERIES = ["topic 3 old", "second sentence", "document 12", "new words here"]
Answer = tuple[object, ...]


@dataclass
class Tally:
    checks: int = 0
    kills: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"  FAIL {what}", flush=True)


def corpus(root: Path, n: int, salt: str, start: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / f"doc{i:04d}.txt").write_text(
            f"Document {i} {salt} is about topic {i % 13}. It has a second sentence. " * 3
        )
    return root


def answer(idx: Path) -> Answer:
    """What the index answers: its documents and ranked hits, comparable exactly."""
    index = SemanticIndex.load(idx, embedder=FakeEmbedder())
    docs = tuple(sorted(map(str, index.live.view.store.document_ids()))) if index.live.view else ()
    hits = tuple(
        tuple((h.doc_id, h.chunk_id, round(h.score, 4)) for h in q)
        for q in index.search_batch(QUERIES, 5)
    )
    return (docs, hits)


def content_answer(idx: Path) -> Answer:
    """What the index answers, independent of how its rows are laid out in segments (a
    re-read document gets new chunk ids): every document's text, and for dense and keyword
    search every matching chunk's document and score, as a sorted multiset (ties included)."""
    index = SemanticIndex.load(idx, embedder=FakeEmbedder())
    store = index.live.require().store
    docs = tuple(sorted((d, store.document_text(d)) for d in store.document_ids()))
    hits = tuple(
        tuple(sorted((h.doc_id, round(h.score, 4)) for h in q))
        for mode in ("dense", "keyword")
        for q in index.search_batch(QUERIES, 1000, mode=mode, collapse=False)  # type: ignore[arg-type]
    )
    return (docs, hits)


def segment_count(idx: Path) -> int:
    manifest = json.loads((IndexDir(idx).current() / "manifest.json").read_text())
    return len(manifest["segments"])


def texts(idx: Path) -> dict[str, str]:
    """Every document's text as the index holds it (damage carried forward shows here)."""
    index = SemanticIndex.load(idx, embedder=FakeEmbedder())  # holds the store open
    store = index.live.require().store
    return {d: store.document_text(d) for d in store.document_ids()}


# --- kill -----------------------------------------------------------------------------------

_OP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from tests.conftest import FakeEmbedder
    from semsearch import SemanticIndex, index_paths
    op, idx, arg = sys.argv[1:4]
    if op == "remove":
        SemanticIndex.load(idx, embedder=FakeEmbedder()).delete([arg], glob=True)
    elif op == "optimize":
        SemanticIndex.load(idx, embedder=FakeEmbedder()).optimize()
    else:
        index_paths([arg], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    """
)


def run_kill(work: Path, rounds: int, rng: random.Random, tally: Tally, kills: int = 4) -> None:
    work.mkdir(parents=True, exist_ok=True)
    script = work / "op.py"
    script.write_text(_OP.format(repo=str(REPO)))
    idx, docs, extra = work / "idx", work / "docs", work / "extra"
    corpus(docs, 60, "old")
    index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    n_extra = 0
    for r in range(rounds):
        op = ["index", "update", "optimize", "remove"][r % 4]
        if op == "index":  # a new folder of documents
            corpus(extra, 300, f"new{r}", start=n_extra)
            n_extra += 300
            arg = str(extra)
        elif op == "update":  # edit a third of the files, add some
            for p in sorted(docs.iterdir())[r % 3 :: 3]:
                p.write_text(p.read_text() + f" Edited in round {r}.")
            corpus(docs, 20, f"round{r}", start=1000 + 20 * r)
            arg = str(docs)
        elif op == "remove":
            arg = str(docs / f"doc00{r % 6}*")
        else:  # merge every segment (the update before left at least two)
            arg = ""
            segments = segment_count(idx)
            if segments < 2:
                tally.fail(f"optimize round {r}: only {segments} segment to merge")
        before = answer(idx)
        ref = work / "ref"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.copytree(idx, ref)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(script), op, str(ref), arg], check=True)
        span = time.perf_counter() - t0
        after = answer(ref)
        for delay in sorted(rng.uniform(0.0, span) for _ in range(kills)):
            proc = subprocess.Popen([sys.executable, str(script), op, str(idx), arg])
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            now = after_kill(idx, tally, f"kill {op} at {delay:.2f}s")
            if now is None:
                return
            if now != before and now != after:
                tally.fail(f"kill {op} at {delay:.2f}s: answers neither as before nor after")
            if op == "optimize" and now != before:
                tally.fail(f"kill optimize at {delay:.2f}s: a merge changed the answers")
            if now == after:
                break  # the operation was published; the next kills would be no-ops
        # Finish the operation (unless a killed run already published it), so the next
        # round starts from "after".
        if answer(idx) != after:
            subprocess.run([sys.executable, str(script), op, str(idx), arg], check=True)
        tally.checks += 1
        if answer(idx) != after:
            tally.fail(f"{op}: finishing after the kills did not give the uninterrupted result")
        print(f"  kill round {r + 1}/{rounds} ({op}): {tally.kills} kills so far", flush=True)
    if [p for p in idx.iterdir() if p.name.startswith(".tmp-")]:
        tally.fail("temporary generations left behind after a successful build")


def after_kill(idx: Path, tally: Tally, what: str, read: Callable[[Path], Answer] = answer
               ) -> Answer | None:  # fmt: skip
    """Count a kill; the index's answer (``read``), None when unreadable; verify must pass."""
    tally.kills += 1
    tally.checks += 1
    try:
        now = read(idx)
        problems = SemanticIndex.load(idx, embedder=FakeEmbedder()).verify()
    except Exception as exc:
        tally.fail(f"{what}: index unreadable: {exc!r}")
        return None
    if problems:
        tally.fail(f"{what}: verify: {problems}")
    return now


# --- disk full ------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size_kb: int) -> Iterator[bool]:
    """A tmpfs of ``size_kb`` at ``where`` (True), or nothing when not root (False)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def one_line_error(exc: BaseException) -> bool:
    return isinstance(exc, SemsearchError) and "\n" not in str(exc) and bool(str(exc))


def run_diskfull(work: Path, tally: Tally, sizes: range = range(300, 960, 60)) -> None:
    work.mkdir(parents=True, exist_ok=True)
    small, big = corpus(work / "small", 5, "old"), corpus(work / "big", 600, "big")
    for size_kb in sizes:
        disk = work / f"disk{size_kb}"
        with small_disk(disk, size_kb) as mounted:
            if not mounted:
                print("  diskfull: not root or no tmpfs; using injected ENOSPC", flush=True)
                return run_enospc(work, tally)
            idx = disk / "idx"
            try:
                index_paths([small], idx, embedder=FakeEmbedder(), backend="faiss")
            except SemsearchError:
                continue  # too small for even the first index
            before = answer(idx)
            tally.checks += 1
            try:
                index_paths([big], idx, embedder=FakeEmbedder(), backend="faiss")
                print(f"  diskfull {size_kb} KiB: the build fit", flush=True)
            except Exception as exc:
                if not one_line_error(exc):
                    tally.fail(f"diskfull {size_kb} KiB: {type(exc).__name__}: {exc}")
                if answer(idx) != before:
                    tally.fail(f"diskfull {size_kb} KiB: the old index changed")
                elif SemanticIndex.load(idx, embedder=FakeEmbedder()).verify():
                    tally.fail(f"diskfull {size_kb} KiB: the old index fails verify")
                print(f"  diskfull {size_kb} KiB: {str(exc)[:110]}", flush=True)


def run_enospc(work: Path, tally: Tally) -> None:
    import errno

    from semsearch.store import npy

    idx = work / "enospc-idx"
    index_paths([corpus(work / "e-small", 5, "old")], idx, embedder=FakeEmbedder())
    before = answer(idx)
    real = npy.VectorWriter.append

    def full(self: object, vectors: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    npy.VectorWriter.append = full  # type: ignore[method-assign]
    try:
        tally.checks += 1
        index_paths([corpus(work / "e-big", 50, "big")], idx, embedder=FakeEmbedder())
        tally.fail("injected ENOSPC: the build did not fail")
    except Exception as exc:
        if not one_line_error(exc):
            tally.fail(f"injected ENOSPC: {type(exc).__name__}: {exc}")
    finally:
        npy.VectorWriter.append = real  # type: ignore[method-assign]
    if answer(idx) != before:
        tally.fail("injected ENOSPC: the old index changed")


# --- corruption -----------------------------------------------------------------------------

TARGETS = ("CURRENT", "manifest.json", "chunks.sqlite", "vectors.npy", "index.faiss")


def _damage(path: Path, kind: str, rng: random.Random, outside: Path) -> None:
    if kind == "delete":
        path.unlink()
    elif kind == "dir":
        path.unlink()
        path.mkdir()
    elif kind == "symlink":
        copy = outside / f"{path.name}-{rng.randrange(1 << 30)}"
        shutil.copyfile(path, copy)
        path.unlink()
        path.symlink_to(copy)
    else:
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            data = data[: len(data) // 2]
        elif kind == "empty":
            data = bytearray()
        elif kind == "flip" or (kind == "text" and b"sentence" not in data):
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "text":  # same size, inside stored text: only a checksum can tell
            data = bytearray(bytes(data).replace(b"sentence", b"sentenCe"))
        elif kind == "zero":
            at = rng.randrange(len(data))
            n = max(len(data) // 8, 16)
            data[at : at + n] = bytes(len(data[at : at + n]))
        path.write_bytes(bytes(data))


KINDS = ("truncate", "empty", "flip", "text", "zero", "delete", "dir", "symlink")


def run_corrupt(work: Path, rng: random.Random, tally: Tally, *, large: bool) -> None:
    import semsearch.indexing.previous as previous
    import semsearch.store.manifest as manifest

    saved = manifest.VERIFY_ON_LOAD_BYTES, previous.VERIFY_ON_LOAD_BYTES
    if large:  # as if every file were over the 32 MiB checksum-on-load limit
        manifest.VERIFY_ON_LOAD_BYTES = previous.VERIFY_ON_LOAD_BYTES = 0
    try:
        _corrupt_all(work, rng, tally, large)
    finally:
        manifest.VERIFY_ON_LOAD_BYTES, previous.VERIFY_ON_LOAD_BYTES = saved


def _corrupt_all(work: Path, rng: random.Random, tally: Tally, large: bool) -> None:
    docs = corpus(work / "c-docs", 40, "old")
    base = work / "c-base"
    shutil.rmtree(base, ignore_errors=True)
    index_paths([docs], base, embedder=FakeEmbedder(), backend="faiss")
    expect = answer(base)
    n_docs = len(expect[0])
    expect_texts = texts(base)
    newcomer = work / "c-new.txt"
    newcomer.write_text("A newcomer document about something else.")
    outside = work / "c-outside"
    outside.mkdir(exist_ok=True)
    label = "large " if large else ""
    for target in TARGETS:
        for kind in KINDS:
            idx = work / "c-idx"
            shutil.rmtree(idx, ignore_errors=True)
            shutil.copytree(base, idx, symlinks=True)
            gen = IndexDir(idx).current()
            path = idx / "CURRENT" if target == "CURRENT" else gen / target
            _damage(path, kind, rng, outside)
            what = f"corrupt {label}{target} ({kind})"
            tally.checks += 2
            try:
                got = answer(idx)
                if got != expect and not (large and target in ("vectors.npy", "index.faiss")):
                    tally.fail(f"{what}: searched without error but answered differently")
            except Exception as exc:
                if not one_line_error(exc):
                    tally.fail(f"{what}: load: {type(exc).__name__}: {exc}")
            try:
                stats = index_paths([newcomer], idx, embedder=FakeEmbedder(), backend="faiss")
                if stats.documents < n_docs + 1:
                    tally.fail(f"{what}: update kept {stats.documents} of {n_docs + 1} documents")
                fresh = answer(idx)
                if len(fresh[0]) != n_docs + 1:
                    tally.fail(f"{what}: update left {len(fresh[0])} documents")
                if SemanticIndex.load(idx, embedder=FakeEmbedder()).verify():
                    tally.fail(f"{what}: the updated index fails verify")
                carried = texts(idx)
                if any(carried.get(d) != t for d, t in expect_texts.items()):
                    tally.fail(f"{what}: the update carried damaged text into a valid generation")
            except Exception as exc:
                if not one_line_error(exc):
                    tally.fail(f"{what}: update: {type(exc).__name__}: {exc}")
    print(f"  corrupt {label}: {len(TARGETS) * len(KINDS)} cases", flush=True)


# --- race -------------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from tests.conftest import FakeEmbedder
    from semsearch import SemanticIndex
    idx, seconds = sys.argv[1], float(sys.argv[2])
    index = SemanticIndex(embedder=FakeEmbedder(), path=idx)
    start = time.monotonic()
    end, n = start + seconds, 0
    while time.monotonic() < end:
        index.upsert([f"version {{n}} of a text about topic {{n % 7}}"], ids=[f"doc-{{n % 5}}"])
        n += 1
        time.sleep(max(0.0, start + n / 10 - time.monotonic()))  # aim at 10 writes a second
    print(n)
    """
)

_READER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {repo!r})
    from tests.conftest import FakeEmbedder
    from semsearch import SemanticIndex
    idx, seconds = sys.argv[1], float(sys.argv[2])
    emb = FakeEmbedder()
    end, loads, failures = time.monotonic() + seconds, 0, []
    while time.monotonic() < end:
        try:
            index = SemanticIndex.load(idx, embedder=emb)
            hits = index.search("topic text", k=3)
            if not hits:
                failures.append("no hits")
            loads += 1
        except Exception as exc:
            failures.append(f"{{type(exc).__name__}}: {{exc}}")
    print(json.dumps({{"loads": loads, "failures": failures[:20], "n_failures": len(failures)}}))
    """
)


def run_race(work: Path, seconds: float, tally: Tally) -> None:
    idx = work / "race-idx"
    SemanticIndex(embedder=FakeEmbedder(), path=idx).upsert(["seed text"], ids=["seed"])
    (work / "writer.py").write_text(_WRITER.format(repo=str(REPO)))
    (work / "reader.py").write_text(_READER.format(repo=str(REPO)))
    procs = [
        subprocess.Popen(
            [sys.executable, str(work / name), str(idx), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("writer.py", "reader.py", "reader.py")
    ]
    outs = [p.communicate(timeout=seconds + 300)[0] for p in procs]
    writes = int(outs[0].strip() or 0)
    loads = 0
    for out in outs[1:]:
        got = json.loads(out)
        loads += got["loads"]
        tally.checks += got["loads"] + got["n_failures"]
        for f in got["failures"]:
            tally.fail(f"race: {f}")
        if got["n_failures"] > len(got["failures"]):
            tally.fail(f"race: ... {got['n_failures']} failures in all")
    print(f"  race: {writes} writes, {loads} loads by 2 readers", flush=True)
    tally.race = (writes, loads)  # type: ignore[attr-defined]


# --- hostile -------------------------------------------------------------------------------
# Files built to blow up a reader (issue 20, D4 and D8-D13, D23): each is generated small,
# read in a subprocess under a memory ceiling, and must cost bounded memory and time.


def yaml_bomb(path: Path, levels: int = 9) -> Path:
    """Front matter of nine anchors, each a list of ten aliases of the one before (10^9)."""
    lines = ["---", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines += ["---", "# Bomb", "", "The body of the bombed note is still indexed.", ""]
    path.write_text("\n".join(lines))
    return path


def epub_spine_bomb(path: Path, repeats: int = 2000, chapter_chars: int = 1_000_000) -> Path:
    """An EPUB whose spine names one chapter ``repeats`` times (just under the 1 MiB above
    which a high compression ratio is refused as a zip bomb)."""
    import zipfile

    body = "<p>" + "word " * (chapter_chars // 5) + "</p>"
    chapter = f"<html><head><title>c</title></head><body><h1>One</h1>{body}</body></html>"
    opf = (
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Bomb</dc:title></metadata>'
        '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/>'
        "</manifest><spine>" + '<itemref idref="c1"/>' * repeats + "</spine></package>"
    )
    container = (
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf"/></rootfiles></container>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        z.writestr("OEBPS/c1.xhtml", chapter)
    return path


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF file from its numbered objects (1-based), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


def pdf_shared_tree(path: Path, fanout: int = 10, levels: int = 6) -> Path:
    """A page tree whose every node names one child ``fanout`` times: fanout^levels pages."""
    # 1 catalog, 2 font, 3 content, 4 leaf page, 5.. the Pages nodes, root last
    content = _stream(b"BT /F1 12 Tf 72 712 Td (Shared page text) Tj ET")
    objects = [b"", _FONT, content, b""]
    child = 4
    for level in range(levels):
        kids = b" ".join([b"%d 0 R" % child] * fanout)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, fanout ** (level + 1)))
        child = len(objects)
    root = child
    parent = 5  # the leaf's parent: only its first Pages node, as a tree would have it
    objects[3] = (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
        b"/Resources << /Font << /F1 2 0 R >> >> >>" % parent
    )
    objects[0] = b"<< /Type /Catalog /Pages %d 0 R >>" % root
    path.write_bytes(_pdf(objects))
    return path


def pdf_flate_bomb(path: Path, inflated: int = 256 << 20, *, image: bool = False) -> Path:
    """One page whose FlateDecode content stream is ``inflated`` bytes of spaces (or, with
    ``image``, a page of text beside an image XObject of that many white bytes)."""
    import zlib

    text = b"BT /F1 12 Tf 72 712 Td (%s page) Tj ET" % (b"Image" if image else b"Bomb")
    packer = zlib.compressobj(9)
    parts = [] if image else [packer.compress(text)]
    block = (b"\xff" if image else b" ") * (1 << 20)
    for at in range(0, inflated, len(block)):
        parts.append(packer.compress(block[: inflated - at]))
    packed = b"".join(parts) + packer.flush()
    kind = b"/Type /XObject /Subtype /Image /Width 1024 /Height %d /ColorSpace /DeviceGray " % (
        inflated // 1024
    )
    head = b"<< %s/BitsPerComponent 8 /Length %d /Filter /FlateDecode >>" % (
        kind if image else b"",
        len(packed),
    )
    flated = head + b"\nstream\n" + packed + b"\nendstream"
    resources = b"/Font << /F1 5 0 R >>" + (b" /XObject << /Im1 4 0 R >>" if image else b"")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << %s >> >>" % (6 if image else 4, resources),
        flated,
        _FONT,
    ]
    if image:
        objects.append(_stream(text + b" q 612 0 0 792 0 0 cm /Im1 Do Q"))
    path.write_bytes(_pdf(objects))
    return path


def markdown_list(path: Path, lines: int = 2_000_000) -> Path:
    path.write_text("# A long list\n\n" + "- a\n" * lines)
    return path


def csv_rows(path: Path, rows: int = 4_000_000) -> Path:
    path.write_text("text\n" + "a\n" * rows)
    return path


def jsonl_hostile(path: Path) -> Path:
    """Good rows around a 5,000-digit integer and a 100,000-deep nesting."""
    lines = [
        json.dumps({"text": "first good row", "n": 1}),
        '{"text": "huge number", "n": ' + "9" * 5000 + "}",
        '{"text": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"text": "last good row", "n": 2}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


_MEASURE = textwrap.dedent(
    """
    import json, logging, resource, sys, time
    sys.path.insert(0, {repo!r})
    limit = int(sys.argv[2])
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from pathlib import Path
    from semsearch.ingest.read import is_data_file, read_document, read_records
    def peak_mb():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warnings = []
    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())
    logging.getLogger("semsearch").addHandler(Keep())
    path = Path(sys.argv[1])
    started = time.perf_counter()
    if is_data_file(path):
        docs = list(read_records(path))
    else:
        doc = read_document(path)
        docs = [doc] if doc is not None else []
    print(json.dumps({{
        "docs": len(docs),
        "chars": sum(len(d.text) for d in docs),
        "meta": [d.meta for d in docs[:1]],
        "texts": [d.text[:200] for d in docs[:3]],
        "warnings": warnings,
        "seconds": time.perf_counter() - started,
        "maxrss_mb": peak_mb(),
    }}))
    """
)


def measure_read(path: Path, *, limit_mb: int = 0, timeout: float = 120.0) -> dict[str, object]:
    """Read one file in a subprocess (under an address-space ceiling of ``limit_mb`` when
    given): the documents it gave, its warnings, its time and its peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(repo=str(REPO)), str(path), str(limit_mb << 20)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    got: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return got


def html_private_use(path: Path) -> Path:
    """HTML whose text holds U+E000-U+E004, the characters the reader once used as marks."""
    pua = "".join(chr(c) for c in range(0xE000, 0xE005))
    path.write_text(f"<html><body><h1>Icons {pua}</h1><p>Glyphs {pua} here.</p></body></html>")
    return path


class Hostile(NamedTuple):
    make: Callable[..., Path]
    read: bool  # a document comes out (else: refused, with a warning)
    warns: bool  # a warning names the file
    indexed: bool = True  # also indexed beside good files (the big ones are read alone)


HOSTILE = {
    "bomb.md": Hostile(yaml_bomb, True, True),
    "spine.epub": Hostile(epub_spine_bomb, True, False),
    "tree.pdf": Hostile(pdf_shared_tree, True, True, indexed=False),
    "flate.pdf": Hostile(pdf_flate_bomb, False, True),
    "list.md": Hostile(markdown_list, True, False, indexed=False),
    "rows.csv": Hostile(csv_rows, True, True, indexed=False),
    "bad.jsonl": Hostile(jsonl_hostile, True, True),
    "icons.html": Hostile(html_private_use, True, False),
}


def run_hostile(work: Path, tally: Tally, *, limit_mb: int = 1024, scale: float = 1.0) -> None:
    """Each hostile file read alone in a subprocess under ``limit_mb`` of address space: no
    error, a document or a refusal, a warning naming it where a bound was hit; then the
    small ones indexed beside good files, which must all be there. ``scale`` < 1 shortens
    the Markdown list (the CSV always passes the row bound)."""
    from semsearch.ingest.limits import MAX_ROWS

    work.mkdir(parents=True, exist_ok=True)
    folder, alone = work / "docs", work / "alone"
    corpus(folder, 5, "good")
    alone.mkdir(exist_ok=True)
    sizes = {
        "list.md": int(2_000_000 * scale),
        "rows.csv": max(int(4_000_000 * scale), MAX_ROWS + 1),
    }
    for name, case in HOSTILE.items():
        path = (folder if case.indexed else alone) / name
        case.make(path, sizes[name]) if name in sizes else case.make(path)
        got = measure_read(path, limit_mb=limit_mb)
        tally.checks += 1
        shown = {k: v for k, v in got.items() if k not in ("texts", "meta")}
        print(f"  hostile {name}: {path.stat().st_size} bytes -> {shown}"[:400], flush=True)
        warned = any(name in str(w) for w in got.get("warnings", []))  # type: ignore[attr-defined]
        if "error" in got:
            tally.fail(f"hostile {name}: {got['error']}")
        elif bool(got["docs"]) != case.read:
            tally.fail(f"hostile {name}: {got['docs']} documents ({got['warnings']})")
        elif warned != case.warns:
            tally.fail(f"hostile {name}: warnings {got['warnings']}")
    idx = work / "idx"
    stats = index_paths([folder], idx, embedder=FakeEmbedder(), chunk_tokens=50)
    tally.checks += 1
    index = SemanticIndex.load(idx, embedder=FakeEmbedder())
    docs = set(map(str, index.live.view.store.document_ids())) if index.live.view else set()
    wanted = {str(p) for p in folder.iterdir() if p.suffix != ".jsonl" and p.name != "flate.pdf"}
    wanted |= {f"{folder / 'bad.jsonl'}#1", f"{folder / 'bad.jsonl'}#4"}
    if wanted - docs:
        tally.fail(f"hostile: missing from the index: {sorted(wanted - docs)}")
    print(f"  hostile: indexed {len(docs)} documents, {stats.skipped} skipped", flush=True)
    run_hostile_tree(work / "tree", tally)


def run_hostile_tree(work: Path, tally: Tally) -> None:
    """A folder attacked through its names and rules: ignore lines git accepts but no regex
    compiles, a file name that is not UTF-8, a link to a secret outside the folder, a binary
    file. The good files are indexed, the secret is not, and an unchanged second run
    publishes nothing (the skipped files are remembered)."""
    from semsearch.api import list_sources

    folder, outside = work / "docs", work / "outside"
    corpus(folder, 3, "tree")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "id_rsa").write_text("PRIVATE KEY do not index")
    (folder / "leak.txt").symlink_to(outside / "id_rsa")
    (folder / ".gitignore").write_text("[z-a]\nfoo\\\n\\\n!\n*.tmp\n")
    (folder / "scratch.tmp").write_text("ignored by the good line")
    os.close(os.open(os.fsencode(folder) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    idx = work / "idx"
    tally.checks += 3
    try:
        index_paths([folder], idx, embedder=FakeEmbedder(), chunk_tokens=50)
    except SemsearchError as exc:
        tally.fail(f"hostile tree: the build stopped: {exc}")
        return
    names = {Path(s.source).name for s in list_sources(idx)}
    good = {p.name for p in folder.glob("doc*.txt")}
    if good - names or names & {"leak.txt", "scratch.tmp"}:
        tally.fail(f"hostile tree: indexed {sorted(names)}")
    before = (idx / "CURRENT").read_bytes()
    index_paths([folder], idx, embedder=FakeEmbedder(), chunk_tokens=50)
    if (idx / "CURRENT").read_bytes() != before:
        tally.fail("hostile tree: an unchanged second run published a new generation")
    print(f"  hostile tree: indexed {sorted(names)}", flush=True)


# --- driver -----------------------------------------------------------------------------------


def run(
    rounds: int = 3,
    seconds: float = 30.0,
    seed: int = 11,
    only: str | None = None,
    *,
    kills: int = 4,
    sizes: range = range(300, 960, 60),
    hostile_scale: float = 1.0,
    watch_rounds: int = 4,
) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="semsearch-faults-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("SEMSEARCH_CACHE", str(work / "cache"))
        if only in (None, "kill"):
            print(f"kill: {rounds} rounds", flush=True)
            run_kill(work / "kill", rounds, rng, tally, kills)
        if only in (None, "watch"):
            print(f"watch: {watch_rounds} rounds", flush=True)
            fault_segments.run_kill_watch(work / "watch", watch_rounds, rng, tally)
        if only in (None, "diskfull"):
            print("diskfull", flush=True)
            run_diskfull(work / "diskfull", tally, sizes)
            fault_segments.run_diskfull_merge(work / "diskfull", tally)
        if only in (None, "segment"):
            print("segment", flush=True)
            fault_segments.run_corrupt_segment(work / "segment", rng, tally)
        if only in (None, "corrupt"):
            print("corrupt", flush=True)
            run_corrupt(work / "corrupt", rng, tally, large=False)
            run_corrupt(work / "corrupt", rng, tally, large=True)
        if only in (None, "race"):
            print(f"race: {seconds:.0f} s", flush=True)
            run_race(work, seconds, tally)
        if only in (None, "hostile"):
            print("hostile", flush=True)
            run_hostile(work / "hostile", tally, scale=hostile_scale)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault_battery", description=__doc__)
    parser.add_argument(
        "--rounds", type=int, default=8, help="kill rounds (index/update/optimize/remove)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the race")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--only", choices=["kill", "watch", "diskfull", "segment", "corrupt", "race", "hostile"]
    )
    args = parser.parse_args(argv)
    for noisy in ("semsearch",):
        import logging

        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.perf_counter()
    tally = run(args.rounds, args.seconds, args.seed, args.only)
    print(
        f"fault battery: {tally.checks} checks, {tally.kills} kills, "
        f"{len(tally.failures)} failures in {time.perf_counter() - started:.0f}s"
    )
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
