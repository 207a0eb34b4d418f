"""Purges for the tests: an uploaded archive of real recorded pages, posts deleted on the emulated X
API as X deletes them, a recheck and a purge carried out in this process."""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from pathlib import Path

from searches import services
from searches.models import RunKind, Search, SearchRun, Source, Status

PAGES = "v2-pages-twarc-network.jsonl"
# Two posts of the recorded pages that others refer to: a reply's, and one retweeted twice (X
# removes a retweet with its original, so its two retweets go too).
REPLIED_TO = "1408871761727393794"
RETWEETED = "1408872287697317899"


def upload(data_dir: Path, source: Path) -> str:
    """Where the web form stores an uploaded archive (searches.views.pages._save_upload)."""
    folder = data_dir / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return str(shutil.copyfile(source, folder / source.name))


def deleted_on_x(x_api) -> set[str]:
    """The posts the test deletes on X: the two above with the retweets of the second, and three
    posts nobody refers to. Each one's text is its own: no post that stays carries it."""
    retweet = {"type": "retweeted", "id": RETWEETED}
    retweets = [p["id"] for p in x_api.posts if retweet in p.get("referenced_tweets", [])]
    named = {r["id"] for p in x_api.posts for r in p.get("referenced_tweets", [])}
    alone = [p["id"] for p in x_api.posts if not p.get("referenced_tweets") and p["id"] not in named][5:8]
    gone = {REPLIED_TO, RETWEETED, *retweets, *alone}
    assert len(retweets) == 2 and len(gone) == 7
    for post in x_api.posts:
        if post["id"] not in gone:
            assert not any(text_of(x_api, g) in post["text"] for g in gone), post["id"]
    x_api.delete_posts(*gone)
    return gone


def text_of(x_api, post_id: str) -> str:
    return next(p["text"] for p in x_api.posts if p["id"] == post_id)


def rechecked(search: Search) -> SearchRun:
    services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
    run = services.execute_search(Search.objects.get(pk=search.pk))
    assert (run.kind, run.status) == (RunKind.RECHECK, Status.FINISHED), run.error
    return run


def purged(search: Search) -> SearchRun:
    services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    run = services.execute_search(Search.objects.get(pk=search.pk))
    assert (run.kind, run.status) == (RunKind.PURGE, Status.FINISHED), run.error
    return run


def archive_search(owner, data_dir: Path, real_data: Path, **fields) -> tuple[Search, SearchRun]:
    archive = upload(data_dir, real_data / PAGES)
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=archive, enqueue=False, **fields)
    first = services.execute_search(search)
    assert first.status == Status.FINISHED, first.error
    return Search.objects.with_runs().get(pk=search.pk), first


def post_objects(value, found: list) -> list:
    """Every object in a parsed document that is a post (an id and a text), by id, in order."""
    if isinstance(value, dict):
        if ("id" in value or "id_str" in value) and ("text" in value or "full_text" in value):
            found.append(str(value.get("id_str") or value.get("id")))
        for inner in value.values():
            post_objects(inner, found)
    elif isinstance(value, list):
        for inner in value:
            post_objects(inner, found)
    return found


def objects_in(raw: Path) -> list[str]:
    """The ids of every post object in a JSON lines file: posts, their originals and inlined copies."""
    found: list = []
    for line in raw.read_bytes().splitlines():
        with contextlib.suppress(ValueError):  # an empty or broken line holds no post
            post_objects(json.loads(line), found)
    return found
