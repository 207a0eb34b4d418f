"""The SYNTHETIC archives the benchmarks read: N invented posts from pipeline.sample, as JSONL.

Files are cached in bench/out under names that say they are synthetic, their format, their size
and the generator version, e.g. synthetic-v1-padded-1000000-g2.jsonl.

Padding. The sample generator writes lean posts (about 1.5 KB as v1.1 JSON) while real v1.1
tweets are 3-5 KB, mostly fields nobody counts: the author's profile colours and image URLs,
geo and place, the streaming envelope. Parsing cost follows bytes, so a lean file flatters
every contender that parses a lot. `padded` adds those standard v1.1 fields (synthetic values,
`.invalid` hosts) so that a million posts weigh about what the 3.9 GB reference archive does.
Padding only adds fields that dnflow ignores: every count comes out the same.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import orjson
from common import OUT, ensure_repo_on_path

ensure_repo_on_path()

from pipeline.sample import SAMPLE_VERSION, generate_posts  # noqa: E402 -- after the path is set

SEED = 7
_COLOURS = ("1DA1F2", "C0DEED", "F5F8FA", "14171A", "657786", "AAB8C2", "E1E8ED", "FFAD1F", "794BC4", "17BF63")
_ZONES = (("Pacific Time (US & Canada)", -28800), ("London", 0), ("Berlin", 3600), ("Tokyo", 32400), (None, None))


def synthetic_path(posts: int, fmt: str, *, padded: bool, accounts: int | None = None) -> Path:
    kind = f"{fmt}-padded" if padded else fmt
    many = f"-a{accounts}" if accounts else ""
    return OUT / f"synthetic-{kind}-{posts}{many}-g{SAMPLE_VERSION}.jsonl"


def ensure_synthetic(posts: int, fmt: str, *, padded: bool, accounts: int | None = None) -> Path:
    """The cached file, generated (atomically) on first use. `accounts`: the generator's pool of
    accounts (None: its default)."""
    if fmt not in ("v1", "v2"):
        raise ValueError(f"Unknown format {fmt!r}: use v1 or v2.")
    path = synthetic_path(posts, fmt, padded=padded, accounts=accounts)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pad = (_pad_v1 if fmt == "v1" else _pad_v2_page) if padded else None
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb", buffering=4 * 1024 * 1024) as out:
            options = {"accounts": accounts} if accounts else {}
            for document in generate_posts(posts, seed=SEED, fmt=fmt, **options):
                if pad is not None:
                    pad(document)
                out.write(orjson.dumps(document))
                out.write(b"\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _pick(items: tuple, key: str, salt: int = 0):
    return items[(zlib.crc32(key.encode()) + salt) % len(items)]


def _pad_user_v1(user: dict) -> None:
    uid = user["id_str"]
    zone, offset = _pick(_ZONES, uid)
    image = f"https://pbs.twimg.invalid/profile_images/{uid}/synthetic_{zlib.crc32(uid.encode()):08x}_normal.jpg"
    user.update(
        {
            "location": "Synthetic town",
            "url": f"https://t.co.invalid/u{uid[-6:]}",
            "entities": {
                "url": {
                    "urls": [
                        {
                            "url": f"https://t.co.invalid/u{uid[-6:]}",
                            "expanded_url": f"https://{user['screen_name']}.example/about",
                            "display_url": f"{user['screen_name']}.example/about",
                            "indices": [0, 23],
                        }
                    ]
                },
                "description": {"urls": []},
            },
            "listed_count": int(uid[-3:]) % 50,
            "favourites_count": int(uid[-5:]) % 9000,
            "utc_offset": offset,
            "time_zone": zone,
            "geo_enabled": False,
            "lang": None,
            "contributors_enabled": False,
            "is_translator": False,
            "profile_background_color": _pick(_COLOURS, uid, 1),
            "profile_background_image_url": "http://abs.twimg.invalid/images/themes/theme1/bg.png",
            "profile_background_image_url_https": "https://abs.twimg.invalid/images/themes/theme1/bg.png",
            "profile_background_tile": False,
            "profile_image_url": image.replace("https://", "http://"),
            "profile_image_url_https": image,
            "profile_banner_url": f"https://pbs.twimg.invalid/profile_banners/{uid}/1500000000",
            "profile_link_color": _pick(_COLOURS, uid, 2),
            "profile_sidebar_border_color": _pick(_COLOURS, uid, 3),
            "profile_sidebar_fill_color": _pick(_COLOURS, uid, 4),
            "profile_text_color": _pick(_COLOURS, uid, 5),
            "profile_use_background_image": True,
            "has_extended_profile": False,
            "default_profile": False,
            "default_profile_image": False,
            "following": None,
            "follow_request_sent": None,
            "notifications": None,
            "translator_type": "none",
            "withheld_in_countries": [],
        }
    )


def _pad_v1(tweet: dict) -> None:
    """The envelope a v1.1 streaming tweet carries beyond what the generator writes."""
    _pad_user_v1(tweet["user"])
    tweet.update(
        {
            "source": '<a href="https://dnflow.invalid/synthetic" rel="nofollow">dnflow synthetic sample</a>',
            "in_reply_to_user_id": None,
            "geo": None,
            "coordinates": None,
            "place": None,
            "contributors": None,
            "favorited": False,
            "retweeted": False,
            "possibly_sensitive": False,
            "filter_level": "low",
            "timestamp_ms": str((int(tweet["id_str"]) >> 22) + 1288834974657),
        }
    )
    for nested in ("retweeted_status", "quoted_status"):
        if isinstance(tweet.get(nested), dict):
            _pad_v1(tweet[nested])


def _pad_v2_page(page: dict) -> None:
    """What a v2 page with every user and tweet field asked for carries beyond the generator's."""
    for user in page.get("includes", {}).get("users", []):
        uid = user["id"]
        user.update(
            {
                "location": "Synthetic town",
                "url": f"https://t.co.invalid/u{uid[-6:]}",
                "verified": False,
                "protected": False,
                "profile_image_url": f"https://pbs.twimg.invalid/profile_images/{uid}/synthetic_normal.jpg",
                "entities": {
                    "url": {
                        "urls": [
                            {
                                "start": 0,
                                "end": 23,
                                "url": f"https://t.co.invalid/u{uid[-6:]}",
                                "expanded_url": f"https://{user.get('username', 'user')}.example/about",
                                "display_url": f"{user.get('username', 'user')}.example/about",
                            }
                        ]
                    }
                },
            }
        )
    tweets = list(page.get("data", [])) + list(page.get("includes", {}).get("tweets", []))
    for tweet in tweets:
        tweet.setdefault("edit_history_tweet_ids", [tweet["id"]])
        tweet.setdefault("conversation_id", tweet["id"])
        tweet.setdefault("possibly_sensitive", False)
        tweet.setdefault("reply_settings", "everyone")
        tweet.setdefault(
            "context_annotations",
            [
                {
                    "domain": {"id": "46", "name": "Business Taxonomy", "description": "Synthetic annotation domain"},
                    "entity": {"id": "1557697333571112960", "name": "Synthetic topic", "description": "Synthetic"},
                },
                {
                    "domain": {"id": "131", "name": "Unified Twitter Taxonomy", "description": "Synthetic taxonomy"},
                    "entity": {"id": "847544972781826048", "name": "Synthetic interest"},
                },
            ],
        )
