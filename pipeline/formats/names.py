"""Which files of a folder, or members of a ZIP, an import reads: by their names.

Twitter's "download your archive" keeps its posts in data/tweets.js (tweet.js in some years,
tweets-part1.js and on when there are many), beside account.js and manifest.js; the rest of it
(likes, direct messages, media) is not the owner's posts. Any other folder: the files with the
endings archives have. pipeline.formats.copying applies this to folders, pipeline.formats.zipped
to ZIP files.
"""

from __future__ import annotations

import re

# Inside a folder, files with these endings are imported; others (a README, twarc.log) are not.
FOLDER_SUFFIXES = (".jsonl", ".ndjson", ".jl", ".json", ".js", ".gz", ".txt")
# Twitter's "download your archive" names its posts data/tweets.js, tweet.js or tweets-part1.js.
TWEETS_JS_NAME = re.compile(r"^tweets?(-part\d+)?\.js$")
# Files only Twitter's archive has: the folder holding one is such an archive.
ARCHIVE_MARKERS = ("account.js", "manifest.js")
# How far into a .txt file maybe_posts looks.
TXT_SNIFF = 4096


def maybe_posts(name: str, start: bytes) -> bool:
    """Whether a file of a folder (or ZIP) may hold posts, by its name and first TXT_SNIFF bytes.

    A .txt file does when it starts as JSON does (some people save JSON lines as .txt); a README.txt
    or notes.txt beside the archive do not, and are left out as a README.md is, instead of stopping
    the import. Other endings are judged by their name alone.
    """
    if not name.lower().endswith(".txt"):
        return True
    start = start.removeprefix(b"\xef\xbb\xbf").lstrip()
    return start[:1] in (b"{", b"[") or start.startswith(b"\x1f\x8b")
