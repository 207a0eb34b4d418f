"""Archives in every common format, into one normalised record per post.

- `copy_archive` copies what a person brought (files or folders, gzipped or not) into a
  search's raw `tweets.jsonl`, one JSON document per line, untouched, within a size limit.
- `check_archive_start` (a path) and `check_archive_upload` (an open file) refuse, from its
  first bytes, what the copy would refuse.
- `iter_posts` reads a raw file, parsing each line once, and yields a `Post` per top-level post.
- `iter_collection` is the collection: distinct posts matching the search's term, language and
  time window.

The mapping from each format to `Post` follows `../shared/spec/outputs.md` ("The collection").
"""

from .copying import copy_archive
from .limits import DEFAULT_MAX_ARCHIVE_BYTES
from .reading import iter_collection, iter_posts
from .report import ArchiveError, ImportReport
from .start import check_archive_start, check_archive_upload

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "ArchiveError",
    "ImportReport",
    "check_archive_start",
    "check_archive_upload",
    "copy_archive",
    "iter_collection",
    "iter_posts",
]
