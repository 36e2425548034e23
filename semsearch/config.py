"""Every environment variable and default path semsearch uses, read here and nowhere else.

The parts below (embedders, caches, stores) take paths as arguments; the edges (the CLI,
the API's defaults, the servers) call :func:`load` once per operation and pass them down, so
a test or an embedding application can point everything elsewhere without touching the
environment.

    SEMSEARCH_INDEX          default index directory   [$XDG_DATA_HOME/semsearch/index]
    SEMSEARCH_CACHE          cache root                [$XDG_CACHE_HOME/semsearch]
    SEMSEARCH_MODEL_CACHE    ONNX exports              [<cache root>/onnx]
    SEMSEARCH_RUNTIME        auto | onnx | torch       [auto]
    SEMSEARCH_TOKEN          bearer token for ``semsearch serve`` on a non-loopback address
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

RUNTIMES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class Config:
    """Resolved settings of one process (or one test)."""

    index_dir: Path
    cache_dir: Path
    model_cache: Path
    runtime: str
    token: str | None

    @property
    def embedding_cache(self) -> Path:
        return self.cache_dir / "embeddings.sqlite"

    @property
    def eval_cache(self) -> Path:
        return self.cache_dir / "eval"


def load(env: Mapping[str, str] | None = None) -> Config:
    """Resolve the configuration from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    data = _dir(env, "XDG_DATA_HOME", home / ".local" / "share")
    caches = _dir(env, "XDG_CACHE_HOME", home / ".cache")
    cache_dir = _dir(env, "SEMSEARCH_CACHE", caches / "semsearch")
    runtime = env.get("SEMSEARCH_RUNTIME") or "auto"
    if runtime not in RUNTIMES:
        raise UsageError(f"SEMSEARCH_RUNTIME={runtime!r} is not one of {', '.join(RUNTIMES)}")
    return Config(
        index_dir=_dir(env, "SEMSEARCH_INDEX", data / "semsearch" / "index"),
        cache_dir=cache_dir,
        model_cache=_dir(env, "SEMSEARCH_MODEL_CACHE", cache_dir / "onnx"),
        runtime=runtime,
        token=env.get("SEMSEARCH_TOKEN") or None,
    )


def _dir(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    if not value:
        return default
    path = Path(value).expanduser()
    if name.startswith("XDG_") and not path.is_absolute():
        return default  # the XDG spec: relative values are invalid and ignored
    return path


def bundled_seeds() -> Path:
    """The sample articles shipped with the package (or the checkout's ``seeds/``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_seeds", here.parent / "seeds"):
        if candidate.is_dir():
            return candidate
    raise UsageError("the bundled seed documents are missing from this installation")
