"""Read one file into a :class:`Document`: regular files only, decoded carefully."""

from __future__ import annotations

import hashlib
import logging
import os
import stat as statmod
from pathlib import Path

from .document import Document

log = logging.getLogger("semsearch")

#: Bytes read to decide whether a file is binary (a NUL byte means binary, as git does).
_SNIFF = 8192


def file_stat(path: Path) -> tuple[int, int, int] | None:
    """``(size, mtime_ns, inode)`` of a regular file (symlinks followed), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not statmod.S_ISREG(st.st_mode):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def read_document(path: Path) -> Document | None:
    """Read a text file; binary, special and unreadable files are skipped (None) with a
    warning naming them. Bytes that are not UTF-8 are replaced (U+FFFD) rather than failing.
    """
    st = file_stat(path)
    if st is None:
        log.warning("skipping %s: not a regular file", path)
        return None
    try:
        # O_NONBLOCK: a file swapped for a FIFO between stat and open must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not statmod.S_ISREG(os.fstat(f.fileno()).st_mode):
                log.warning("skipping %s: not a regular file", path)
                return None
            data = f.read()
    except OSError as exc:
        log.warning("skipping %s: %s", path, exc.strerror or exc)
        return None
    if b"\x00" in data[:_SNIFF]:
        log.warning("skipping binary file %s", path)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s is not valid UTF-8; undecodable bytes replaced", path)
        text = data.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    source = str(path)
    # A file's identity is the hash of its bytes, so change detection never has to decode.
    return Document(doc_id=source, source=source, text=text, sha256=_sha256(data), stat=st)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
