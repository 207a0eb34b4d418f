"""The bundled SYNTHETIC sample: deterministic, labelled synthetic everywhere, realistic enough to
exercise every count, and with look-alike photos for perceptual matching."""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

import imagehash
import orjson
import pytest
from PIL import Image

from pipeline.formats import ImportReport, iter_collection, iter_posts
from pipeline.sample import SAMPLE_PHOTO_HOST, ensure_sample, generate_posts, local_photo_path, photo_url


@pytest.fixture
def sample_posts():
    return list(iter_collection(ensure_sample(), report=ImportReport()))


def test_sample_is_the_same_bytes_every_time(settings, tmp_path):
    first = ensure_sample()
    settings.DNFLOW_DATA_DIR = tmp_path / "elsewhere"

    second = ensure_sample()

    assert first != second and first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in second.parent.iterdir()) == [second.name]  # no temporary file left


def test_sample_is_generated_once_then_reused():
    path = ensure_sample()
    written = path.stat().st_mtime_ns
    assert ensure_sample() == path and path.stat().st_mtime_ns == written


def test_every_post_is_labelled_synthetic():
    lines = ensure_sample().read_bytes().splitlines()
    tweets = [orjson.loads(line) for line in lines]

    assert 2500 <= len(tweets) <= 3500
    assert all(t["dnflow_synthetic"] is True and t["source"] == "dnflow synthetic sample" for t in tweets)
    assert all("Synthetic account" in t["user"]["description"] for t in tweets)
    for page in generate_posts(250, seed=3, fmt="v2"):
        assert page["dnflow_synthetic"] is True and all(t["dnflow_synthetic"] for t in page["data"])


def test_links_and_photos_can_never_reach_a_real_site(sample_posts):
    hosts = {urlsplit(url).hostname for post in sample_posts for url in post.urls}
    photo_hosts = {urlsplit(url).hostname for post in sample_posts for url in post.photos}

    assert len(hosts) >= 50 and all(host.endswith(".example") for host in hosts)
    assert photo_hosts == {SAMPLE_PHOTO_HOST} and SAMPLE_PHOTO_HOST.endswith(".invalid")


def test_climate_finds_a_few_hundred_posts():
    report = ImportReport()
    found = list(iter_collection(ensure_sample(), term="climate", report=report))
    assert 200 <= len(found) <= 500
    assert len(found) < report.posts_seen / 5  # the other topics are there too


def test_sample_has_the_shapes_real_collections_have(sample_posts):
    authors = Counter(post.user for post in sample_posts)
    photos = Counter(url for post in sample_posts for url in post.photos)
    langs = Counter(post.lang for post in sample_posts)

    # Authors: a few very active, most with one or two posts.
    assert authors.most_common(1)[0][1] >= 50 and sum(1 for n in authors.values() if n <= 2) > len(authors) / 2
    # Photos shared by many posts, hashtags in varied case, retweets, replies, languages.
    assert photos.most_common(1)[0][1] >= 10 and len(photos) >= 50
    assert {"climate", "Climate", "CLIMATE"} <= {tag for post in sample_posts for tag in post.hashtags}
    assert 0.15 < sum(p.is_retweet for p in sample_posts) / len(sample_posts) < 0.5
    assert sum(p.is_reply and p.in_reply_to_user != "" for p in sample_posts) > 100
    assert len(langs) >= 5 and langs["en"] > len(sample_posts) / 2
    assert any(p.following == 0 for p in sample_posts)  # follow-ratio.csv must leave such authors out
    created = [p.created_at for p in sample_posts]
    assert created == sorted(created) and created[0].startswith("2024-03-01T")


def test_v1_and_v2_of_one_seed_normalise_to_the_same_posts(tmp_path):
    for fmt in ("v1", "v2"):
        with (tmp_path / f"{fmt}.jsonl").open("wb") as out:
            for document in generate_posts(1000, seed=7, fmt=fmt):
                out.write(orjson.dumps(document) + b"\n")

    v1 = list(iter_posts(tmp_path / "v1.jsonl", ImportReport()))
    v2 = list(iter_posts(tmp_path / "v2.jsonl", ImportReport()))

    def fields(p):
        return (p.id, p.created_at, p.user, p.followers, p.following, p.text, p.lang, p.retweet_count,
                p.retweeted_id, p.in_reply_to_id, p.in_reply_to_user, p.hashtags, p.mentions, p.urls, p.photos,
                p.has_media)  # fmt: skip

    assert len(v1) == len(v2) == 1000
    assert [fields(p) for p in v1] == [fields(p) for p in v2]
    assert sum(bool(p.photos) and p.is_retweet for p in v2) > 20  # photos of retweets come from includes


def test_v2_pages_carry_the_traps_real_pages_have():
    pages = list(generate_posts(450, seed=1, fmt="v2"))

    assert [len(page["data"]) for page in pages] == [100, 100, 100, 100, 50]
    data = [tweet for page in pages for tweet in page["data"]]
    retweets = [t for t in data if t.get("referenced_tweets", [{}])[0].get("type") == "retweeted"]
    assert any(t["text"].endswith("…") for t in retweets)  # cut short, like the real API
    assert any("entities" not in t for t in data)  # absent when a post has none
    assert any(u.get("media_key") for t in data for u in t.get("entities", {}).get("urls", []))
    assert all("tweets" in page["includes"] and "media" in page["includes"] for page in pages)


def test_generation_is_deterministic_and_streams_quickly():
    start = time.perf_counter()
    first = [orjson.dumps(t) for t in generate_posts(20_000, seed=11, fmt="v1")]
    elapsed = time.perf_counter() - start
    assert first == [orjson.dumps(t) for t in generate_posts(20_000, seed=11, fmt="v1")]
    assert first != [orjson.dumps(t) for t in generate_posts(20_000, seed=12, fmt="v1")]
    # About 10 microseconds a post here; a million posts for the benchmark must take seconds, not hours.
    assert elapsed < 10, f"20,000 synthetic posts took {elapsed:.1f} s"
    with pytest.raises(ValueError, match="Unknown synthetic format"):
        next(generate_posts(1, fmt="v3"))


def test_near_duplicate_photos_look_alike_and_others_do_not():
    with_variants = [n for n in range(0, 60) if local_photo_path(photo_url(n, 1))][:6]
    assert len(with_variants) == 6

    def phash(url):
        return imagehash.phash(Image.open(local_photo_path(url)))

    for number in with_variants:
        base = phash(photo_url(number))
        assert base - phash(photo_url(number, 1)) <= 8
        assert base - phash(photo_url(number, 2)) <= 8
    bases = [phash(photo_url(n)) for n in range(20)]
    assert min(a - b for i, a in enumerate(bases) for b in bases[i + 1 :]) > 10


def test_sample_photos_are_local_deterministic_files(settings, tmp_path, sample_posts):
    url = Counter(u for post in sample_posts for u in post.photos).most_common(1)[0][0]
    path = local_photo_path(url)

    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (320, 240)
    settings.DNFLOW_DATA_DIR = tmp_path / "other"
    assert local_photo_path(url).read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "url",
    [
        "https://pbs.twimg.com/media/EyebGPCXIAMP9xj.jpg",
        f"https://{SAMPLE_PHOTO_HOST}/photos/img-9999.jpg",  # beyond the pool
        f"https://{SAMPLE_PHOTO_HOST}/photos/img-0001-v1.jpg",  # image 1 has no variants
        f"https://{SAMPLE_PHOTO_HOST}/../../etc/passwd",
        f"https://{SAMPLE_PHOTO_HOST}.attacker.example/photos/img-0000.jpg",
        "not a url at all",
    ],
)
def test_other_urls_have_no_local_photo(url):
    assert local_photo_path(url) is None


def test_a_bigger_pool_of_accounts_gives_many_more_authors_and_the_default_is_unchanged():
    default = [post["user"]["screen_name"] for post in generate_posts(3000, seed=3)]
    assert default == [post["user"]["screen_name"] for post in generate_posts(3000, seed=3, accounts=2500)]
    assert len(set(default)) <= 2500
    many = {post["user"]["screen_name"] for post in generate_posts(3000, seed=3, accounts=100_000)}
    assert len(many) > 1.5 * len(set(default))
    with pytest.raises(ValueError, match="at least 1 account"):
        next(generate_posts(1, accounts=0))
