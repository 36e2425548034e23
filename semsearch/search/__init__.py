"""Searching: dense, keyword and hybrid candidates, fused and shaped into a page of hits."""

from .retrieve import CANDIDATES, DEFAULT_MODE, MAX_K, MODES, Mode, Options, Ranked, retrieve

__all__ = ["CANDIDATES", "DEFAULT_MODE", "MAX_K", "MODES", "Mode", "Options", "Ranked", "retrieve"]
