"""The 2016 prototype's design, re-implemented for comparison only: one Luigi task per output.

This is NOT dnflow's code. It is the straightforward way the original prototype was built, kept
honest: every task re-reads the raw file and parses every line with the standard library's
json.loads, then computes its one output with plain Python (Counter, csv, strptime). Nothing is
slowed down on purpose; the outputs follow the same counting rules as dnflow (the benchmark
compares them), so the two do the same work and differ only in design.

    .venv/bin/python bench/prototype_baseline.py FILE OUTDIR [--workers 1]

v2 response pages are turned into v1.1-shaped tweets on the way in (the prototype only knew
v1.1), so the tasks below read one shape.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
from collections import Counter
from datetime import datetime
from urllib.parse import urlsplit

import luigi

OWN_MEDIA = re.compile(r"/(?:photo|video)/\d+$")


# --- reading: every task calls this, so every task parses the whole file -------------------------


def read_tweets(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            if "data" in doc:
                yield from v2_page_as_v1(doc)
            else:
                yield doc


def v2_page_as_v1(page):
    includes = page.get("includes", {})
    users = {u["id"]: u for u in includes.get("users", [])}
    media = {m["media_key"]: m for m in includes.get("media", [])}
    referenced = {t["id"]: t for t in includes.get("tweets", [])}
    for t in page["data"]:
        user = users.get(t.get("author_id"), {})
        user_metrics = user.get("public_metrics", {})
        metrics = t.get("public_metrics", {})
        entities = (t.get("note_tweet") or {}).get("entities") or t.get("entities", {})
        retweet_of = None
        for ref in t.get("referenced_tweets", []):
            if ref["type"] == "retweeted":
                retweet_of = ref["id"]
        carrier = referenced.get(retweet_of, t) if retweet_of else t
        attached = [media.get(key, {}) for key in carrier.get("attachments", {}).get("media_keys", [])]
        tweet = {
            "id_str": t["id"],
            "created_at": t.get("created_at"),
            "full_text": t.get("text", ""),
            "lang": t.get("lang", ""),
            "user": {
                "screen_name": user.get("username", ""),
                "followers_count": user_metrics.get("followers_count"),
                "friends_count": user_metrics.get("following_count"),
            },
            "entities": {
                "hashtags": [{"text": h["tag"]} for h in entities.get("hashtags", [])],
                "user_mentions": [{"screen_name": m["username"]} for m in entities.get("mentions", [])],
                "urls": [
                    u
                    for u in entities.get("urls", [])
                    if "media_key" not in u and not OWN_MEDIA.search(u.get("expanded_url", ""))
                ],
            },
            "extended_entities": {
                "media": [{"type": m.get("type"), "media_url_https": m.get("url")} for m in attached]
            },
            "retweet_count": metrics.get("retweet_count", 0),
            "favorite_count": metrics.get("like_count", 0),
            "reply_count": metrics.get("reply_count", 0),
            "quote_count": metrics.get("quote_count", 0),
        }
        if retweet_of:
            tweet["retweeted_status"] = {"id_str": retweet_of}
        yield tweet


# --- what each task needs from a tweet -----------------------------------------------------------


def entities(tweet):
    return tweet.get("extended_tweet", {}).get("entities") or tweet.get("entities", {})


def photos(tweet):
    def media_of(t):
        extended = t.get("extended_tweet", {}).get("extended_entities", {}).get("media")
        return extended or t.get("extended_entities", {}).get("media") or t.get("entities", {}).get("media") or []

    media = media_of(tweet.get("retweeted_status", {})) or media_of(tweet)
    return [m.get("media_url_https") or m.get("media_url") for m in media if m.get("type") == "photo"]


def parse_date(value):
    if value[:1].isdigit():  # v2: 2024-03-05T00:00:11.000Z
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")


def sort_counts(counts):
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# --- the tasks -----------------------------------------------------------------------------------


class RawTweets(luigi.ExternalTask):
    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)


class PrototypeTask(luigi.Task):
    path = luigi.Parameter()
    outdir = luigi.Parameter()
    filename = ""

    def requires(self):
        return RawTweets(path=self.path)

    def output(self):
        return luigi.LocalTarget(os.path.join(self.outdir, self.filename))

    def write_rows(self, header, rows):
        with self.output().temporary_path() as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


class CountHashtags(PrototypeTask):
    filename = "count-hashtags.csv"

    def run(self):
        counts = Counter()
        for tweet in read_tweets(self.path):
            for tag in entities(tweet).get("hashtags", []):
                counts[tag["text"].lower()] += 1
        self.write_rows(("hashtag", "count"), sort_counts(counts))


class CountMentions(PrototypeTask):
    filename = "count-mentions.csv"

    def run(self):
        counts = Counter()
        for tweet in read_tweets(self.path):
            for mention in entities(tweet).get("user_mentions", []):
                counts[mention["screen_name"].lower()] += 1
        self.write_rows(("screen_name", "count"), sort_counts(counts))


class CountUrls(PrototypeTask):
    filename = "count-urls.csv"

    def run(self):
        counts = Counter()
        for tweet in read_tweets(self.path):
            for url in entities(tweet).get("urls", []):
                counts[url.get("expanded_url") or url["url"]] += 1
        self.write_rows(("url", "count"), sort_counts(counts))


class CountDomains(PrototypeTask):
    filename = "count-domains.csv"

    def run(self):
        counts = Counter()
        for tweet in read_tweets(self.path):
            for url in entities(tweet).get("urls", []):
                domain = urlsplit(url.get("expanded_url") or url["url"]).netloc.lower()
                if domain:
                    counts[domain] += 1
        self.write_rows(("domain", "count"), sort_counts(counts))


class CountMedia(PrototypeTask):
    filename = "count-media.csv"

    def run(self):
        counts = Counter()
        for tweet in read_tweets(self.path):
            for url in photos(tweet):
                counts[url] += 1
        rows = [(url, urlsplit(url).path.rstrip("/").split("/")[-1], n) for url, n in sort_counts(counts)]
        self.write_rows(("url", "file", "count"), rows)


class CountFollowers(PrototypeTask):
    filename = "count-followers.csv"

    def run(self):
        followers = {}
        for tweet in read_tweets(self.path):
            if tweet["user"]["followers_count"] is not None:
                followers[tweet["user"]["screen_name"]] = tweet["user"]["followers_count"]
        self.write_rows(("user", "followers"), sort_counts(followers))


class FollowRatio(PrototypeTask):
    filename = "follow-ratio.csv"

    def run(self):
        users = {}
        for tweet in read_tweets(self.path):
            users[tweet["user"]["screen_name"]] = (tweet["user"]["followers_count"], tweet["user"]["friends_count"])
        ratios = {name: f / g for name, (f, g) in users.items() if f is not None and g}
        self.write_rows(("user", "ratio"), [(name, repr(r)) for name, r in sort_counts(ratios)])


class TopRetweets(PrototypeTask):
    filename = "retweets.csv"

    def run(self):
        counts = {}
        for tweet in read_tweets(self.path):
            original = tweet.get("retweeted_status", {}).get("id_str") or tweet["id_str"]
            if tweet["retweet_count"] > counts.get(original, 0):
                counts[original] = tweet["retweet_count"]
        top = sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0])))[:100]
        self.write_rows(("tweet_id", "count"), top)


class EdgelistHashtags(PrototypeTask):
    filename = "edgelist-hashtags.csv"

    def run(self):
        rows = (
            (tweet["user"]["screen_name"], tag["text"].lower())
            for tweet in read_tweets(self.path)
            for tag in entities(tweet).get("hashtags", [])
        )
        self.write_rows(("user", "hashtag"), rows)


class EdgelistMentions(PrototypeTask):
    filename = "edgelist-mentions.csv"

    def run(self):
        rows = (
            (tweet["user"]["screen_name"], mention["screen_name"])
            for tweet in read_tweets(self.path)
            for mention in entities(tweet).get("user_mentions", [])
        )
        self.write_rows(("from_user", "to_user"), rows)


class TweetIds(PrototypeTask):
    filename = "tweet-ids.txt"

    def run(self):
        with self.output().open("w") as f:
            for tweet in read_tweets(self.path):
                f.write(tweet["id_str"] + "\n")


TWEET_HEADER = (
    "id,created_at,user,text,lang,retweet_count,like_count,reply_count,quote_count,is_retweet,retweeted_id,"
    "quoted_id,in_reply_to_id,hashtags,mentions,urls,photos,source_format"
).split(",")


def tweet_row(tweet):
    ents = entities(tweet)
    retweeted = tweet.get("retweeted_status", {}).get("id_str", "")
    return [
        tweet["id_str"],
        parse_date(tweet["created_at"]).isoformat(),
        tweet["user"]["screen_name"],
        tweet.get("extended_tweet", {}).get("full_text") or tweet.get("full_text") or tweet.get("text", ""),
        tweet.get("lang", ""),
        tweet["retweet_count"],
        tweet.get("favorite_count", 0),
        tweet.get("reply_count", 0),
        tweet.get("quote_count", 0),
        "true" if retweeted else "false",
        retweeted,
        tweet.get("quoted_status_id_str", ""),
        tweet.get("in_reply_to_status_id_str") or "",
        " ".join(h["text"] for h in ents.get("hashtags", [])),
        " ".join(m["screen_name"] for m in ents.get("user_mentions", [])),
        " ".join(u.get("expanded_url") or u["url"] for u in ents.get("urls", [])),
        " ".join(photos(tweet)),
        "v1",
    ]


class TweetsCsv(PrototypeTask):
    filename = "tweets.csv"

    def run(self):
        self.write_rows(TWEET_HEADER, (tweet_row(t) for t in read_tweets(self.path)))


class SampleTweets(PrototypeTask):
    filename = "sample.csv"
    size = 10

    def run(self):
        rng = random.Random(self.path)
        sample = []
        for seen, tweet in enumerate(read_tweets(self.path)):
            if len(sample) < self.size:
                sample.append(tweet_row(tweet))
            else:
                slot = rng.randrange(seen + 1)
                if slot < self.size:
                    sample[slot] = tweet_row(tweet)
        self.write_rows(TWEET_HEADER, sample)


class SummaryJson(PrototypeTask):
    filename = "summary.json"

    def run(self):
        num, first, last = 0, None, None
        hashtags, mentions, urls, users = set(), set(), set(), set()
        for tweet in read_tweets(self.path):
            num += 1
            moment = parse_date(tweet["created_at"])
            first = moment if first is None or moment < first else first
            last = moment if last is None or moment > last else last
            ents = entities(tweet)
            hashtags.update(h["text"].lower() for h in ents.get("hashtags", []))
            mentions.update(m["screen_name"].lower() for m in ents.get("user_mentions", []))
            urls.update(u.get("expanded_url") or u["url"] for u in ents.get("urls", []))
            users.add(tweet["user"]["screen_name"])
        summary = {
            "num_tweets": num,
            "first_tweet_at": first.isoformat() if first else None,
            "last_tweet_at": last.isoformat() if last else None,
            "unique_hashtags": len(hashtags),
            "unique_mentions": len(mentions),
            "unique_urls": len(urls),
            "unique_users": len(users),
        }
        with self.output().open("w") as f:
            json.dump(summary, f, indent=2)


OUTPUT_TASKS = (
    CountHashtags,
    CountMentions,
    CountUrls,
    CountDomains,
    CountMedia,
    CountFollowers,
    FollowRatio,
    TopRetweets,
    EdgelistHashtags,
    EdgelistMentions,
    TweetIds,
    TweetsCsv,
    SampleTweets,
    SummaryJson,
)


class AllOutputs(luigi.WrapperTask):
    path = luigi.Parameter()
    outdir = luigi.Parameter()

    def requires(self):
        return [task(path=self.path, outdir=self.outdir) for task in OUTPUT_TASKS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("outdir")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    result = luigi.build(
        [AllOutputs(path=os.path.abspath(args.file), outdir=os.path.abspath(args.outdir))],
        local_scheduler=True,
        workers=args.workers,
        log_level="WARNING",
        detailed_summary=True,
    )
    print(result.summary_text)
    if result.status.name not in ("SUCCESS", "SUCCESS_WITH_RETRY"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
