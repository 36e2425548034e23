"""The fault battery's segment parts: SIGKILL during a watch batch, a merge on a full disk,
and a corrupt segment found by verify and rebuilt by repair (``tests/fault_battery.py``
runs them as ``watch``, ``diskfull`` and ``segment``).

After every fault the previous generation answers exactly as before (or, once published,
exactly as after), nothing indexed is lost, and the next write succeeds.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch import SemanticIndex, index_paths
from tests.conftest import FakeEmbedder

if TYPE_CHECKING:
    from tests.fault_battery import Tally

REPO = Path(__file__).resolve().parent.parent


def _battery():  # type: ignore[no-untyped-def]
    from tests import fault_battery

    return fault_battery


@contextlib.contextmanager
def fake_model() -> Iterator[None]:
    """Writers that load the index's recorded model get the fake embedder."""
    import semsearch.embed.models as models
    import semsearch.indexing.writer as writer

    saved = writer._load, models.KNOWN_MODELS
    writer._load = lambda *a: FakeEmbedder()  # type: ignore[assignment]
    models.KNOWN_MODELS = frozenset({*models.KNOWN_MODELS, FakeEmbedder.name})
    try:
        yield
    finally:
        writer._load, models.KNOWN_MODELS = saved


@contextlib.contextmanager
def many_segments() -> Iterator[None]:
    """Writes keep every segment (no merge rides along), to build multi-segment indexes."""
    import semsearch.indexing.merge as merge

    saved = merge.TIER_FACTOR
    merge.TIER_FACTOR = 0
    try:
        yield
    finally:
        merge.TIER_FACTOR = saved


def segmented_index(docs: Path, idx: Path, rounds: int = 3, n: int = 30) -> None:
    """An index of ``rounds + 1`` segments over ``docs``: a build, then edits and additions."""
    b = _battery()
    b.corpus(docs, n, "old")
    with many_segments():
        index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20, backend="faiss")
        for r in range(rounds):
            for p in sorted(docs.glob("doc*.txt"))[r::5]:
                p.write_text(p.read_text() + f" Edited in round {r}.")
            b.corpus(docs, 3, f"added{r}", start=100 + 10 * r)
            index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)


# --- SIGKILL during a watch batch -----------------------------------------------------------

_WATCH = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from tests.conftest import FakeEmbedder
    from tests.fault_segments import fake_model
    from semsearch.watch import Watcher
    idx, marks = sys.argv[1], Path(sys.argv[2])
    def note(report):
        with open(marks, "a") as f:
            f.write(("error " + report.error if report.error else "ok") + "\\n")
    with fake_model():
        try:
            Watcher(idx, embedder=FakeEmbedder(), step=0.05, tick=0.2, on_batch=note).run()
        except KeyboardInterrupt:
            pass
    """
)


def _batches(marks: Path) -> int:
    return len(marks.read_text().splitlines()) if marks.exists() else 0


def _watcher(script: Path, idx: Path, marks: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(script), str(idx), str(marks)])


def _wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def run_kill_watch(work: Path, rounds: int, rng: random.Random, tally: Tally) -> None:
    """Edits (or new files) land while ``semsearch watch`` runs; the watcher is killed at a
    random point of the batch that applies them. The index then holds exactly what it held
    before or exactly what an uninterrupted update gives, verifies clean, and a restarted
    watcher catches up to "after"."""
    b = _battery()
    work.mkdir(parents=True, exist_ok=True)
    script = work / "watch.py"
    script.write_text(_WATCH.format(repo=str(REPO)))
    docs, idx = work / "docs", work / "idx"
    b.corpus(docs, 60, "old")
    index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    for r in range(rounds):
        before, exact = b.content_answer(idx), b.answer(idx)
        ref = work / "ref"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.copytree(idx, ref)
        marks = work / f"marks{r}"
        proc = _watcher(script, idx, marks)
        if not _wait(lambda m=marks: _batches(m) >= 1, 120):  # its catch-up check
            tally.fail(f"watch round {r}: the watcher never started")
            proc.kill()
            proc.wait()
            return
        if r % 2:  # new files: the batch walks the root
            b.corpus(docs, 10, f"w{r}", start=2000 + 10 * r)
        else:  # edits of indexed files: the batch updates them directly
            for p in sorted(docs.glob("doc*.txt"))[r % 4 :: 4]:
                p.write_text(p.read_text() + f" Watched edit {r}.")
        t0 = time.perf_counter()
        index_paths([docs], ref, embedder=FakeEmbedder(), chunk_tokens=20)
        span = time.perf_counter() - t0
        after = b.content_answer(ref)
        time.sleep(rng.uniform(0.05, 0.15 + 1.5 * span))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = b.after_kill(idx, tally, f"kill watch round {r}", b.content_answer)
        if now is None:
            return
        state = "before" if now == before else "after" if now == after else "neither"
        if state == "neither":
            tally.fail(f"kill watch round {r}: answers neither as before nor after")
        if state == "before" and b.answer(idx) != exact:
            tally.fail(f"kill watch round {r}: unpublished, but the hits changed")
        # The next write: a restarted watcher catches up on what it missed.
        marks2 = work / f"marks{r}b"
        proc = _watcher(script, idx, marks2)
        caught = _wait(lambda m=marks2: _batches(m) >= 1, 120)
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        proc.kill()
        proc.wait()
        tally.checks += 1
        if not caught or b.content_answer(idx) != after:
            tally.fail(f"watch round {r}: the restarted watcher did not catch up")
        print(f"  watch kill round {r + 1}/{rounds}: killed {state} publishing", flush=True)


# --- a merge on a full disk ------------------------------------------------------------------


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to ``leave`` free bytes with one file (removed to free the space)."""
    st = os.statvfs(disk)
    filler = disk / "filler"
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        for _ in range(size >> 16):
            f.write(bytes(1 << 16))
    return filler


def run_diskfull_merge(work: Path, tally: Tally, size_kb: int = 4096) -> None:
    """A merge of a four-segment index on a real small filesystem, with less and less room:
    a merge that does not fit fails in one line and the index answers exactly as before;
    once space is freed, the merge succeeds with the same answers."""
    b = _battery()
    disk = work / "mdisk"
    with b.small_disk(disk, size_kb) as mounted:
        if not mounted:
            print("  diskfull merge: skipped (needs root and tmpfs; the injected ENOSPC at "
                  "every write point runs in tests/test_fault_merge.py)", flush=True)  # fmt: skip
            return
        for leave_kb in (8, 32, 64, 128, 256, 512):
            docs, idx = disk / "docs", disk / "idx"
            shutil.rmtree(idx, ignore_errors=True)
            shutil.rmtree(docs, ignore_errors=True)
            segmented_index(docs, idx)
            before, content = b.answer(idx), b.content_answer(idx)
            filler = _fill(disk, leave_kb << 10)
            tally.checks += 2
            try:
                SemanticIndex.load(idx, embedder=FakeEmbedder()).optimize()
                outcome = "fit"
            except Exception as exc:
                outcome = str(exc)[:100]
                if not b.one_line_error(exc):
                    tally.fail(f"diskfull merge {leave_kb} KiB: {type(exc).__name__}: {exc}")
                if b.segment_count(idx) != 4:
                    tally.fail(f"diskfull merge {leave_kb} KiB: the failed merge was published")
            if b.answer(idx) != before if outcome != "fit" else b.content_answer(idx) != content:
                tally.fail(f"diskfull merge {leave_kb} KiB: the answers changed")
            if SemanticIndex.load(idx, embedder=FakeEmbedder()).verify():
                tally.fail(f"diskfull merge {leave_kb} KiB: the index fails verify")
            filler.unlink()
            SemanticIndex.load(idx, embedder=FakeEmbedder()).optimize()  # the next write
            if b.content_answer(idx) != content or b.segment_count(idx) != 1:
                tally.fail(f"diskfull merge {leave_kb} KiB: the merge after freeing space")
            print(f"  diskfull merge, {leave_kb} KiB free: {outcome}", flush=True)


# --- a corrupt segment -----------------------------------------------------------------------

SEGMENT_FILES = ("chunks.sqlite", "vectors.npy", "index.faiss")
SEGMENT_KINDS = ("flip", "truncate", "zero", "delete")


def run_corrupt_segment(work: Path, rng: random.Random, tally: Tally) -> None:
    """Each file of each segment of a four-segment index damaged in turn: searching gives
    the correct answer or one line; verify names the segment and file in one line and exits
    1; an update keeps every document or refuses in one line naming repair; repair rebuilds
    the index from the intact segments plus the damaged one's files, answering as before."""
    from semsearch.api.repair import repair_index, verify_index

    b = _battery()
    docs, base = work / "s-docs", work / "s-base"
    shutil.rmtree(base, ignore_errors=True)
    segmented_index(docs, base)
    want, exact = b.content_answer(base), b.answer(base)
    outside = work / "s-outside"
    outside.mkdir(parents=True, exist_ok=True)
    manifest = b.IndexDir(base).manifest()[1]
    names = [s["name"] for s in manifest.segments]
    for seg in names:
        for name in SEGMENT_FILES:
            for kind in SEGMENT_KINDS:
                idx = work / "s-idx"
                shutil.rmtree(idx, ignore_errors=True)
                shutil.copytree(base, idx)
                target = idx / seg / name
                intact = target.read_bytes()
                b._damage(target, kind, rng, outside)
                # Zeroing bytes that were zero already leaves the file as it was.
                same = target.is_file() and target.read_bytes() == intact
                what = f"corrupt segment {seg}/{name} ({kind})"
                tally.checks += 4
                try:
                    if b.answer(idx) != exact:
                        tally.fail(f"{what}: searched without error but answered differently")
                except Exception as exc:
                    if not b.one_line_error(exc):
                        tally.fail(f"{what}: load: {type(exc).__name__}: {exc}")
                found = verify_index(idx)
                if [(d.segment, d.file) for d in found.damage] != ([] if same else [(seg, name)]):
                    tally.fail(f"{what}: verify found {[d.line for d in found.damage]}")
                try:
                    with fake_model():
                        index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
                    if b.content_answer(idx) != want:
                        tally.fail(f"{what}: the update lost or changed documents")
                except Exception as exc:
                    if not b.one_line_error(exc) or "repair" not in str(exc):
                        tally.fail(f"{what}: update: {type(exc).__name__}: {exc}")
                    if b.segment_count(idx) != len(names):
                        tally.fail(f"{what}: a refused update changed the index")
                try:
                    with fake_model():
                        done = repair_index(idx)
                except Exception as exc:
                    tally.fail(f"{what}: repair: {type(exc).__name__}: {exc}")
                    continue
                try:
                    if b.content_answer(idx) != want:
                        tally.fail(f"{what}: repaired index answers differently ({done})")
                    if verify_index(idx).damage:
                        tally.fail(f"{what}: the repaired index fails verify")
                except Exception as exc:
                    tally.fail(f"{what}: after repair: {type(exc).__name__}: {exc}")
    print(f"  corrupt segment: {len(names)} segments x {len(SEGMENT_FILES)} files x "
          f"{len(SEGMENT_KINDS)} kinds, each repaired", flush=True)  # fmt: skip
