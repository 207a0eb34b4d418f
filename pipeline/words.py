"""Counts in words: "1 post", "2,431 posts", the same everywhere dnflow speaks."""

from __future__ import annotations


def counted(count: int, word: str, many: str | None = None) -> str:
    """`count` and the word, singular for 1 and plural otherwise (`many`, else the word with an s)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
