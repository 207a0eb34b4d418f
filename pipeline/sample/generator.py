"""The SYNTHETIC posts: one logical stream, rendered as v1.1 tweets or v2 response pages.

Pieces (accounts, sentences, URLs, photo pools) are prepared once per seed; each post then
costs a handful of random draws and two small dicts, so a million posts stream in seconds.
Authors, hashtags, links and photos are drawn Zipf-like: a few are everywhere, most are rare.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import deque
from collections.abc import Iterator
from time import gmtime

from .images import PHOTO_COUNT, PHOTO_SIZE, VARIANTS, has_variants, photo_url
from .topics import DOMAIN_ENDS, DOMAIN_STARTS, FIRST_NAMES, LANG_TEMPLATES, LANG_WEIGHTS, LANGS, LAST_NAMES, TOPICS

SYNTHETIC_SOURCE = "dnflow synthetic sample"
PAGE_SIZE = 100
USER_COUNT = 2500
START_EPOCH = 1709251200  # 2024-03-01T00:00:00Z
_TWITTER_EPOCH_MS = 1288834974657


def _zipf_cumulative(count: int, exponent: float = 1.1) -> list[float]:
    total, out = 0.0, []
    for rank in range(1, count + 1):
        total += 1.0 / rank**exponent
        out.append(total)
    return out


def _pick(rng: random.Random, items: list, cumulative: list[float]):
    return items[bisect(cumulative, rng.random() * cumulative[-1])]


def _v1_date(seconds: int) -> str:
    t = gmtime(seconds)
    return (
        f"{('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')[t.tm_wday]} "
        f"{('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')[t.tm_mon - 1]} "
        f"{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000 {t.tm_year}"
    )


def _v2_date(seconds: int) -> str:
    t = gmtime(seconds)
    return f"{t.tm_year}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.000Z"


class _User:
    __slots__ = ("id", "screen_name", "v1", "v2")

    def __init__(self, number: int, screen_name: str, name: str, followers: int, following: int, since: int) -> None:
        self.id = str(3_000_000_000 + number * 7919)
        self.screen_name = screen_name
        description = "Synthetic account: invented for the dnflow sample, not a real person."
        self.v1 = {
            "id": int(self.id),
            "id_str": self.id,
            "name": name,
            "screen_name": screen_name,
            "description": description,
            "followers_count": followers,
            "friends_count": following,
            "statuses_count": followers // 3 + 17,
            "created_at": _v1_date(since),
            "verified": False,
            "protected": False,
        }
        self.v2 = {
            "id": self.id,
            "username": screen_name,
            "name": name,
            "description": description,
            "created_at": _v2_date(since),
            "public_metrics": {
                "followers_count": followers,
                "following_count": following,
                "tweet_count": followers // 3 + 17,
                "listed_count": followers // 100,
            },
            "verified": False,
            "protected": False,
        }


class _Pieces:
    """Everything chosen once per seed: accounts, sentences, URLs, photo pools."""

    def __init__(self, rng: random.Random, accounts: int = USER_COUNT) -> None:
        names: set[str] = set()
        self.users: list[_User] = []
        while len(self.users) < accounts:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            screen_name = f"{first}_{last}{rng.randrange(100)}" if rng.random() < 0.7 else f"{first}{last}"
            if len(self.users) >= USER_COUNT:  # beyond the usual pool the names run out: number them
                screen_name = f"{first}_{last}_{len(self.users)}"
            if screen_name in names:
                continue
            names.add(screen_name)
            followers = min(int(rng.lognormvariate(5.5, 1.8)), 5_000_000)
            following = 0 if rng.random() < 0.03 else int(rng.lognormvariate(5, 1.2))
            since = START_EPOCH - rng.randrange(86400, 86400 * 365 * 12)
            self.users.append(_User(len(self.users), screen_name, f"{first.title()} {last.title()}", followers,
                                    following, since))  # fmt: skip
        self.user_cumulative = _zipf_cumulative(accounts, 0.85)
        self.user_langs = [LANGS[bisect(_cumulative(LANG_WEIGHTS), rng.random() * 100)] for _ in self.users]

        domains = [f"{a}{b}.example" for a in DOMAIN_STARTS for b in DOMAIN_ENDS]
        rng.shuffle(domains)
        domain_cumulative = _zipf_cumulative(len(domains), 0.8)
        self.topics = list(TOPICS)
        self.topic_cumulative = _cumulative([TOPICS[t][0] for t in self.topics])
        self.sentences: dict[tuple[str, str], list[str]] = {}
        self.hashtags: dict[str, list[str]] = {}
        self.urls: dict[str, list[str]] = {}
        self.photos: dict[str, list[str]] = {}
        photo_numbers = list(range(PHOTO_COUNT))
        rng.shuffle(photo_numbers)
        per_topic = PHOTO_COUNT // len(self.topics)
        for number, topic in enumerate(self.topics):
            _, subjects, templates, tags, words = TOPICS[topic]
            subjects_list = subjects.split("|")
            self.sentences[topic, "en"] = [t.replace("{s}", s) for t in templates.split("|") for s in subjects_list]
            for lang, word in zip(LANGS[1:], words.split("|"), strict=True):
                self.sentences[topic, lang] = [t.replace("{k}", word) for t in LANG_TEMPLATES[lang].split("|")]
            self.hashtags[topic] = tags.split("|")
            self.urls[topic] = [
                f"https://{_pick(rng, domains, domain_cumulative)}/{topic}/"
                f"{rng.choice(subjects_list).replace(' ', '-').replace(chr(39), '')}-{k}"
                for k in range(300)
            ]
            photos = []
            for index in photo_numbers[number * per_topic : (number + 1) * per_topic]:
                photos.append(photo_url(index))
                if has_variants(index):
                    photos += [photo_url(index, v) for v in range(1, VARIANTS + 1)]
            rng.shuffle(photos)
            self.photos[topic] = photos
        self.tag_cumulative = {t: _zipf_cumulative(len(v), 1.3) for t, v in self.hashtags.items()}
        self.url_cumulative = _zipf_cumulative(300, 1.05)
        self.photo_cumulative = {t: _zipf_cumulative(len(v), 1.2) for t, v in self.photos.items()}


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class _Logical:
    """One post before it is written in a format; rendered dicts are cached for retweets."""

    __slots__ = ("number", "id", "seconds", "user", "lang", "text", "hashtags", "mentions", "links", "photos",
                 "media_link", "retweeted", "reply_to", "counts", "v1", "v2")  # fmt: skip


def _logical_posts(n: int, seed: int, accounts: int) -> Iterator[_Logical]:
    rng = random.Random(seed)
    pieces = _Pieces(rng, accounts)
    users, langs, topics = pieces.users, pieces.user_langs, pieces.topics
    numbers = range(len(users))
    recent: deque[_Logical] = deque(maxlen=500)
    popular: deque[_Logical] = deque(maxlen=300)
    seconds = START_EPOCH
    random_ = rng.random
    for number in range(n):
        seconds += int(rng.expovariate(1 / 30)) + 1
        post = _Logical()
        post.number = number
        post.id = ((seconds * 1000 - _TWITTER_EPOCH_MS) << 22) | (number & 0x3FFFFF)
        post.seconds = seconds
        author_number = _pick(rng, numbers, pieces.user_cumulative)
        post.user = users[author_number]
        post.retweeted = post.reply_to = None
        post.v1 = post.v2 = None
        post.counts = (0, int(rng.paretovariate(1.5)) - 1, int(random_() < 0.2), int(random_() < 0.05))

        if popular and random_() < 0.3:
            original = popular[len(popular) - 1 - int(len(popular) * random_() ** 2)]
            post.retweeted = original
            post.lang = original.lang
            post.text = f"RT @{original.user.screen_name}: {original.text}"
            post.hashtags, post.links, post.photos = original.hashtags, original.links, original.photos
            post.media_link = original.media_link
            post.mentions = [original.user, *original.mentions]
            post.counts = (original.counts[0], 0, 0, 0)
            yield post
            continue

        topic = _pick(rng, topics, pieces.topic_cumulative)
        post.lang = langs[author_number]
        parts = []
        post.mentions = []
        if recent and random_() < 0.12:
            post.reply_to = recent[int(random_() * len(recent))]
            post.mentions.append(post.reply_to.user)
            parts.append(f"@{post.reply_to.user.screen_name}")
        elif random_() < 0.15:
            mentioned = users[_pick(rng, numbers, pieces.user_cumulative)]
            post.mentions.append(mentioned)
            parts.append(f"@{mentioned.screen_name}")
        sentences = pieces.sentences[topic, post.lang]
        parts.append(sentences[int(random_() * len(sentences))])
        if random_() < 0.4:  # a second sentence: long enough that a retweet's text gets cut
            parts.append(sentences[int(random_() * len(sentences))])
        post.hashtags = []
        for _ in range(int(random_() * 2.6)):
            tag = _pick(rng, pieces.hashtags[topic], pieces.tag_cumulative[topic])
            if tag not in post.hashtags:
                post.hashtags.append(tag)
                parts.append(f"#{tag}")
        post.links = []
        if random_() < 0.3:
            # Links appear in the text shortened, as X writes them; entities give the expanded URL.
            post.links.append((f"https://t.co/s{number:08x}0", _pick(rng, pieces.urls[topic], pieces.url_cumulative)))
            parts.append(post.links[0][0])
        post.photos = []
        if random_() < 0.18:
            post.photos.append(_pick(rng, pieces.photos[topic], pieces.photo_cumulative[topic]))
            if random_() < 0.15:
                extra = _pick(rng, pieces.photos[topic], pieces.photo_cumulative[topic])
                if extra not in post.photos:
                    post.photos.append(extra)
        # One link in the text stands for all of a post's photos.
        post.media_link = f"https://t.co/s{number:08x}m" if post.photos else ""
        if post.media_link:
            parts.append(post.media_link)
        post.text = " ".join(parts)
        if random_() < 0.35:
            post.counts = (int(rng.paretovariate(1.2) * 3),) + post.counts[1:]
            popular.append(post)
        recent.append(post)
        yield post


# --- Rendering -----------------------------------------------------------------------------------


def _entities(post: _Logical, text: str, fmt: str) -> dict:
    """The post's entities in the format's shape, with their offsets in `text`.

    A retweet's text may be cut short; its entities still list all of the original's, so both
    formats of one post carry the same ones.
    """
    hashtags, mentions, urls, position = [], [], [], 0
    for user in post.mentions:
        at = text.find("@" + user.screen_name, position)
        if at >= 0:
            position = at + 1
        else:
            at = 0
        end = at + len(user.screen_name) + 1
        if fmt == "v1":
            mentions.append({"screen_name": user.screen_name, "name": user.v1["name"], "id": user.v1["id"],
                             "id_str": user.id, "indices": [at, end]})  # fmt: skip
        else:
            mentions.append({"start": at, "end": end, "username": user.screen_name, "id": user.id})
    position = 0
    for tag in post.hashtags:
        at = max(text.find("#" + tag, position), 0)
        position = at + 1
        if fmt == "v1":
            hashtags.append({"text": tag, "indices": [at, at + len(tag) + 1]})
        else:
            hashtags.append({"start": at, "end": at + len(tag) + 1, "tag": tag})
    for link, url in post.links:
        at = max(text.find(link), 0)
        display = url.split("://", 1)[1][:26]
        if fmt == "v1":
            urls.append({"url": link, "expanded_url": url, "display_url": display, "indices": [at, at + len(link)]})
        else:
            urls.append({"start": at, "end": at + len(link), "url": link, "expanded_url": url, "display_url": display})
    if fmt == "v1":
        return {"hashtags": hashtags, "user_mentions": mentions, "urls": urls, "symbols": []}
    # v2 leaves out what a post does not have.
    return {key: value for key, value in (("hashtags", hashtags), ("mentions", mentions), ("urls", urls)) if value}


def _media_key(url: str) -> str:
    return "3_" + url.rsplit("/", 1)[1].removesuffix(".jpg").replace("img-", "1700").replace("-v", "00")


def _render_v1(post: _Logical) -> dict:
    if post.v1 is not None:
        return post.v1
    original = post.retweeted
    text = post.text
    if original is not None and len(text) > 140:
        text = text[:139] + "…"  # v1.1 cuts a retweet's own text; the original keeps it whole
    entities = _entities(post, text, "v1")
    tweet = {
        "created_at": _v1_date(post.seconds),
        "id": post.id,
        "id_str": str(post.id),
        "full_text": text,
        "truncated": False,
        "display_text_range": [0, len(text)],
        "entities": entities,
        "source": SYNTHETIC_SOURCE,
        "in_reply_to_status_id": post.reply_to.id if post.reply_to else None,
        "in_reply_to_status_id_str": str(post.reply_to.id) if post.reply_to else None,
        "in_reply_to_user_id_str": post.reply_to.user.id if post.reply_to else None,
        "in_reply_to_screen_name": post.reply_to.user.screen_name if post.reply_to else None,
        "user": post.user.v1,
        "is_quote_status": False,
        "retweet_count": post.counts[0],
        "favorite_count": post.counts[1],
        "reply_count": post.counts[2],
        "quote_count": post.counts[3],
        "lang": post.lang,
        "dnflow_synthetic": True,
    }
    if post.photos:
        owner = original or post
        at = max(text.find(post.media_link), 0)
        media = [
            {"id_str": _media_key(url)[2:], "type": "photo", "media_url_https": url, "url": post.media_link,
             "expanded_url": f"https://twitter.com/{owner.user.screen_name}/status/{owner.id}/photo/{k}",
             "display_url": "pic.twitter.com/synthetic", "indices": [at, at + len(post.media_link)]}
            for k, url in enumerate(post.photos, 1)
        ]  # fmt: skip
        tweet["entities"]["media"] = media[:1]  # v1.1 keeps only the first here, all in extended_entities
        tweet["extended_entities"] = {"media": media}
    if original is not None:
        tweet["retweeted_status"] = _render_v1(original)
    if post.retweeted is None:
        post.v1 = tweet  # an original is embedded again by its retweets: render it once
    return tweet


def _render_v2(post: _Logical) -> dict:
    if post.v2 is not None:
        return post.v2
    original = post.retweeted
    text = post.text
    if original is not None and len(text) > 140:
        text = text[:139] + "…"  # as v2 does; the original's whole text is in includes.tweets
    entities = _entities(post, text, "v2")
    keys = [_media_key(url) for url in post.photos] if original is None else []
    at = max(text.find(post.media_link), 0)
    for k, key in enumerate(keys, 1):
        # v2 lists the post's own photo link among its URLs, with its media_key.
        entities.setdefault("urls", []).append(
            {"start": at, "end": at + len(post.media_link), "url": post.media_link, "media_key": key,
             "display_url": "pic.x.com/synthetic",
             "expanded_url": f"https://x.com/{post.user.screen_name}/status/{post.id}/photo/{k}"}
        )  # fmt: skip
    tweet = {
        "id": str(post.id),
        "text": text,
        "created_at": _v2_date(post.seconds),
        "author_id": post.user.id,
        "conversation_id": str(post.reply_to.id if post.reply_to else post.id),
        "lang": post.lang,
        "source": SYNTHETIC_SOURCE,
        "public_metrics": dict(
            zip(("retweet_count", "like_count", "reply_count", "quote_count"), post.counts, strict=True)
        ),
        "edit_history_tweet_ids": [str(post.id)],
        "possibly_sensitive": False,
        "reply_settings": "everyone",
        "dnflow_synthetic": True,
    }
    if entities:
        tweet["entities"] = entities
    if keys:
        tweet["attachments"] = {"media_keys": keys}
    if original is not None:
        tweet["referenced_tweets"] = [{"type": "retweeted", "id": str(original.id)}]
    elif post.reply_to is not None:
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": str(post.reply_to.id)}]
        tweet["in_reply_to_user_id"] = post.reply_to.user.id
    if original is None:
        post.v2 = tweet
    return tweet


def _v2_page(posts: list[_Logical], page_number: int) -> dict:
    users: dict[str, dict] = {}
    tweets: dict[str, dict] = {}
    media: dict[str, dict] = {}

    def add_media(post: _Logical) -> None:
        for url in post.photos:
            key = _media_key(url)
            media[key] = {"media_key": key, "type": "photo", "url": url, "width": PHOTO_SIZE[0],
                          "height": PHOTO_SIZE[1]}  # fmt: skip

    data = []
    for post in posts:
        data.append(_render_v2(post))
        users[post.user.id] = post.user.v2
        for user in post.mentions:
            users[user.id] = user.v2
        if post.reply_to is not None:
            users[post.reply_to.user.id] = post.reply_to.user.v2
        if post.retweeted is not None:
            tweets[str(post.retweeted.id)] = _render_v2(post.retweeted)
            users[post.retweeted.user.id] = post.retweeted.user.v2
            add_media(post.retweeted)
        else:
            add_media(post)
    includes = {"users": list(users.values())}
    if tweets:
        includes["tweets"] = list(tweets.values())
    if media:
        includes["media"] = list(media.values())
    meta = {"result_count": len(data), "newest_id": data[-1]["id"], "oldest_id": data[0]["id"],
            "next_token": f"synthetic-page-{page_number + 1}"}  # fmt: skip
    return {"data": data, "includes": includes, "meta": meta, "dnflow_synthetic": True}


def generate_posts(n: int, *, seed: int = 0, fmt: str = "v1", accounts: int = USER_COUNT) -> Iterator[dict]:
    """`n` synthetic posts, as v1.1 tweets (fmt "v1") or as v2 response pages of up to 100 posts
    with their includes (fmt "v2"). The same seed gives the same posts in both formats.

    `accounts`: how many accounts post and are mentioned (drawn Zipf-like). The default pool is
    small; the benchmarks ask for hundreds of thousands to see what many distinct authors cost.
    """
    if fmt not in ("v1", "v2"):
        raise ValueError(f"Unknown synthetic format {fmt!r}: use 'v1' or 'v2'.")
    if accounts < 1:
        raise ValueError(f"Synthetic posts need at least 1 account (got {accounts}).")
    logical = _logical_posts(n, seed, accounts)
    if fmt == "v1":
        for post in logical:
            yield _render_v1(post)
        return
    page: list[_Logical] = []
    pages = 0
    for post in logical:
        page.append(post)
        if len(page) == PAGE_SIZE:
            yield _v2_page(page, pages)
            pages += 1
            page = []
    if page:
        yield _v2_page(page, pages)
