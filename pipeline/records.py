"""The one normalised record per post that every analysis reads.

Each input format (v1.1 tweets, v2 response pages, twarc2 flattened lines, Twitter's own
archive) is understood in exactly one place, `pipeline.formats`, which turns it into `Post`s;
nothing downstream looks at raw JSON. Field rules: `../shared/spec/outputs.md`.

A msgspec Struct rather than a dataclass: one is made per post read, and a Struct is made in C
(a slotted dataclass runs its __init__ in Python: 0.3 µs a post). It is not tracked by the cyclic
garbage collector (gc=False): a Post holds strings, numbers and lists of strings, never a cycle.
"""

from __future__ import annotations

from msgspec import Struct


class Post(Struct, gc=False):
    id: str
    created_at: str = ""  # ISO 8601 in UTC, e.g. 2023-01-31T12:00:00+00:00; "" if unknown
    user: str = ""  # author screen name, as given
    followers: int | None = None  # author's followers in this post's snapshot of the user
    following: int | None = None
    text: str = ""  # full text, never the truncated form
    lang: str = ""
    retweet_count: int = 0
    like_count: int = 0
    reply_count: int = 0
    quote_count: int = 0
    retweeted_id: str = ""  # the original this post retweets, "" if none
    # The retweeted original as the retweet carries it (v1.1 retweeted_status, v2 includes.tweets,
    # twarc2's inlined reference): "" where the post is no retweet or the copy is missing.
    retweeted_created_at: str = ""  # ISO 8601 in UTC
    retweeted_user: str = ""  # the original's author's screen name
    retweeted_text: str = ""  # its full text
    quoted_id: str = ""
    in_reply_to_id: str = ""
    in_reply_to_user: str = ""  # screen name replied to, for the `to:` operator, "" if unknown
    hashtags: list[str] = []  # as given (not lower-cased), without '#'
    mentions: list[str] = []  # screen names as given, without '@'
    urls: list[str] = []  # expanded URLs, the post's own media links removed
    photos: list[str] = []  # photo URLs (of the original, for a retweet)
    has_media: bool = False  # any attached media, photo or not (for `has:media`)
    source_format: str = ""  # v1, v2, twarc2, tweets.js

    @property
    def is_retweet(self) -> bool:
        return bool(self.retweeted_id)

    @property
    def is_reply(self) -> bool:
        return bool(self.in_reply_to_id)

    @property
    def original_id(self) -> str:
        """The post this one counts towards in retweets.csv: what it retweets, else itself."""
        return self.retweeted_id or self.id
