"""Hand-made posts in each archive format, small enough to read in a test and check by eye."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from pipeline.formats import ImportReport, copy_archive, iter_collection, iter_posts
from pipeline.records import Post


def v1_tweet(tweet_id: str, text: str, *, user: str = "alice", followers: int = 10, **extra) -> dict:
    """A v1.1 tweet as the search API returns it with tweet_mode=extended."""
    tweet = {
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "id": int(tweet_id),
        "id_str": tweet_id,
        "full_text": text,
        "user": {"id_str": "1" + tweet_id, "screen_name": user, "followers_count": followers, "friends_count": 5},
        "entities": {"hashtags": [], "user_mentions": [], "urls": []},
        "retweet_count": 0,
        "favorite_count": 0,
        "lang": "en",
    }
    tweet.update(extra)
    return tweet


def v2_page() -> dict:
    """One v2 search page: a photo post, and a retweet whose original (and photo) sit in includes."""
    return {
        "data": [
            {
                "id": "201",
                "text": "Look at this https://t.co/p1",
                "author_id": "u1",
                "created_at": "2023-01-31T12:00:00.000Z",
                "lang": "en",
                "attachments": {"media_keys": ["3_1"]},
                "entities": {
                    "urls": [
                        {
                            "url": "https://t.co/p1",
                            "expanded_url": "https://twitter.com/ann/status/201/photo/1",
                            "media_key": "3_1",
                        }
                    ]
                },
                "public_metrics": {"retweet_count": 2, "like_count": 7, "reply_count": 0, "quote_count": 0},
            },
            {
                "id": "202",
                "text": "RT @ann: A long original text that the API cut sho…",
                "author_id": "u2",
                "created_at": "2023-01-31T12:05:00.000Z",
                "lang": "en",
                "referenced_tweets": [{"type": "retweeted", "id": "150"}],
                "entities": {"mentions": [{"start": 3, "end": 7, "username": "ann"}]},
                "public_metrics": {"retweet_count": 9, "like_count": 0, "reply_count": 0, "quote_count": 0},
            },
        ],
        "includes": {
            "users": [
                {"id": "u1", "username": "ann", "public_metrics": {"followers_count": 100, "following_count": 50}},
                {"id": "u2", "username": "ben", "public_metrics": {"followers_count": 3, "following_count": 0}},
            ],
            "tweets": [
                {
                    "id": "150",
                    "text": "A long original text that the API cut short in the retweet #whole",
                    "author_id": "u1",
                    "attachments": {"media_keys": ["3_2"]},
                }
            ],
            "media": [
                {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/one.jpg"},
                {"media_key": "3_2", "type": "photo", "url": "https://pbs.twimg.com/media/two.jpg"},
            ],
        },
        "meta": {"result_count": 2},
    }


def tweets_js_item(tweet_id: str, text: str, retweets: str = "0") -> dict:
    """An item of Twitter's own archive: numbers as strings, no user object."""
    return {
        "tweet": {
            "id_str": tweet_id,
            "id": tweet_id,
            "full_text": text,
            "created_at": "Tue Jan 31 12:00:00 +0000 2023",
            "retweet_count": retweets,
            "favorite_count": "4",
            "lang": "en",
            "entities": {"hashtags": [{"text": "Archive", "indices": ["0", "8"]}], "user_mentions": [], "urls": []},
        }
    }


def write_tweets_js(path: Path, items: list[dict], part: str = "tweets.part0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"window.YTD.{part} = " + json.dumps(items, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, documents: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path


def gzipped(path: Path) -> Path:
    """A gzip copy of the file under a name that does not say so: detection is by content."""
    target = path.with_name(path.name + ".data")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def import_files(paths: list[Path], raw: Path, **filters) -> tuple[list[Post], ImportReport]:
    """Copy an archive into `raw`, then read its collection, as a search does."""
    report = copy_archive(paths, raw)
    return list(iter_collection(raw, report=report, **filters)), report


def posts_of(raw: Path) -> list[Post]:
    return list(iter_posts(raw, ImportReport()))
