"""Do misspelled queries still find their target? Hit rates on the bundled seeds.

For every sentence of the seed articles with enough words, the query is its three longest
distinct words; the target is the chunk holding that sentence. Each query is run as
typed and with one typo (a deleted, swapped, replaced or inserted letter inside its
longest word, seeded), and the top hit is checked. Only the public API is used, so the
same script measures any version of semsearch:

    python benchmarks/typo_hits.py            # prints one line per mode
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
STOP = set("about after again against also because been being between could their there these "
           "those through under until which while would should other where".split())  # fmt: skip


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["delete", "swap", "replace", "insert"])
    letters = "abcdefghijklmnopqrstuvwxyz"
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "replace":
        return word[:i] + rng.choice(letters.replace(word[i], "")) + word[i + 1 :]
    return word[:i] + rng.choice(letters) + word[i:]


def cases() -> list[tuple[str, str, str]]:
    """(clean query, misspelled query, sentence) for each usable seed sentence."""
    rng = random.Random(0)
    out = []
    for f in sorted(SEEDS.glob("*.txt")):
        for sentence in re.split(r"(?<=[.!?])\s+", f.read_text(encoding="utf-8")):
            words = [w for w in re.findall(r"[A-Za-z]+", sentence) if len(w) >= 5]
            words = list(dict.fromkeys(w for w in words if w.lower() not in STOP))
            if len(words) < 3:
                continue
            picked = sorted(words, key=len, reverse=True)[:3]
            bad = [typo(picked[0], rng), *picked[1:]]
            out.append((" ".join(picked), " ".join(bad), sentence.strip()))
    return out


def main() -> None:
    from semsearch import SemanticIndex

    with tempfile.TemporaryDirectory() as tmp:
        index = SemanticIndex(path=Path(tmp) / "ix")
        index.add_paths([SEEDS])
        queries = cases()
        for mode in ("dense", "keyword", "hybrid"):
            rates = []
            for column in (0, 1):
                found = 0
                for case in queries:
                    hits = index.search(case[column], k=1, mode=mode)  # type: ignore[arg-type]
                    found += bool(hits) and case[2] in hits[0].text
                rates.append(found / len(queries))
            print(
                f"{mode:<8} hit@1 as typed {rates[0]:.3f}  with one typo {rates[1]:.3f}"
                f"  ({len(queries)} queries)"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
