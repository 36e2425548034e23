"""A fingerprint of everything discovery can see under an index's roots, so an unchanged
tree is recognised with one ``stat`` per entry and no discovery, hashing or database read.

Discovery (ignore files, globs, size limits, hidden names) and the stat-first plan are the
authority on what changed; they cost far more per file in Python than the system calls
underneath. So when a full check finds the tree in sync with the live generation, the
fingerprint of the tree taken just *before* that check is remembered beside the index
(``FRESH``, keyed by the generation's pointer and the semsearch version). A later check whose
fingerprint, pointer and version are the same knows the answer without asking again: every
name, size, mtime and inode discovery could look at is as it was. Any difference, however
small (a swap file written, a folder's mtime moved), falls back to the full check.

What goes in: for each root, the stat of its ancestors' ignore files and ``.git`` (git applies
rules from above the root); then every folder below it, not following symlinked folders and
not entering hidden ones or semsearch index folders (discovery enters none of those), with
the folder's own mtime and, sorted by name, every entry's name, size, mtime, inode and type
(symlinks followed, as discovery follows them; an entry that cannot be stat'ed counts by its
error). Taking it before the full check makes it conservative: a change that lands between
the two makes the next fingerprint differ, never match wrongly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat as statmod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..store.manifest import FRESH
from ..util import read_json_object, write_atomic

log = logging.getLogger("semsearch")

_RULE_NAMES = (".gitignore", ".semsearchignore", ".git")


def fingerprint(bases: Sequence[str]) -> str:
    """Digest of the trees under ``bases`` (folders, files or missing paths)."""
    h = hashlib.blake2b(digest_size=20)
    for base in bases:
        h.update(f"root\0{base}\n".encode())
        for parent in Path(base).parents:
            for name in _RULE_NAMES:
                _entry(h, str(parent / name), name)
        try:
            st = os.stat(base)
        except OSError as exc:
            h.update(f"!{exc.errno}\n".encode())
            continue
        if statmod.S_ISDIR(st.st_mode):
            _walk(h, base)
        else:
            _stat_line(h, base, st)
    return h.hexdigest()


def _walk(h: Any, top: str) -> None:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            h.update(f"dir\0{folder}\0!{exc.errno}\n".encode())
            continue
        rows: list[object] = [folder, st.st_mtime_ns, st.st_ino]
        for e in entries:
            try:
                real_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                real_dir = False
            if real_dir:
                rows.append(e.name)
                if not e.name.startswith(".") and not _is_index(e.path):
                    stack.append(e.path)
                continue
            try:
                s = e.stat()  # follows symlinks, as discovery does
            except OSError as exc:
                rows.append((e.name, exc.errno))
                continue
            rows.append((e.name, s.st_size, s.st_mtime_ns, s.st_ino, statmod.S_IFMT(s.st_mode)))
        h.update(repr(rows).encode())


def _entry(h: Any, path: str, name: str) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        h.update(f"{name}\0!{exc.errno}\n".encode())
        return
    _stat_line(h, name, st)


def _stat_line(h: Any, name: str, st: os.stat_result) -> None:
    kind = statmod.S_IFMT(st.st_mode)
    h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{kind}\n".encode())


def _is_index(path: str) -> bool:
    from ..ingest.discover import is_index_dir

    return is_index_dir(Path(path))


def key(pointer: Sequence[str], roots: Sequence[str]) -> str:
    """What a remembered fingerprint is valid for: this generation, these roots, this
    version of the discovery rules."""
    return json.dumps([list(pointer), list(roots), __version__])


def remembered(index_path: Path, k: str) -> dict[str, Any] | None:
    """The remembered in-sync record for key ``k``, if there is one."""
    data = read_json_object(index_path / FRESH)
    if data is None or data.get("key") != k or not isinstance(data.get("fingerprint"), str):
        return None
    counts = (data.get("unchanged"), data.get("skipped"))
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return None
    return data


def remember(index_path: Path, k: str, digest: str, unchanged: int, skipped: int) -> None:
    """Record that the tree with fingerprint ``digest`` is in sync (best effort: an index
    folder this process cannot write to just keeps taking the full check)."""
    record = {"key": k, "fingerprint": digest, "unchanged": unchanged, "skipped": skipped}
    try:
        write_atomic(index_path / FRESH, json.dumps(record).encode())
    except OSError as exc:
        log.debug("cannot remember the freshness check in %s: %s", index_path, exc)
