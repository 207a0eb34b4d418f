"""What an import tells the person who asked for it: counts, and the lines it had to skip."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..words import counted

# Problems beyond this many are counted but not stored: a broken million-line file must not
# fill memory (or a results page) with a million identical reasons.
MAX_STORED_PROBLEMS = 1000
# How many problems the one-line summary names before saying "and N more".
SUMMARY_PROBLEMS = 3


class ArchiveError(Exception):
    """An archive that cannot be imported; the message names the file, the problem and the fix."""


class NotPosts(ArchiveError):
    """A file that holds no posts dnflow reads (empty, ids, other JSON, another format)."""


@dataclass
class ImportReport:
    lines_read: int = 0
    posts_seen: int = 0  # posts parsed, before dedup and filters
    duplicates: int = 0
    bad_lines: int = 0  # lines (or posts inside a line) that could not be read
    not_posts: int = 0  # valid JSON that is not a post: stream notices such as {"delete": ...}
    unavailable: int = 0  # posts left out because a recheck found X no longer gives them
    # Posts whose author has no name here: a tweets.js imported without its archive's account.js, a
    # v2 post whose author its page does not include. Counted, but under no author and in no network.
    authorless: int = 0
    unnamed_tweets_js: str = ""  # the first tweets.js imported without account.js, which would name its owner
    last_line: int = 0  # the number of the last line read, blank ones included
    problems: list[tuple[str, int, str]] = field(default_factory=list)  # (file name, line number, reason)
    sources: list[dict] = field(default_factory=list)  # what copy_archive copied: name, size, sha256, format
    skipped_files: list[str] = field(default_factory=list)  # files in a given folder that are not archives

    def add_problem(self, file_name: str, line: int, reason: str) -> None:
        """Count one unreadable line and keep its reason (up to MAX_STORED_PROBLEMS of them)."""
        self.bad_lines += 1
        if len(self.problems) < MAX_STORED_PROBLEMS:
            self.problems.append((file_name, line, reason))

    def summary(self) -> str:
        """One human sentence, e.g. "7 posts from 8 lines; skipped 1 malformed line: a.jsonl line 8: truncated JSON"."""
        parts = [f"{counted(self.posts_seen, 'post')} from {counted(self.lines_read, 'line')}"]
        if self.bad_lines:
            shown = self.problems[:SUMMARY_PROBLEMS]
            named = "; ".join(f"{name} line {line}: {reason}" for name, line, reason in shown)
            parts.append(f"skipped {counted(self.bad_lines, 'malformed line')}: {named}{_more(self.bad_lines, shown)}")
        if self.not_posts:
            parts.append(f"ignored {counted(self.not_posts, 'line')} of other messages (not posts)")
        if self.unavailable:
            parts.append(f"left out {counted(self.unavailable, 'post')} that X no longer gives (rechecked)")
        if self.skipped_files:
            shown = self.skipped_files[:SUMMARY_PROBLEMS]
            parts.append(
                f"left out {counted(len(self.skipped_files), 'file')} of the folder that "
                f"{'is' if len(self.skipped_files) == 1 else 'are'} not archives: {', '.join(shown)}"
                f"{_more(len(self.skipped_files), shown)}"
            )
        if self.duplicates:
            parts.append(f"ignored {counted(self.duplicates, 'duplicate post')}")
        if self.authorless:
            parts.append(f"{counted(self.authorless, 'post')} without the author's name{self._why_authorless()}")
        return "; ".join(parts)

    def _why_authorless(self) -> str:
        if not self.unnamed_tweets_js:
            return " (counted, but under no author and in no network)"
        return (
            f" ({self.unnamed_tweets_js} names none: Twitter's archive names its owner in data/account.js; "
            "import the archive's folder, or tweets.js and account.js together, to credit them)"
        )


def _more(total: int, shown: list) -> str:
    return f" and {total - len(shown):,} more" if total > len(shown) else ""
