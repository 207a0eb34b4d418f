"""The fast way to read a v1.1 tweet: typed decoding of only the fields a Post needs.

orjson builds a dict for every object of a line, the author's profile colours and the streaming
envelope included, and most of a real v1.1 tweet is fields nobody counts. msgspec decodes a line
straight into the small structs below and skips every other field in C, which takes about half
the time of a full parse.

The result must be the very Post that `normalise.post_from_v1` makes of `orjson.loads(line)`, so
the structs are strict: a field of any type other than the ones the common shapes use (a count
as text, an id as a float, an entity that is not an object, ...) fails the decoding, and such a
line goes the general way (orjson, then `post_from_v1`). So does a line that orjson would refuse
but a skipping decoder would not see the fault of (invalid UTF-8 in a field that is skipped: see
`read_v1`), an integer orjson would read as a float, and any line that is not a plain v1.1 tweet.
The one difference left: a number beyond the range of a double (1e400) in a field dnflow does not
read makes orjson refuse the whole line, and is skipped here, so the post is read. No export writes
one, but a damaged byte can (an "e" in a long id): tests/test_typed_decoding.py says how often.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from pipeline.records import Post

from .normalise import _MONTHS, _str_id, iso_utc

# orjson reads an integer past 64 bits as a float, which the general way treats otherwise (the
# bounds are int64's: msgspec checks no wider ones; the rare ids above it go the general way too).
Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class _Tag(Struct, gc=False):
    text: str | None | UnsetType = UNSET


class _Mention(Struct, gc=False):
    screen_name: str | None | UnsetType = UNSET


class _Url(Struct, gc=False):
    expanded_url: str | None | UnsetType = UNSET
    url: str | None | UnsetType = UNSET


class _Media(Struct, gc=False):
    type: str | None | UnsetType = UNSET
    media_url_https: str | None | UnsetType = UNSET
    media_url: str | None | UnsetType = UNSET


class _Entities(Struct, gc=False):
    hashtags: list[_Tag] | None | UnsetType = UNSET
    user_mentions: list[_Mention] | None | UnsetType = UNSET
    urls: list[_Url] | None | UnsetType = UNSET
    media: list[_Media] | None | UnsetType = UNSET


class _MediaOnly(Struct, gc=False):
    media: list[_Media] | None | UnsetType = UNSET


class _Extended(Struct, gc=False):
    full_text: str | None | UnsetType = UNSET
    entities: _Entities | None | UnsetType = UNSET
    extended_entities: _MediaOnly | None | UnsetType = UNSET


class _OriginalExtended(Struct, gc=False):
    full_text: str | None | UnsetType = UNSET
    extended_entities: _MediaOnly | None | UnsetType = UNSET


class _User(Struct, gc=False):
    screen_name: str | None | UnsetType = UNSET
    followers_count: Int | None | UnsetType = UNSET
    friends_count: Int | None | UnsetType = UNSET


class _OriginalUser(Struct, gc=False):
    screen_name: str | None | UnsetType = UNSET


class _Quoted(Struct, gc=False):
    id_str: str | Int | None | UnsetType = UNSET


class _Original(Struct, gc=False):
    """The retweeted original: what a retweet's Post takes from it."""

    id_str: str | Int | None | UnsetType = UNSET
    id: str | Int | None | UnsetType = UNSET
    created_at: str | None | UnsetType = UNSET
    full_text: str | None | UnsetType = UNSET
    text: str | None | UnsetType = UNSET
    user: _OriginalUser | None | UnsetType = UNSET
    entities: _MediaOnly | None | UnsetType = UNSET
    extended_entities: _MediaOnly | None | UnsetType = UNSET
    extended_tweet: _OriginalExtended | None | UnsetType = UNSET


class _Tweet(Struct, gc=False):
    id_str: str | Int | None | UnsetType = UNSET
    id: str | Int | None | UnsetType = UNSET
    created_at: str | None | UnsetType = UNSET
    full_text: str | None | UnsetType = UNSET
    text: str | None | UnsetType = UNSET
    lang: str | None | UnsetType = UNSET
    user: _User | None | UnsetType = UNSET
    entities: _Entities | None | UnsetType = UNSET
    extended_entities: _MediaOnly | None | UnsetType = UNSET
    extended_tweet: _Extended | None | UnsetType = UNSET
    retweeted_status: _Original | None | UnsetType = UNSET
    quoted_status_id_str: str | Int | None | UnsetType = UNSET
    quoted_status: _Quoted | None | UnsetType = UNSET
    retweet_count: Int | None | UnsetType = UNSET
    favorite_count: Int | None | UnsetType = UNSET
    reply_count: Int | None | UnsetType = UNSET
    quote_count: Int | None | UnsetType = UNSET
    in_reply_to_status_id_str: str | Int | None | UnsetType = UNSET
    in_reply_to_status_id: str | Int | None | UnsetType = UNSET
    in_reply_to_screen_name: str | None | UnsetType = UNSET
    # Keys that make a line something other than a plain v1.1 tweet (see reading._is_v1_tweet).
    data: Any = UNSET
    statuses: Any = UNSET
    tweet: Any = UNSET


_decode = msgspec.json.Decoder(_Tweet).decode
# Malformed, of a shape of its own (ValidationError is a DecodeError), or a field read here that
# is not UTF-8 (UnicodeDecodeError, a ValueError).
_REFUSED = (msgspec.DecodeError, ValueError)


def _media(tweet: _Tweet | _Original) -> list[_Media]:
    """normalise._v1_media on the structs."""
    extended = tweet.extended_tweet
    if extended:
        outer = extended.extended_entities
        if outer and outer.media:
            return outer.media
    outer = tweet.extended_entities
    media = outer.media if outer else None
    if media:
        return media
    entities = tweet.entities
    return (entities.media if entities else None) or []


def read_v1(line: bytes) -> Post | None:
    """The Post of a line holding a plain v1.1 tweet, or None: the line is to be read the general way.

    Equal to post_from_v1(orjson.loads(line)) wherever it is not None, for a post with an id, a
    time and an author (anything else goes the general way, which says what is missing).
    """
    try:
        tweet = _decode(line)
    except _REFUSED:
        return None
    user = tweet.user
    if (
        not user
        or (tweet.id_str is UNSET and tweet.id is UNSET)
        or tweet.data is not UNSET
        or tweet.statuses is not UNSET
        or tweet.tweet is not UNSET
    ):
        return None
    # A skipped field is not checked for UTF-8; orjson refuses the whole line for one bad byte.
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    screen_name = user.screen_name
    if not screen_name:
        return None  # the general way tells whether the author is known by id
    created_at = tweet.created_at
    # iso_utc's own fast case, inline: v1.1's "Wed Oct 10 20:19:24 +0000 2018".
    if type(created_at) is str and len(created_at) == 30 and created_at[19:26] == " +0000 ":
        month = _MONTHS.get(created_at[4:7])
        if month is None:
            created_at = iso_utc(created_at)
        else:
            created_at = f"{created_at[26:30]}-{month}-{created_at[8:10]}T{created_at[11:19]}+00:00"
    else:
        created_at = iso_utc(created_at)
    post_id = tweet.id_str
    if not (type(post_id) is str and post_id.isdigit() and post_id.isascii()):
        post_id = _str_id(tweet.id)
    if not (post_id and created_at):
        return None

    extended = tweet.extended_tweet
    entities = extended.entities if extended else None
    if not entities:
        entities = tweet.entities
    if extended or tweet.extended_entities:
        media = _media(tweet)
    else:  # the common case of _media
        top = tweet.entities
        media = (top.media if top else None) or []
    original = tweet.retweeted_status
    if not original:
        text = (extended.full_text if extended else None) or tweet.full_text or tweet.text or ""
    else:
        original_user = original.user
        original_user = (original_user.screen_name or "") if original_user else ""
        original_extended = original.extended_tweet
        original_text = (
            (original_extended.full_text if original_extended else None) or original.full_text or original.text or ""
        )
        text = f"RT @{original_user}: {original_text}"
        media = _media(original) or media

    followers = user.followers_count
    following = user.friends_count
    quoted = tweet.quoted_status_id_str
    if not quoted:
        quoted_status = tweet.quoted_status
        if quoted_status:
            quoted = quoted_status.id_str
    # Most posts are no quotes and no replies: their absent ids skip _str_id.
    quoted_id = "" if quoted is None or quoted is UNSET else _str_id(quoted)
    reply_to, reply_to_number = tweet.in_reply_to_status_id_str, tweet.in_reply_to_status_id
    if (reply_to is None or reply_to is UNSET) and (reply_to_number is None or reply_to_number is UNSET):
        reply_to = ""
    else:
        reply_to = _str_id(reply_to) or _str_id(reply_to_number)
    in_reply_to_user = tweet.in_reply_to_screen_name
    if entities:
        hashtags, mentions, urls = entities.hashtags, entities.user_mentions, entities.urls
    else:
        hashtags = mentions = urls = None
    post = Post(
        post_id,
        created_at,
        screen_name,
        None if followers is UNSET else followers,
        None if following is UNSET else following,
        text,
        tweet.lang or "",
        tweet.retweet_count or 0,
        tweet.favorite_count or 0,
        tweet.reply_count or 0,
        tweet.quote_count or 0,
        (_str_id(original.id_str) or _str_id(original.id)) if original else "",
        "",
        "",
        "",
        quoted_id,
        reply_to,
        in_reply_to_user or "",
        [tag.text for tag in hashtags if tag.text] if hashtags else [],
        [name.screen_name for name in mentions if name.screen_name] if mentions else [],
        [url for item in urls if (url := item.expanded_url or item.url)] if urls else [],
        [url for item in media if item.type == "photo" and (url := item.media_url_https or item.media_url)]
        if media
        else [],
        bool(media),
        "v1",
    )
    if original:
        post.retweeted_created_at = iso_utc(original.created_at)
        post.retweeted_user = original_user
        post.retweeted_text = original_text
    return post
