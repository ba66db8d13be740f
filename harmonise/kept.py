"""Bounded memos of a long-lived process (the validation server, a test session): results kept by a
digest of what they follow from, so a kept result is never stale; the oldest go first."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` in ``memo``, first dropping its oldest entries so that at most
    ``limit`` are kept; returns ``value``."""
    memo.pop(key, None)
    while memo and len(memo) >= limit:
        del memo[next(iter(memo))]
    memo[key] = value
    return value
