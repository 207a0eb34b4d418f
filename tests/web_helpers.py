"""Finished searches for the page tests: a small hand-written output folder per the spec.

SYNTHETIC data, written by hand for these tests (not derived from the real fixtures). Its values
are chosen so a test can check what the pages show against numbers you can count here:
5 posts between 2024-03-01 10:00 and 2024-03-02 09:00 UTC, hashtags climate ×3, energy ×2, ...
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

from django.utils import timezone

from pipeline import timeline
from searches.models import EventKind, Search, SearchRun, Source, Status, TaskEvent

TWEET_COLUMNS = [
    "id",
    "created_at",
    "user",
    "text",
    "lang",
    "retweet_count",
    "like_count",
    "reply_count",
    "quote_count",
    "is_retweet",
    "retweeted_id",
    "quoted_id",
    "in_reply_to_id",
    "hashtags",
    "mentions",
    "urls",
    "photos",
    "source_format",
]

# (id, created_at, user, text, retweet_count, retweeted_id, hashtags)
POSTS = [
    ("1001", "2024-03-01T10:05:00+00:00", "ada", "Heat records again #climate #energy", 7, "", "climate energy"),
    ("1002", "2024-03-01T10:40:00+00:00", "ben", "RT @ada: Heat records again", 7, "1001", "climate energy"),
    ("1003", "2024-03-01T12:10:00+00:00", "cleo", "Solar is cheap now\nsecond line #climate", 2, "", "climate"),
    ("1004", "2024-03-02T09:00:00+00:00", "dan", "RT @zed: an original we never saw", 3, "999", ""),
    ("1005", "2024-03-02T09:30:00+00:00", "ada", "Wind farm opens", 0, "", ""),
]

# A retweeted original the collection does not hold, of which a retweet carried a copy.
EMBEDDED = {"999": ("999", "2024-02-28T08:00:00+00:00", "zed", "an original we never saw")}

COUNTS = {
    "count-hashtags.csv": (["hashtag", "count"], [("climate", 3), ("energy", 2)]),
    "count-mentions.csv": (["screen_name", "count"], [("ada", 1), ("zed", 1)]),
    "count-urls.csv": (["url", "count"], [("https://example.org/heat", 2), ("https://news.example.com/solar", 1)]),
    "count-domains.csv": (["domain", "count"], [("example.org", 2), ("news.example.com", 1)]),
    "count-media.csv": (
        ["url", "file", "count"],
        [
            ("https://pbs.example.com/media/AAA.jpg", "AAA.jpg", 2),
            ("https://pbs.example.com/media/BBB.png", "BBB.png", 1),
        ],
    ),
    # Deliberately not sorted: the pages must rank followers themselves.
    "count-followers.csv": (["user", "followers"], [("ada", 120), ("ben", 5000), ("cleo", 40), ("dan", 0)]),
    "follow-ratio.csv": (["user", "ratio"], [("ada", 1.2), ("ben", 50.0), ("cleo", 0.4444)]),
    "retweets.csv": (["tweet_id", "count"], [("1001", 7), ("999", 3), ("1003", 2)]),
    "edgelist-hashtags.csv": (["user", "hashtag"], [("ada", "climate"), ("ada", "energy"), ("cleo", "climate")]),
    "edgelist-mentions.csv": (["from_user", "to_user"], [("ben", "ada"), ("dan", "zed")]),
}


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    """A small real PNG, so browsers and Pillow accept the photos the summary shows."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_csv(path: Path, columns: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def write_outputs(
    search: Search,
    *,
    posts=POSTS,
    counts=None,
    with_timeline: bool = False,
    extra_summary: dict | None = None,
) -> Path:
    """Write the folder of the search's newest run (as the workflow would) and return it."""
    folder = SearchRun.objects.get(pk=search.latest_run_id).folder_path
    (folder / "media").mkdir(parents=True, exist_ok=True)
    for name, (columns, rows) in (counts or COUNTS).items():
        write_csv(folder / name, columns, rows)
    tweet_rows = [
        [pid, when, user, text, "en", rts, 0, 0, 0, bool(rt), rt, "", "", tags, "", "", "", "v2"]
        for pid, when, user, text, rts, rt, tags in posts
    ]
    write_csv(folder / "tweets.csv", TWEET_COLUMNS, tweet_rows)
    write_csv(folder / "sample.csv", TWEET_COLUMNS, tweet_rows[:2])
    (folder / "tweet-ids.txt").write_text("".join(f"{p[0]}\n" for p in posts))
    with (folder / "tweets.jsonl").open("w") as handle:
        for p in posts:
            handle.write(json.dumps({"id": p[0], "text": p[3]}) + "\n")
    for name, colour in (("AAA.jpg", (200, 60, 40)), ("BBB.png", (40, 120, 200)), ("CCC.png", (210, 70, 50))):
        (folder / "media" / name).write_bytes(png_bytes(colour))
    (folder / "media-graph.json").write_text(json.dumps([["AAA.jpg", "CCC.png"], ["BBB.png"]]))
    media_rows = (counts or COUNTS).get("count-media.csv", ([], []))[1]
    (folder / "media" / "photos.json").write_text(json.dumps({"files": {url: file for url, file, _ in media_rows}}))
    # The most retweeted posts as the pass writes them: from the original, or a copy a retweet held.
    by_id = {p[0]: p for p in posts}
    retweeted = [
        (pid, by_id[pid][1], by_id[pid][2], by_id[pid][3]) if pid in by_id else EMBEDDED.get(pid, (pid, "", "", ""))
        for pid, _ in (counts or COUNTS).get("retweets.csv", ([], []))[1]
    ]
    write_csv(folder / "retweeted-posts.csv", ["tweet_id", "created_at", "user", "text"], retweeted)
    summary = {
        "id": search.pk,
        "term": search.term,
        "source": search.source,
        "status": "finished",
        "started": "2024-03-03T08:00:00+00:00",
        "finished": "2024-03-03T08:01:00+00:00",
        "num_tweets": len(posts),
        "first_tweet_at": min(p[1] for p in posts) if posts else None,
        "last_tweet_at": max(p[1] for p in posts) if posts else None,
        "unique_hashtags": 2,
        "unique_mentions": 2,
        "unique_urls": 2,
        "unique_users": len({p[2] for p in posts}),
        "dnflow_version": "test",
    }
    if with_timeline:
        summary["timeline"] = [{"time": "2024-03-01T10:00:00+00:00", "count": 4}]
    summary.update(extra_summary or {})
    (folder / "summary.json").write_text(json.dumps(summary))
    over_time = timeline.series({datetime.fromisoformat(p[1]): 1 for p in posts}) if posts else None
    write_csv(folder / "posts-over-time.csv", ["bucket_start", "count"], timeline.csv_rows(over_time) if posts else [])
    write_package(folder, ["count-hashtags.csv", "tweet-ids.txt", "summary.json"])
    return folder


def write_package(folder: Path, names: list[str]) -> Path:
    """A zip shaped like the workflow's BagIt package (bagit.txt and data/), holding the named files."""
    import zipfile

    path = folder / f"{folder.name}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder.name}/bagit.txt", "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        for name in names:
            archive.write(folder / name, f"{folder.name}/data/{name}")
    return path


RUN_FIELDS = ("progress", "step", "error", "rate_limited_until", "rq_job_id", "num_posts", "started", "finished")


def make_search(owner, *, status=Status.FINISHED, published=False, outputs=True, term="climate", **fields) -> Search:
    """A search whose one run is in the given state; a finished one gets an output folder."""
    run_fields = {name: fields.pop(name) for name in RUN_FIELDS if name in fields}
    fields.setdefault("source", Source.SAMPLE)
    search = Search.objects.create(owner=owner, term=term, published_at=timezone.now() if published else None, **fields)
    add_run(search, status=status, outputs=outputs, **run_fields)
    return Search.objects.with_runs().get(pk=search.pk)


def add_run(search: Search, *, status=Status.FINISHED, outputs=True, **fields) -> SearchRun:
    """A new run of the search, taken to `status` through the run's own transitions."""
    run = search.start_run()
    runs = run.runs()
    if status != Status.QUEUED:
        if status == Status.CANCELLED:
            runs.cancel()
        else:
            runs.claim()
            if status == Status.FINISHED:
                runs.finish()
            elif status == Status.FAILED:
                runs.fail(fields.pop("error", "The archive ended in the middle of a post."))
    finished = status == Status.FINISHED
    # What the workflow would have reported along the way.
    shown = {
        "progress": 100.0 if finished else 40.0,
        "step": {Status.FINISHED: "Finished", Status.FAILED: "Failed", Status.CANCELLED: "Cancelled"}.get(
            status, "Counting hashtags"
        ),
        "num_posts": len(POSTS) if finished else None,
    }
    if not finished:
        shown.update(fields)
    else:
        shown.update({k: v for k, v in fields.items() if k not in ("progress", "step")})
    runs.update(**shown)
    search.latest_run = run
    if finished and outputs:
        write_outputs(search)
    run.refresh_from_db()
    return run


def add_events(search: Search, families=("Collect", "Count"), *, fail_last: bool = False) -> None:
    """A started-and-finished pair per task (the last one failed if asked), as the workflow records them."""
    base = timezone.now() - timezone.timedelta(minutes=5)
    for index, family in enumerate(families):
        start = base + timezone.timedelta(seconds=30 * index)
        TaskEvent.objects.create(
            run_id=search.latest_run_id, task_family=family, task_id=f"{family}_1", event=EventKind.START, created=start
        )
        failed = fail_last and index == len(families) - 1
        TaskEvent.objects.create(
            run_id=search.latest_run_id,
            task_family=family,
            task_id=f"{family}_1",
            event=EventKind.FAILURE if failed else EventKind.SUCCESS,
            message="The archive ended in the middle of a post." if failed else "",
            created=start + timezone.timedelta(seconds=12),
        )


def field_errors(page: str, field: str) -> str:
    """The errors a form shows on one field, as text."""
    import html
    import re

    match = re.search(rf'<div class="field-errors" id="id_{field}-errors" role="alert">(.*?)</div>', page, re.S)
    return html.unescape(match.group(1)) if match else ""


def older_links(page: str) -> list[str]:
    """The query strings of a home page's "Older" links, one per paged list in page order (yours,
    then the published ones), as a browser would send them."""
    return [link.replace("&amp;", "&") for link in re.findall(r'<a href="\?([^"]*)" rel="next">', page)]
