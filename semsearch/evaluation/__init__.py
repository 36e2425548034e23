"""Measuring ranking quality on labelled BEIR collections (``semsearch eval``)."""

from .beir import BeirCollection, BeirDoc, BeirQuery, load_beir
from .metrics import evaluate
from .run import EvalReport, ModeScores, run_eval

__all__ = [
    "BeirCollection",
    "BeirDoc",
    "BeirQuery",
    "EvalReport",
    "ModeScores",
    "evaluate",
    "load_beir",
    "run_eval",
]
