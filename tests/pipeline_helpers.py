"""A small hand-written collection in three input formats, and helpers to run searches over it.

Five distinct posts (plus a duplicate) by three authors, written out as v1.1 tweets (one per
line), as two v2 response pages, and as twarc2 flattened lines. The expected outputs in
tests/test_workflow_outputs.py were worked out by hand from the table below, not from the code.

    id    author  when (UTC)        what                                  retweet_count
    1001  alice   2023-01-01 10:00  #Climate #energy @Bob, 1 url, 1 photo  5
    1002  Bob     2023-01-01 11:30  retweet of 1001                        6
    1003  carol   2023-01-02 09:00  quotes 1001; #ENERGY, 2 urls, photo    2
                                    + a video (not a photo)
    1004  alice   2023-01-02 12:00  reply to 1003: "@carol =SUM(A1) ..."   0
    1001  alice   (again: a duplicate, ignored; claims 999 followers)
    1005  Bob     2023-01-03 00:00  retweet of 999 (by dave, not collected) 6

Authors' snapshots: alice 100 followers / 50 following on 1001, 120 / 40 on 1004; Bob 10 / 0,
then 11 / 0; carol 3 / 7. (Synthetic data, made up for tests.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from searches import services
from searches.models import Search, SearchRun, Source

T1 = "Climate #Climate #energy @Bob see https://t.co/a"
T3 = "#ENERGY news\nhttps://t.co/b and https://t.co/c"
T4 = "@carol =SUM(A1) agreed #energy"
P1 = "https://pbs.twimg.com/media/p1.jpg"
P2 = "https://pbs.twimg.com/media/p2.png"
VIDEO_THUMB = "https://pbs.twimg.com/ext_tw_video_thumb/v1.jpg"

USERS = {
    "alice": "11",
    "Bob": "12",
    "carol": "13",
    "dave": "14",
}


@dataclass
class Spec:
    id: str
    user: str
    followers: int
    following: int
    when: str  # "2023-01-01T10:00:00"
    text: str
    retweet_count: int = 0
    like_count: int = 0
    reply_count: int = 0
    quote_count: int = 0
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    media: list[tuple[str, str, str]] = field(default_factory=list)  # (media_key, type, url)
    retweet_of: Spec | None = None
    quote_of: str = ""
    reply_to: tuple[str, str] | None = None  # (tweet id, screen name)


ORIGINAL_1001 = Spec(
    "1001",
    "alice",
    100,
    50,
    "2023-01-01T10:00:00",
    T1,
    retweet_count=5,
    like_count=2,
    reply_count=1,
    quote_count=1,
    hashtags=["Climate", "energy"],
    mentions=["Bob"],
    urls=["https://Example.com/A"],
    media=[("3_1", "photo", P1)],
)
ORIGINAL_999 = Spec("999", "dave", 50, 5, "2022-12-31T08:00:00", "old news", retweet_count=6)

SPECS = [
    ORIGINAL_1001,
    Spec(
        "1002",
        "Bob",
        10,
        0,
        "2023-01-01T11:30:00",
        "RT @alice: " + T1,
        retweet_count=6,
        hashtags=["Climate", "energy"],
        mentions=["alice", "Bob"],
        urls=["https://Example.com/A"],
        retweet_of=ORIGINAL_1001,
    ),
    Spec(
        "1003",
        "carol",
        3,
        7,
        "2023-01-02T09:00:00",
        T3,
        retweet_count=2,
        like_count=3,
        hashtags=["ENERGY"],
        urls=["https://example.com:8080/b", "http://other.org/x"],
        media=[("3_2", "photo", P2), ("7_3", "video", VIDEO_THUMB)],
        quote_of="1001",
    ),
    Spec(
        "1004",
        "alice",
        120,
        40,
        "2023-01-02T12:00:00",
        T4,
        like_count=1,
        hashtags=["energy"],
        mentions=["carol"],
        reply_to=("1003", "carol"),
    ),
    # The duplicate: same id, a different (ignored) snapshot of its author.
    Spec(
        "1001",
        "alice",
        999,
        1,
        "2023-01-01T10:00:00",
        T1,
        retweet_count=5,
        like_count=2,
        reply_count=1,
        quote_count=1,
        hashtags=["Climate", "energy"],
        mentions=["Bob"],
        urls=["https://Example.com/A"],
        media=[("3_1", "photo", P1)],
    ),
    Spec(
        "1005",
        "Bob",
        11,
        0,
        "2023-01-03T00:00:00",
        "RT @dave: old news",
        retweet_count=6,
        mentions=["dave"],
        retweet_of=ORIGINAL_999,
    ),
]


def _v1_time(when: str) -> str:
    return datetime.fromisoformat(when).strftime("%a %b %d %H:%M:%S +0000 %Y")


def _v2_time(when: str) -> str:
    return when + ".000Z"


# --- v1.1 --------------------------------------------------------------------------------------


def v1_tweet(spec: Spec) -> dict:
    media = [{"type": kind, "media_url_https": url, "id_str": key} for key, kind, url in spec.media]
    entities = {
        "hashtags": [{"text": tag, "indices": [0, 1]} for tag in spec.hashtags],
        "user_mentions": [{"screen_name": name, "id_str": USERS[name]} for name in spec.mentions],
        "urls": [{"url": "https://t.co/x", "expanded_url": url} for url in spec.urls],
    }
    if media:
        entities["media"] = media[:1]  # v1.1 keeps only the first here
    tweet = {
        "created_at": _v1_time(spec.when),
        "id": int(spec.id),
        "id_str": spec.id,
        "full_text": spec.text,
        "lang": "en",
        "user": {
            "id_str": USERS[spec.user],
            "screen_name": spec.user,
            "followers_count": spec.followers,
            "friends_count": spec.following,
        },
        "entities": entities,
        "retweet_count": spec.retweet_count,
        "favorite_count": spec.like_count,
        "reply_count": spec.reply_count,
        "quote_count": spec.quote_count,
    }
    if media:
        tweet["extended_entities"] = {"media": media}
    if spec.retweet_of is not None:
        tweet["retweeted_status"] = v1_tweet(spec.retweet_of)
        # As v1.1 does, the retweet carries the original's media too.
        if spec.retweet_of.media:
            tweet["extended_entities"] = tweet["retweeted_status"]["extended_entities"]
    if spec.quote_of:
        tweet["quoted_status_id_str"] = spec.quote_of
    if spec.reply_to:
        tweet["in_reply_to_status_id_str"], tweet["in_reply_to_screen_name"] = spec.reply_to
    return tweet


def write_v1(path: Path, *, with_bad_line: bool = True) -> Path:
    lines = [json.dumps(v1_tweet(spec)) for spec in SPECS]
    if with_bad_line:
        lines.insert(3, '{"id_str": "1", "full_text": "cut off')  # line 4: truncated JSON
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- v2 ----------------------------------------------------------------------------------------


def v2_tweet(spec: Spec) -> dict:
    tweet: dict = {
        "id": spec.id,
        "author_id": USERS[spec.user],
        "created_at": _v2_time(spec.when),
        "text": spec.text[:30] + "…" if spec.retweet_of else spec.text,  # v2 cuts retweet text
        "lang": "en",
        "public_metrics": {
            "retweet_count": spec.retweet_count,
            "reply_count": spec.reply_count,
            "like_count": spec.like_count,
            "quote_count": spec.quote_count,
        },
        "edit_history_tweet_ids": [spec.id],
    }
    entities: dict = {}
    if spec.hashtags:
        entities["hashtags"] = [{"start": 0, "end": 1, "tag": tag} for tag in spec.hashtags]
    if spec.mentions:
        entities["mentions"] = [{"start": 0, "end": 1, "username": n, "id": USERS[n]} for n in spec.mentions]
    urls = [{"start": 0, "end": 1, "url": "https://t.co/x", "expanded_url": url} for url in spec.urls]
    for key, kind, _url in spec.media:
        # v2 lists the post's own media among its URLs too: with a media_key, or as .../photo/N.
        if kind == "photo":
            link = f"https://twitter.com/{spec.user}/status/{spec.id}/photo/1"
            urls.append({"start": 0, "end": 1, "url": "https://t.co/m", "expanded_url": link, "media_key": key})
        else:
            link = f"https://twitter.com/{spec.user}/status/{spec.id}/video/1"
            urls.append({"start": 0, "end": 1, "url": "https://t.co/v", "expanded_url": link})
    if urls:
        entities["urls"] = urls
    if entities:  # absent when a post has none, as the API does
        tweet["entities"] = entities
    if spec.media:
        tweet["attachments"] = {"media_keys": [key for key, _kind, _url in spec.media]}
    refs = []
    if spec.retweet_of is not None:
        refs.append({"type": "retweeted", "id": spec.retweet_of.id})
    if spec.quote_of:
        refs.append({"type": "quoted", "id": spec.quote_of})
    if spec.reply_to:
        refs.append({"type": "replied_to", "id": spec.reply_to[0]})
        tweet["in_reply_to_user_id"] = USERS[spec.reply_to[1]]
    if refs:
        tweet["referenced_tweets"] = refs
    return tweet


def v2_user(spec: Spec) -> dict:
    return {
        "id": USERS[spec.user],
        "username": spec.user,
        "name": spec.user.title(),
        "public_metrics": {"followers_count": spec.followers, "following_count": spec.following},
    }


def v2_media(spec: Spec) -> list[dict]:
    out = []
    for key, kind, url in spec.media:
        item = {"media_key": key, "type": kind}
        item["url" if kind == "photo" else "preview_image_url"] = url
        out.append(item)
    return out


def v2_page(specs: list[Spec], next_token: str | None) -> dict:
    users, media, tweets = {}, {}, {}
    for spec in specs:
        users.setdefault(spec.user, v2_user(spec))  # one snapshot of each user per page
        for item in v2_media(spec):
            media[item["media_key"]] = item
        original = spec.retweet_of
        if original is not None:
            tweets[original.id] = v2_tweet(original)
            users.setdefault(original.user, v2_user(original))
            for item in v2_media(original):
                media[item["media_key"]] = item
    page = {
        "data": [v2_tweet(spec) for spec in specs],
        "includes": {"users": list(users.values()), "media": list(media.values()), "tweets": list(tweets.values())},
        "meta": {"result_count": len(specs), **({"next_token": next_token} if next_token else {})},
        "__twarc": {"url": "https://api.twitter.com/2/tweets/search/recent", "version": "2.0.0"},
    }
    return page


def write_v2_pages(path: Path) -> Path:
    # Page 1: 1001 1002 1003; page 2: 1004, the duplicate 1001, 1005.
    pages = [v2_page(SPECS[:3], "token-2"), v2_page(SPECS[3:], None)]
    path.write_text("".join(json.dumps(page) + "\n" for page in pages), encoding="utf-8")
    return path


# --- twarc2 flattened ----------------------------------------------------------------------------


def twarc2_tweet(spec: Spec, *, inline: bool = True) -> dict:
    tweet = v2_tweet(spec)
    tweet["author"] = v2_user(spec)
    if spec.media:
        tweet["attachments"] = {"media_keys": tweet["attachments"]["media_keys"], "media": v2_media(spec)}
    if inline and "referenced_tweets" in tweet:
        inlined = []
        for ref in tweet["referenced_tweets"]:
            if ref["type"] == "retweeted":
                inlined.append({"type": "retweeted", **twarc2_tweet(spec.retweet_of, inline=False)})
            else:
                inlined.append(ref)  # not resolved: stays a bare {type, id}
        tweet["referenced_tweets"] = inlined
    tweet["__twarc"] = {"url": "https://api.twitter.com/2/tweets/search/recent", "version": "2.0.0"}
    return tweet


def write_twarc2(path: Path) -> Path:
    path.write_text("".join(json.dumps(twarc2_tweet(spec)) + "\n" for spec in SPECS), encoding="utf-8")
    return path


WRITERS = {"v1": write_v1, "v2": write_v2_pages, "twarc2": write_twarc2}


# --- Searches ----------------------------------------------------------------------------------


def archive_search(path: Path, *, term: str = "", count: int | None = None, started: bool = True) -> SearchRun:
    """The run of a saved archive search, claimed as a worker would (or only queued)."""
    search = Search.objects.create(term=term, source=Source.ARCHIVE, archive_path=str(path), count=count)
    run = search.start_run()
    if started:
        run.runs().claim()
    return SearchRun.objects.select_related("search").get(pk=run.pk)


def queued_archive_search(path: Path, **fields) -> Search:
    """An archive search saved as the pages save one (its first run queued), not handed to a worker."""
    return services.create_search(source=Source.ARCHIVE, archive_path=str(path), enqueue=False, **fields)


def read_rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# --- Photos ------------------------------------------------------------------------------------


def photo_posts_archive(path: Path, photos_per_post: list[list[str]]) -> Path:
    """A v1.1 archive with one post per item, each with the given photo URLs (synthetic)."""
    lines = []
    for number, urls in enumerate(photos_per_post, start=1):
        spec = Spec(
            str(5000 + number),
            "alice",
            1,
            1,
            f"2023-02-01T10:{number % 60:02d}:00",
            f"photo post {number}",
            media=[(f"3_{number}_{i}", "photo", url) for i, url in enumerate(urls)],
        )
        lines.append(json.dumps(v1_tweet(spec)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def drawn_image(seed: int, size: int = 256):
    """A picture of coloured rectangles; different seeds give pictures that look different."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size), rng.randrange(size)
        draw.rectangle(
            [x, y, x + rng.randrange(20, 150), y + rng.randrange(20, 150)],
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    return image


def image_bytes(image, fmt: str, **options) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def near_duplicate_photos() -> dict[str, tuple[str, bytes]]:
    """name -> (content type, body): a.png with two altered copies, and two unrelated pictures."""
    from PIL import ImageEnhance

    a = drawn_image(1)
    return {
        "a.png": ("image/png", image_bytes(a, "PNG")),
        "a-small.jpg": ("image/jpeg", image_bytes(a.resize((180, 180)), "JPEG", quality=60)),
        "a-bright.jpg": ("image/jpeg", image_bytes(ImageEnhance.Brightness(a).enhance(1.15), "JPEG", quality=85)),
        "b.png": ("image/png", image_bytes(drawn_image(2), "PNG")),
        "c.png": ("image/png", image_bytes(drawn_image(3), "PNG")),
    }


class PhotoServer:
    """A real HTTP server on 127.0.0.1 serving photos (and failures) for tests.

    routes: path -> (status, content type, body); `fail_all` makes every answer a 500;
    `stop()` closes it, so later requests cannot connect.
    """

    def __init__(self, routes: dict[str, tuple[int, str, bytes]]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server_self = self
        self.routes = routes
        self.requests: list[str] = []
        self.fail_all = False

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 -- the http.server API
                server_self.requests.append(self.path)
                if server_self.fail_all:
                    self.send_error(500, "Broken on purpose")
                    return
                status, kind, body = server_self.routes.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if not kind.endswith("stream-no-length"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
