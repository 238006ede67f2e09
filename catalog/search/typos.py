"""Typo tolerance: the catalog's own words, and the nearest of them to a word it does not know.

The vocabulary is every word the search index holds (SQLite: fts5vocab; PostgreSQL: ts_stat),
loaded into memory once per process and database and reloaded when the catalog changes: triggers
write a new value to catalog_search_state.generation on every indexed change, and each search
reads it (one tiny query). Reloading costs time on a large catalog, so while a catalog keeps
changing (an import running) a process whose last load took over `_CHEAP_LOAD_SECONDS` reloads at
most once per `_RELOAD_FACTOR` × that duration. A word added meanwhile is still found as typed,
only not yet as the correction of a typo (a query word is always searched as typed too).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

_MIN_LENGTH = 4  # shorter words have too many neighbours one edit away
_RELOAD_FACTOR = 20
_CHEAP_LOAD_SECONDS = 0.05  # a load this quick is simply repeated on every change


class Vocabulary:
    """Indexed words with their document frequency; corrects unknown words by edit distance."""

    def __init__(self, words: Iterable[tuple[str, int]]) -> None:
        self.doc_freq: dict[str, int] = {}
        for word, count in words:
            if word.isalpha():
                self.doc_freq[word] = self.doc_freq.get(word, 0) + count
        self._sorted = sorted(self.doc_freq)
        self._by_length: dict[int, list[str]] = {}
        for word in self._sorted:
            self._by_length.setdefault(len(word), []).append(word)

    def __len__(self) -> int:
        return len(self.doc_freq)

    def has(self, word: str) -> bool:
        """The word is indexed (numbers count as indexed: they are never corrected)."""
        return word in self.doc_freq or not word.isalpha()

    def completions(self, prefix: str, *, limit: int) -> list[str]:
        """Up to `limit` indexed words starting with `prefix` (at least 4 letters), most used first."""
        if len(prefix) < _MIN_LENGTH:
            return []
        start = bisect.bisect_left(self._sorted, prefix)
        end = bisect.bisect_left(self._sorted, prefix + "\U0010ffff", lo=start)
        found = self._sorted[start:end]
        return sorted(found, key=lambda word: (-self.doc_freq[word], word))[:limit]

    def correct(self, word: str) -> str | None:
        """The indexed word nearest to an unknown `word`, or None when it is known, too short or
        nothing is near. Near: one edit (a transposition counts as one) for words of up to five
        letters, two for longer ones; ties go to the word more products use."""
        if len(word) < _MIN_LENGTH or self.has(word) or self.completions(word, limit=1):
            return None
        most = 1 if len(word) <= 5 else 2
        best: tuple[int, int, str] | None = None
        for length in range(len(word) - most, len(word) + most + 1):
            choices = self._by_length.get(length)
            if not choices:
                continue
            for choice, distance, _ in process.extract(
                word, choices, scorer=OSA.distance, score_cutoff=most, limit=None
            ):
                key = (int(distance), -self.doc_freq[choice], choice)
                if best is None or key < best:
                    best = key
        return best[2] if best else None


@dataclass
class _Cached:
    generation: object
    loaded_at: float
    load_seconds: float
    vocabulary: Vocabulary


_cache: dict[str, _Cached] = {}
_lock = threading.Lock()


def vocabulary_get(
    *, key: str, generation: Callable[[], object], load: Callable[[], Iterable[tuple[str, int]]]
) -> Vocabulary:
    """The cached vocabulary for database `key`, reloaded through `load` when `generation()`
    differs from the one it was loaded at (see the module docstring for the rate limit)."""
    current = generation()
    cached = _cache.get(key)
    if cached is not None and (cached.generation == current or _too_soon(cached)):
        return cached.vocabulary
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.generation == current:
            return cached.vocabulary
        started = time.monotonic()
        vocabulary = Vocabulary(load())
        finished = time.monotonic()
        _cache[key] = _Cached(current, finished, finished - started, vocabulary)
        return vocabulary


def _too_soon(cached: _Cached) -> bool:
    if cached.load_seconds < _CHEAP_LOAD_SECONDS:
        return False
    return time.monotonic() - cached.loaded_at < cached.load_seconds * _RELOAD_FACTOR


def vocabulary_forget() -> None:
    """Drop every cached vocabulary (the next search reloads it)."""
    with _lock:
        _cache.clear()
