"""Turn one tweet of any supported format into a `Post`, following the binding table in
`../shared/spec/outputs.md` ("The collection").

The functions here see one already-parsed tweet and the lookups it needs; deciding what kind
of line a raw document is, and reading the file, happens in `reading.py`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pipeline.records import Post

# A v2 URL entity whose expanded_url ends like this points at the post's own attached media.
_OWN_MEDIA_URL = re.compile(r"/(?:photo|video)/\d+$")
# The "RT @user: " that starts every retweet's text, in all formats.
_RT_PREFIX = re.compile(r"RT @\w+: ")

_MONTHS = {
    "Jan": "01",
    "Feb": "02",
    "Mar": "03",
    "Apr": "04",
    "May": "05",
    "Jun": "06",
    "Jul": "07",
    "Aug": "08",
    "Sep": "09",
    "Oct": "10",
    "Nov": "11",
    "Dec": "12",
}


def iso_utc(value: object) -> str:
    """Either date format X uses, as ISO 8601 UTC to the second; "" when absent or unreadable.

    The common shapes are rearranged as strings (this runs once per post over millions of
    posts); anything unusual goes through datetime.
    """
    if not isinstance(value, str) or not value:
        return ""
    # v2: "2021-04-08T19:34:16.000Z"
    if len(value) == 24 and value[10] == "T" and value[23] == "Z" and value[19] == ".":
        if value[20:23] == "000":
            return value[:19] + "+00:00"
    # v1.1: "Wed Oct 10 20:19:24 +0000 2018"
    elif len(value) == 30 and value[19:26] == " +0000 ":
        month = _MONTHS.get(value[4:7])
        if month is not None:
            return f"{value[26:30]}-{month}-{value[8:10]}T{value[11:19]}+00:00"
    return _iso_utc_slow(value)


def _iso_utc_slow(value: str) -> str:
    for parse in (
        lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")),
        lambda v: datetime.strptime(v, "%a %b %d %H:%M:%S %z %Y"),
    ):
        try:
            moment = parse(value)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0).isoformat()
    return ""


def _int(value: object) -> int:
    """A count: tweets.js writes numbers as strings, some exports leave them null."""
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):  # true is no count
        return 0
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0


def _optional_int(value: object) -> int | None:
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def _str_id(value: object) -> str:
    """An X id as text. X ids are numbers (digit strings, or ints in v1.1's `id`): anything else
    (a list, true, a formula a hand-edited file slipped in) is no id at all."""
    if type(value) is str:
        return value if value.isdigit() and value.isascii() else ""
    if type(value) is int and value >= 0:
        return str(value)
    return ""


def _text(value: object) -> str:
    """A text field as text: a value of any other type (a list, a number) counts as absent."""
    return value if type(value) is str else ""


def _texts(items: object, key: str) -> list[str]:
    """The `key` texts of a list of entity objects (hashtags, mentions), skipping any malformed one."""
    if not isinstance(items, list):
        return []
    return [text for item in items if isinstance(item, dict) and type(text := item.get(key)) is str and text]


# --- v1.1 and tweets.js ------------------------------------------------------------------------


def _v1_full_text(tweet: dict) -> str:
    extended = tweet.get("extended_tweet")
    if isinstance(extended, dict) and extended.get("full_text"):
        return extended["full_text"]
    return _text(tweet.get("full_text") or tweet.get("text"))


def _v1_media(tweet: dict) -> list:
    extended = tweet.get("extended_tweet")
    if isinstance(extended, dict):
        media = (extended.get("extended_entities") or {}).get("media")
        if media:
            return media
    return (tweet.get("extended_entities") or {}).get("media") or (tweet.get("entities") or {}).get("media") or []


def _v1_photos(media: list) -> list[str]:
    if not media:
        return []
    return [
        url
        for m in media
        if isinstance(m, dict)
        and m.get("type") == "photo"
        and type(url := m.get("media_url_https") or m.get("media_url")) is str
        and url
    ]


def post_from_v1(tweet: dict, *, source_format: str = "v1", owner: str = "") -> Post:
    """A v1.1 tweet, or a tweets.js item (no user object: the archive's `owner` is the author)."""
    # This runs once per post over millions of posts: each field is looked up once, and the
    # common case (counts that are already ints) skips the conversion helpers.
    get = tweet.get
    extended = get("extended_tweet")
    if not isinstance(extended, dict):
        extended = None
    extended_entities = extended.get("entities") if extended is not None else None
    entities = extended_entities if isinstance(extended_entities, dict) else (get("entities") or {})
    user = get("user")
    if not isinstance(user, dict):
        user = None
    original = get("retweeted_status")
    if not isinstance(original, dict):
        original = None

    media = _v1_media(tweet)
    if original is None:
        if extended is not None and extended.get("full_text"):
            text = extended["full_text"]
        else:
            text = get("full_text") or get("text") or ""
        if type(text) is not str:
            text = ""
    else:
        # The retweet's own text is cut at 140 characters; the original holds it whole.
        original_user = original.get("user")
        original_user = _text(original_user.get("screen_name")) if isinstance(original_user, dict) else ""
        original_text = _v1_full_text(original)
        text = f"RT @{original_user}: {original_text}"
        media = _v1_media(original) or media

    if user:
        screen_name = user.get("screen_name") or ""
        if type(screen_name) is not str:
            screen_name = ""
        followers = user.get("followers_count")
        if type(followers) is not int:
            followers = _optional_int(followers)
        following = user.get("friends_count")
        if type(following) is not int:
            following = _optional_int(following)
    else:
        screen_name, followers, following = owner, None, None
    retweets = get("retweet_count")
    if type(retweets) is not int:
        retweets = _int(retweets)
    likes = get("favorite_count")
    if type(likes) is not int:
        likes = _int(likes)
    replies = get("reply_count")
    if type(replies) is not int:
        replies = _int(replies)
    quotes = get("quote_count")
    if type(quotes) is not int:
        quotes = _int(quotes)
    quoted = get("quoted_status_id_str")
    if not quoted and isinstance(get("quoted_status"), dict):
        quoted = get("quoted_status").get("id_str")
    # Ids are digit strings in all but a broken file: the common case is checked inline.
    post_id = get("id_str")
    if not (type(post_id) is str and post_id.isdigit() and post_id.isascii()):
        post_id = _str_id(get("id"))
    lang = get("lang") or ""
    if type(lang) is not str:
        lang = ""
    # Replies and quotes are the exception: their absent ids skip _str_id.
    quoted_id = "" if quoted is None else _str_id(quoted)
    in_reply_to_id = get("in_reply_to_status_id_str")
    in_reply_to_id = "" if in_reply_to_id is None else _str_id(in_reply_to_id)
    if not in_reply_to_id:
        in_reply_to_id = _str_id(get("in_reply_to_status_id"))
    in_reply_to_user = get("in_reply_to_screen_name")
    if type(in_reply_to_user) is not str:
        in_reply_to_user = ""
    hashtags = entities.get("hashtags")
    mentions = entities.get("user_mentions")
    urls = entities.get("urls")
    post = Post(
        id=post_id,
        created_at=iso_utc(get("created_at")),
        user=screen_name,
        followers=followers,
        following=following,
        text=text,
        lang=lang,
        retweet_count=retweets,
        like_count=likes,
        reply_count=replies,
        quote_count=quotes,
        retweeted_id=(_str_id(original.get("id_str")) or _str_id(original.get("id"))) if original is not None else "",
        quoted_id=quoted_id,
        in_reply_to_id=in_reply_to_id,
        in_reply_to_user=in_reply_to_user,
        hashtags=_texts(hashtags, "text") if hashtags else [],
        mentions=_texts(mentions, "screen_name") if mentions else [],
        urls=_urls(urls) if urls else [],
        photos=_v1_photos(media),
        has_media=bool(media),
        source_format=source_format,
    )
    if original is not None:  # set here, not passed to Post(): most posts are no retweets
        post.retweeted_created_at = iso_utc(original.get("created_at"))
        post.retweeted_user = original_user
        post.retweeted_text = original_text
    return post


def _urls(items: object) -> list[str]:
    """v1.1 URL entities: the expanded URL, else the t.co one; malformed entities skipped."""
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        if isinstance(item, dict):
            url = item.get("expanded_url") or item.get("url")
            if type(url) is str and url:
                found.append(url)
    return found


# --- v2 (response pages, stream lines) and twarc2 flattened ------------------------------------


def _v2_text(tweet: dict) -> str:
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and note.get("text"):
        return _text(note["text"])
    return _text(tweet.get("text"))


def _v2_urls(entities: dict) -> list[str]:
    urls = []
    for u in entities.get("urls") or ():
        url = u.get("expanded_url") or u.get("url")
        if type(url) is not str or not url or u.get("media_key") or _OWN_MEDIA_URL.search(url):
            continue
        urls.append(url)
    return urls


def _referenced(tweet: dict, kind: str) -> str:
    for ref in tweet.get("referenced_tweets") or ():
        if ref.get("type") == kind:
            return _str_id(ref.get("id"))
    return ""


def post_from_v2(
    tweet: dict,
    *,
    author: dict | None,
    original: dict | None,
    media: list,
    reply_user: dict | None,
    source_format: str,
    original_author: dict | None = None,
) -> Post:
    """A v2 tweet with what its page's `includes` (or twarc2's inlining) said about it.

    `original` is the retweeted tweet when it could be found (and `original_author` its author),
    `media` the media objects of the attachments that count for photos (the original's for a
    retweet), `{}` where a lookup failed.
    """
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("entities"), dict):
        entities = note["entities"]
    else:
        entities = tweet.get("entities") or {}
    metrics = tweet.get("public_metrics") or {}
    author_metrics = (author or {}).get("public_metrics") or {}

    text = _v2_text(tweet)
    if original is not None:
        # v2 cuts a retweet's text with "…"; the original's text is whole.
        original_text = _v2_text(original)
        prefix = _RT_PREFIX.match(text)
        if prefix:
            text = prefix.group(0) + original_text

    post = Post(
        id=_str_id(tweet.get("id")),
        created_at=iso_utc(tweet.get("created_at")),
        user=_text((author or {}).get("username")),
        followers=_optional_int(author_metrics.get("followers_count")),
        following=_optional_int(author_metrics.get("following_count")),
        text=text,
        lang=_text(tweet.get("lang")),
        retweet_count=_int(metrics.get("retweet_count")),
        like_count=_int(metrics.get("like_count")),
        reply_count=_int(metrics.get("reply_count")),
        quote_count=_int(metrics.get("quote_count")),
        retweeted_id=_referenced(tweet, "retweeted"),
        quoted_id=_referenced(tweet, "quoted"),
        in_reply_to_id=_referenced(tweet, "replied_to"),
        in_reply_to_user=_text((reply_user or {}).get("username")),
        hashtags=_texts(entities.get("hashtags"), "tag"),
        mentions=_texts(entities.get("mentions"), "username"),
        urls=_v2_urls(entities),
        photos=[m["url"] for m in media if m and m.get("type") == "photo" and type(m.get("url")) is str and m["url"]],
        has_media=bool(media),
        source_format=source_format,
    )
    if original is not None:
        post.retweeted_created_at = iso_utc(original.get("created_at"))
        post.retweeted_user = _text((original_author or {}).get("username"))
        post.retweeted_text = original_text
    return post


def _media_keys(tweet: dict | None) -> list:
    return ((tweet or {}).get("attachments") or {}).get("media_keys") or []


def _index(items: object, key: str) -> dict:
    """Objects of an `includes` list by their id; ones without a usable (text) id are left out."""
    if not isinstance(items, list):
        return {}
    return {item[key]: item for item in items if isinstance(item, dict) and type(item.get(key)) is str}


class PageLookups:
    """The `includes` of one v2 response page (or stream line), indexed once for all its tweets."""

    __slots__ = ("users", "tweets", "media")

    def __init__(self, includes: object) -> None:
        includes = includes if isinstance(includes, dict) else {}
        self.users = _index(includes.get("users"), "id")
        self.tweets = _index(includes.get("tweets"), "id")
        self.media = _index(includes.get("media"), "media_key")

    def post(self, tweet: dict) -> Post:
        retweeted = _referenced(tweet, "retweeted")
        original = self.tweets.get(retweeted) if retweeted else None
        carrier = original if original is not None else tweet
        return post_from_v2(
            tweet,
            author=self.users.get(tweet.get("author_id")),
            original=original,
            media=[self.media.get(key) or {} for key in _media_keys(carrier)],
            reply_user=self.users.get(tweet.get("in_reply_to_user_id")),
            source_format="v2",
            original_author=self.users.get(original.get("author_id")) if original is not None else None,
        )


def _object(value: object) -> dict | None:
    return value if isinstance(value, dict) else None


def post_from_twarc2(tweet: dict) -> Post:
    """A twarc2 flattened line: author, media and referenced tweets inlined by twarc."""
    original = None
    for ref in tweet.get("referenced_tweets") or ():
        # A reference twarc could not resolve stays a bare {type, id}.
        if ref.get("type") == "retweeted" and "text" in ref:
            original = ref
            break
    carrier = original if original is not None else tweet
    media = (carrier.get("attachments") or {}).get("media")
    if media is None:
        media = [{} for _ in _media_keys(carrier)]
    author = tweet.get("author") if isinstance(tweet.get("author"), dict) else None
    reply_user = tweet.get("in_reply_to_user") if isinstance(tweet.get("in_reply_to_user"), dict) else None
    return post_from_v2(
        tweet,
        author=author,
        original=original,
        media=[m if isinstance(m, dict) else {} for m in media],
        reply_user=reply_user,
        source_format="twarc2" if author is not None or "__twarc" in tweet else "v2",
        original_author=_object((original or {}).get("author")),
    )
