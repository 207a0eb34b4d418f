"""Single-document archives (a JSON array, a v1.1 search response, tweets.js, one v2 response
page) import in memory that does not grow with their size, as JSONL does, and copy to exactly
the lines they did when they were read whole.

The big archives are SYNTHETIC (pipeline.sample's generator), written at 40 MiB: read whole, such
a file took 300 to 470 MiB; streamed, the copy holds a few MiB of it at a time. The streamed copy
is checked against the copy of the whole document on the real recorded fixtures, on edge cases
and on random JSON, read a few bytes at a time so that every boundary falls in every place.
"""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.formats import ArchiveError, ImportReport, copy_archive, documents, jsonscan, pagesplit, reading

from .document_helpers import KINDS, gzip_file, import_in_a_fresh_process, synthetic_v1_posts, write_document
from .formats_helpers import import_files, posts_of, v1_tweet, v2_page

SIZE = 40 * 1024 * 1024
# A fresh Python with orjson and the pipeline is about 30 MB; the copy adds its read buffer and
# one element at a time, the read-back one line at a time.
PEAK_BOUND = 150 * 1024 * 1024


@pytest.fixture(scope="module")
def big_documents(tmp_path_factory):
    folder = tmp_path_factory.mktemp("documents")
    made = {}
    for kind in KINDS:
        path = folder / f"synthetic-{kind.replace(' ', '-')}.json"
        made[kind] = (path, write_document(path, kind, SIZE))
    return made


@pytest.mark.parametrize("kind", KINDS)
def test_a_big_single_document_copies_in_bounded_memory(big_documents, kind, tmp_path):
    source, expected = big_documents[kind]

    peak, digest, lines, posts, bad, label = import_in_a_fresh_process(source, tmp_path / "s" / "tweets.jsonl")

    assert peak < PEAK_BOUND, f"{kind}: peak {peak / 2**20:.0f} MiB for a {source.stat().st_size / 2**20:.0f} MiB file"
    assert bad == 0
    if kind == "v2 page":
        assert posts == expected.lines and lines > 1, label  # split into pages that keep their includes
    else:
        assert (digest, lines, posts) == (expected.digest.hexdigest(), expected.lines, expected.lines), label


def test_a_small_gzip_of_one_post_copied_many_times_copies_in_bounded_memory(tmp_path):
    """1.5 MB of gzip holding a JSON array of 100,000 copies of one post (263 MiB once unpacked)."""
    post = orjson.dumps(next(synthetic_v1_posts()))
    source = tmp_path / "copies.json.gz"
    with gzip.open(source, "wb") as out:
        out.write(b"[")
        for number in range(100_000):
            out.write(b"," + post if number else post)
        out.write(b"]")

    peak, _digest, lines, posts, bad, _label = import_in_a_fresh_process(source, tmp_path / "s" / "tweets.jsonl")

    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.0f} MiB"
    assert (lines, posts, bad) == (100_000, 100_000, 0)


def test_a_gzipped_big_array_streams_too(big_documents, tmp_path):
    source, expected = big_documents["array"]
    packed = gzip_file(source)

    peak, digest, lines, _posts, _bad, label = import_in_a_fresh_process(packed, tmp_path / "s" / "tweets.jsonl")

    assert peak < PEAK_BOUND and label == "gzip, JSON array of v1.1 tweets"
    assert (digest, lines) == (expected.digest.hexdigest(), expected.lines)


# --- the streamed copy is the copy of the whole document -------------------------------------------


@pytest.fixture
def tiny_buffers(monkeypatch):
    """Every object document streamed, read a few bytes at a time: every boundary is crossed."""
    monkeypatch.setattr(documents, "WHOLE_DOCUMENT_BYTES", 0)
    monkeypatch.setattr(jsonscan, "CHUNK", 7)
    monkeypatch.setattr(pagesplit, "PAGE_POSTS", 7)


def whole_copy(data: bytes) -> bytes:
    """What the copy of a single-document archive was when it was parsed whole."""
    text = data.decode("utf-8").removeprefix("\ufeff")
    if text.lstrip().startswith("window.YTD"):
        text = text[text.index("=") + 1 :]
    document = orjson.loads(text)
    items = document["statuses"] if isinstance(document, dict) else document
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def copied(tmp_path, name: str, data: bytes) -> tuple[bytes, ImportReport]:
    source = tmp_path / name
    source.write_bytes(data)
    raw = tmp_path / f"copy-of-{name}" / "tweets.jsonl"
    report = copy_archive([source], raw)
    return raw.read_bytes(), report


def real_documents(real_data) -> list[dict]:
    found = []
    for name in ("v1-streaming-lines.jsonl", "twarc2-flat.jsonl"):
        for line in (real_data / name).read_bytes().splitlines():
            found.append(orjson.loads(line))
    return found


# Raw JSON as exports write it: big numbers, escapes, brackets in strings, deep nesting, a key twice.
EDGES = [
    rb'{"id": 18446744073709551615, "big": 18446744073709551616, "neg": -9223372036854775809, "f": [1e5, -0.0, 1E-7]}',
    '{"text": "caf\u00e9 \U0001f600 \u202e [not] {a bracket} , : \\" quoted", "e": "\\\\"}'.encode(),
    b'{"deep": ' + b"[" * 30 + b'{"x": [1, {"y": "]"}]}' + b"]" * 30 + b"}",
    rb'{"dup": 1, "dup": 2}',
    rb'{"u": "\u00e9\ud83d\ude00", "slash": "a\/b", "ctrl": "\n\t"}',
    rb'"a string item"',
    rb"12",
    rb"null",
    rb"[]",
    rb"{}",
]


@pytest.mark.parametrize("pretty", [True, False])
def test_streamed_arrays_responses_and_tweets_js_copy_to_the_lines_of_the_whole_document(
    real_data, tmp_path, tiny_buffers, pretty
):
    posts = real_documents(real_data)
    option = orjson.OPT_INDENT_2 if pretty else 0
    edges = b"[" + orjson.dumps(posts[0]) + b",\n " + b" ,\n".join(EDGES) + b"]"
    cases = {
        "array.json": orjson.dumps(posts, option=option),
        "edges.json": b"\xef\xbb\xbf \n" + edges + b"\n\n",
        # (on one line it would be JSON lines, read as such, as before)
        "statuses.json": b'{"search_metadata": {"n": 1},\n"statuses": ' + orjson.dumps(posts, option=option) + b"}",
        "tweets.js": b"window.YTD.tweets.part0 = " + orjson.dumps([{"tweet": p} for p in posts], option=option),
    }
    for name, data in cases.items():
        copy, report = copied(tmp_path, name, data)
        assert copy == whole_copy(data), name
        assert report.sources[0]["lines"] == copy.count(b"\n")


def page_of(pages: list[dict]) -> dict:
    """Several v2 pages as one: their posts in order, their includes merged."""
    data, includes = [], {}
    for page in pages:
        data += page["data"]
        for section, objects in page.get("includes", {}).items():
            includes.setdefault(section, []).extend(objects)
    return {"data": data, "includes": includes, "meta": {"result_count": len(data)}, "errors": [{"title": "x"}]}


def test_a_big_page_is_split_into_pages_that_give_the_same_posts(real_data, tmp_path, tiny_buffers):
    pages = [orjson.loads(line) for line in (real_data / "v2-pages-twarc-network.jsonl").read_bytes().splitlines()]
    page = page_of(pages)
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(orjson.dumps(page) + b"\n")

    copy, report = copied(tmp_path, "page.json", orjson.dumps(page, option=orjson.OPT_INDENT_2))

    lines = [orjson.loads(line) for line in copy.splitlines()]
    assert report.sources[0]["format"] == f"JSON document (v2 response page, split into {len(lines)} lines)"
    assert [len(line["data"]) for line in lines] == [7] * (500 // 7) + [500 % 7, 0]
    # The same posts, with the same authors, originals and photos, as from the page read whole.
    assert posts_of(tmp_path / "copy-of-page.json" / "tweets.jsonl") == posts_of(whole)
    # Nothing lost: every object of includes is on some line; the page's other members on the last.
    for section, objects in page["includes"].items():
        kept = [orjson.dumps(o) for line in lines for o in line.get("includes", {}).get(section, [])]
        assert {orjson.dumps(o) for o in objects} == set(kept), section
    assert lines[-1]["meta"] == page["meta"] and lines[-1]["errors"] == page["errors"]
    # A line carries what its posts point at, not the whole includes again (857 users).
    assert max(len(line.get("includes", {}).get("users", [])) for line in lines[:-1]) < 100


def test_a_big_page_with_includes_first_and_keys_given_twice_reads_as_when_parsed_whole(tmp_path, tiny_buffers):
    page = v2_page()
    text = (
        b'{"data": [{"id": "1"}], "includes": {"users": [{"id": "nobody"}]}, '
        b'"includes": ' + orjson.dumps(page["includes"]) + b', "meta": {"a": 1}, '
        b'"data": ' + orjson.dumps(page["data"]) + b', "meta": {"a": 2}}'
    )
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(orjson.dumps(orjson.loads(text)) + b"\n")

    copy, _report = copied(tmp_path, "page.json", text)

    assert posts_of(tmp_path / "copy-of-page.json" / "tweets.jsonl") == posts_of(whole)
    assert orjson.loads(copy.splitlines()[-1])["meta"] == {"a": 2}


def test_an_element_too_long_to_read_back_is_copied_as_it_is_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_LINE_BYTES", 2000)
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 2000)
    posts = [v1_tweet("1", "short"), v1_tweet("2", "long " * 1000), v1_tweet("3", "short")]
    source = tmp_path / "array.json"
    source.write_bytes(json.dumps(posts, indent=2).encode())
    raw = tmp_path / "s" / "tweets.jsonl"

    imported, report = import_files([source], raw)

    lines = raw.read_bytes().splitlines()
    assert [p.id for p in imported] == ["1", "3"] and len(lines) == 3
    assert json.loads(lines[1]) == posts[1]  # the same JSON, whitespace aside, on one line
    ((name, line, reason),) = report.problems
    assert (name, line) == ("tweets.jsonl", 2) and "over the 2,000-byte limit" in reason and "item 2" in reason


def test_a_broken_document_is_refused_as_before(tmp_path, tiny_buffers):
    good = orjson.dumps([v1_tweet(str(n), "x") for n in range(1, 30)])
    for name, data in {
        "cut.json": good[:-40],
        "trailing.json": good + b" [",
        "comma.json": good[:-1] + b",]",
        "no comma.json": good.replace(b"},{", b"} {", 1),
        "statuses.json": b'{"statuses": ' + good[:-5] + b"}",
        "garbage item.json": good[:-1] + b", tru]",
    }.items():
        with pytest.raises(ArchiveError, match="is not valid JSON"):
            copied(tmp_path, name, data)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)
    | st.sampled_from(["]", "}", "[", "{", '"', "\\", ",", ":", "\\u00e9"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(JSON_VALUES, max_size=8),
    indent=st.sampled_from([None, 0, 1, 2, "\t"]),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_any_json_array_streams_to_the_lines_of_the_whole_document(tmp_path, monkeypatch, items, indent, chunk):
    monkeypatch.setattr(jsonscan, "CHUNK", chunk)
    data = json.dumps([v1_tweet("1", "a post, so the array is of posts")] + items, indent=indent).encode()

    copy, _report = copied(tmp_path, "array.json", data)

    assert copy == whole_copy(data)


def test_leading_blank_lines_are_not_held_kept_for_json_lines_and_dropped_for_a_document(tmp_path):
    blank = b"\n" * (3 * 1024 * 1024)
    post, other = orjson.dumps(v1_tweet("1", "a")), v1_tweet("2", "b")

    copy, report = copied(tmp_path, "lines.jsonl", blank + post + b"\n")
    assert copy == blank + post + b"\n" and report.sources[0]["lines"] == len(blank) + 1  # byte for byte

    copy, _report = copied(tmp_path, "array.json", blank + orjson.dumps([other]))
    assert copy == orjson.dumps(other) + b"\n"
    copy, _report = copied(tmp_path, "page.json", blank + orjson.dumps(v2_page(), option=orjson.OPT_INDENT_2))
    assert copy == orjson.dumps(v2_page()) + b"\n"
