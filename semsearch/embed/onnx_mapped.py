"""The exported model with its weights in a file of their own, which ONNX Runtime maps.

A session made from one ``model.onnx`` parses and copies every weight out of the protobuf:
most of the ~0.1 s a cold query waited for its session, and in proportion to the file's size
(the int8 export's fp32 word-embedding table is 47 of its 58 MB). The same graph with its
initializers stored as external data is made in a fraction of that (docs/front-door.md,
stop 30). It is the same graph and the same weights, only stored apart, so the vectors are
bit-identical (tested).

The copy is derived from ``model.onnx`` once, beside it, in a folder named by that file's
size and modification time: a re-export makes a new one and the stale one is removed. A cache
that cannot be written is used as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ..util import scratch_dir

#: Initializers at least this large go to the weights file (all but a few scalars and shapes).
_MIN_EXTERNAL_BYTES = 1024
_PREFIX = "mapped-"
_WEIGHTS = "weights.bin"


def mapped_model(model: Path) -> Path | None:
    """The mapped copy of ``model`` when it has been made, else None (one ``stat``)."""
    try:
        found = _folder(model) / model.name
    except OSError:
        return None
    return found if found.is_file() else None


def ensure_mapped(model: Path) -> Path:
    """The mapped copy of ``model``, made first when missing; ``model`` itself when the copy
    cannot be made (a read-only cache, a file ``onnx`` cannot read)."""
    found = mapped_model(model)
    if found is not None:
        return found
    if not os.access(model.parent, os.W_OK):
        return model
    try:
        return _make(model)
    except Exception:  # the model is still usable as it is; its own load reports what is wrong
        return model


def discard_mapped(mapped: Path) -> None:
    """Remove a mapped copy that failed to load (best effort)."""
    shutil.rmtree(mapped.parent, ignore_errors=True)


def _folder(model: Path) -> Path:
    st = model.stat()
    return model.parent / f"{_PREFIX}{st.st_size}-{st.st_mtime_ns}"


def _make(model: Path) -> Path:
    """Write the copy into a temporary folder of its own and rename it into place (atomic; a
    concurrent maker's identical copy may win), then remove copies of earlier exports. The
    folder is this call's alone: two sessions made at once in one process had shared one, and
    one could map weights the other was still writing (wrong vectors, no error)."""
    import onnx  # only once per export

    final = _folder(model)
    with scratch_dir(model.parent, _PREFIX) as tmp:
        proto = onnx.load(str(model))
        onnx.save_model(
            proto, str(tmp / model.name), save_as_external_data=True,
            all_tensors_to_one_file=True, location=_WEIGHTS, size_threshold=_MIN_EXTERNAL_BYTES,
        )  # fmt: skip
        with contextlib.suppress(OSError):  # another process renamed its copy first
            tmp.rename(final)
    for old in model.parent.glob(f"{_PREFIX}*"):
        if old != final:  # a process still running on it keeps its mapped file open
            shutil.rmtree(old, ignore_errors=True)
    return mapped_model(model) or model
