"""Key-pattern sampling as plain data: which pattern a key belongs to, and what one SCAN pass found.

Patterns use Redis's glob syntax (as ``SCAN MATCH`` and ``KEYS``): ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` and ``\\`` to escape. A key belongs to the first configured pattern it matches, else to ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

OTHER = "other"


def glob_regex(pattern: str) -> re.Pattern[bytes]:
    """The Redis glob ``pattern`` as a regular expression over key bytes (matched with ``fullmatch``)."""
    raw = pattern.encode()
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < len(raw):
            i += 1
            out.append(re.escape(raw[i:i + 1]))
        elif c == b"[" and b"]" in raw[i + 1:]:
            i, klass = _char_class(raw, i + 1)
            out.append(klass)
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out), re.DOTALL)


def _char_class(raw: bytes, i: int) -> tuple[int, bytes]:
    """Parse ``[...]`` from after its ``[``; returns the index of the closing ``]`` and the regex class."""
    negate = raw[i:i + 1] == b"^"
    if negate:
        i += 1
    members: list[bytes] = []
    while i < len(raw) and raw[i:i + 1] != b"]":
        if raw[i:i + 1] == b"\\" and i + 1 < len(raw):
            i += 1
            members.append(re.escape(raw[i:i + 1]))
        elif i + 2 < len(raw) and raw[i + 1:i + 2] == b"-" and raw[i + 2:i + 3] != b"]":
            low, high = sorted((raw[i], raw[i + 2]))  # Redis accepts reversed ranges such as [z-a]
            members.append(re.escape(bytes([low])) + b"-" + re.escape(bytes([high])))
            i += 2
        else:
            members.append(re.escape(raw[i:i + 1]))
        i += 1
    body = b"".join(members)
    if not body:
        return i, b"[^\\s\\S]" if not negate else b"[\\s\\S]"
    return i, b"[" + (b"^" if negate else b"") + body + b"]"


class KeyClassifier:
    """Names the pattern a key belongs to: the first that matches, in configured order, else ``other``."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self._compiled = [(p, glob_regex(p)) for p in self.patterns]

    @property
    def labels(self) -> list[str]:
        return [*self.patterns, OTHER]

    def classify(self, key: bytes) -> str:
        for pattern, regex in self._compiled:
            if regex.fullmatch(key):
                return pattern
        return OTHER


@dataclass
class PatternStats:
    """What one pass saw of one pattern's keys."""

    keys: int = 0
    without_ttl: int = 0
    memory_bytes: float = 0.0
    memory_samples: int = 0

    @property
    def without_ttl_ratio(self) -> float | None:
        return self.without_ttl / self.keys if self.keys else None

    @property
    def mean_memory_bytes(self) -> float | None:
        return self.memory_bytes / self.memory_samples if self.memory_samples else None


@dataclass
class ScanPass:
    """Aggregates of one walk of the keyspace, which may span many collections."""

    patterns: dict[str, PatternStats] = field(default_factory=dict)

    def stats(self, pattern: str) -> PatternStats:
        found = self.patterns.get(pattern)
        if found is None:
            found = self.patterns[pattern] = PatternStats()
        return found

    def add_key(self, pattern: str, ttl_seconds: float | None) -> None:
        """A key that exists, with its remaining TTL (None: it never expires)."""
        stats = self.stats(pattern)
        stats.keys += 1
        if ttl_seconds is None:
            stats.without_ttl += 1

    def add_memory(self, pattern: str, size: float) -> None:
        stats = self.stats(pattern)
        stats.memory_bytes += size
        stats.memory_samples += 1


PTTL_GONE = -2  # PTTL's reply for a key that does not exist (any more)
PTTL_NO_EXPIRY = -1


def pttl_seconds(pttl: int) -> float | None:
    """A ``PTTL`` reply of an existing key as seconds left, or None for a key that never expires."""
    if pttl == PTTL_NO_EXPIRY:
        return None
    return max(pttl, 0) / 1000.0


@dataclass
class ScanCursor:
    """Where the SCAN walk is, across collections, and the keys SCAN returned beyond the last budget.

    SCAN's COUNT is a hint: a reply may hold more keys than asked. Those wait here for the next collection, so
    each collection looks at no more than its budget, and no key of the pass is skipped.
    """

    cursor: int = 0
    pending: list[bytes] = field(default_factory=list)
    walk_done: bool = False  # SCAN returned cursor 0: the pass ends once `pending` is empty

    def take(self, budget: int) -> list[bytes]:
        batch, self.pending = self.pending[:budget], self.pending[budget:]
        return batch

    def receive(self, cursor: int, keys: Iterable[bytes], batch: list[bytes], budget: int) -> None:
        """Record one SCAN reply: keys go into ``batch`` up to ``budget``, the rest wait in ``pending``."""
        self.cursor = cursor
        for key in keys:
            if len(batch) < budget:
                batch.append(key)
            else:
                self.pending.append(key)
        if cursor == 0:
            self.walk_done = True

    @property
    def pass_complete(self) -> bool:
        return self.walk_done and not self.pending

    def start_next_pass(self) -> None:
        self.cursor = 0
        self.walk_done = False
