"""Peak memory and time of a search over a big single-document archive, beside JSONL of the same size.

    .venv/bin/python bench/bench_archive_memory.py                  # 100 and 500 MiB: about 6 minutes
    .venv/bin/python bench/bench_archive_memory.py --sizes 100 --kinds array "v2 page"

Every archive is SYNTHETIC (pipeline.sample's posts, padded to real size by bench/synthetic_files),
written once into bench/out under a name that says so, in each container a person may bring as one
document: a JSON array of v1.1 posts, a v1.1 search response {"statuses": [...]}, Twitter's
tweets.js (items {"tweet": ...} without a user object), and one v2 response page holding every post
with its includes; all pretty-printed, as exporters write them. Beside them, for reference, JSONL of
the same size (what the single documents must match), and the gzip of a JSON array of 100,000
copies of one post (1.5 MB expanding to 263 MiB; it once took 2.87 GB).

Each runs as a search does, in a fresh process: `manage.py run_search --archive FILE` with
DNFLOW_FETCH_PHOTOS=0, a temporary DNFLOW_DATA_DIR and a temporary SQLite database (migrated before
the clock starts), after the archive was read once into the page cache. Peak RSS and PSS of the
process tree are read from /proc as in bench_workflow.py (see common.py). Results go to
bench/out/results/archive-memory.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from common import MIB, OUT, PYTHON, REPO, human_bytes, run_measured, tail
from synthetic_files import ensure_synthetic

from pipeline.sample import SAMPLE_VERSION  # importable: synthetic_files put the project on the path

RESULTS = OUT / "results"
KINDS = ("jsonl", "array", "statuses", "tweets.js", "v2 page")
TARGET_RSS = 300 * 1000 * 1000  # the band JSONL stays in: under 300 MB
COPIES = 100_000
# Posts in the cached JSONL the documents are cut from: enough for 500 MiB of each kind.
SOURCE_POSTS = {"v1": 200_000, "v2": 320_000}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Peak memory of a search over single-document archives.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500], help="Archive sizes, in MiB.")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="Which containers.")
    parser.add_argument("--skip-copies", action="store_true", help="Leave out the gzip of one post's copies.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds before a run is killed.")
    args = parser.parse_args()
    if max(args.sizes) > 500:
        parser.error("--sizes: at most 500 (MiB): the source JSONL is cut for that much.")
    return args


# --- the synthetic archives -----------------------------------------------------------------------


def archive_path(kind: str, mib: int) -> Path:
    suffix = {"jsonl": "jsonl", "tweets.js": "js"}.get(kind, "json")
    return OUT / f"synthetic-single-{kind.replace(' ', '-').replace('.', '-')}-{mib}mib-g{SAMPLE_VERSION}.{suffix}"


def _source_lines(fmt: str):
    with ensure_synthetic(SOURCE_POSTS[fmt], fmt, padded=True).open("rb") as source:
        yield from source


def write_archive(kind: str, mib: int) -> tuple[Path, int]:
    """The cached archive of that kind, about `mib` MiB, and how many posts it holds."""
    path = archive_path(kind, mib)
    counted = path.with_name(path.name + ".posts")
    if path.exists() and counted.exists():
        return path, int(counted.read_text())
    target = mib * MIB
    pretty = orjson.OPT_INDENT_2
    partial = path.with_name(path.name + ".part")
    posts = 0
    with partial.open("wb") as out:
        if kind == "jsonl":
            for line in _source_lines("v1"):
                out.write(line)
                posts += 1
                if out.tell() >= target:
                    break
        elif kind == "v2 page":
            posts = _write_page(out, target)
        else:
            out.write(
                {"array": b"[\n", "statuses": b'{\n"statuses": [\n', "tweets.js": b"window.YTD.tweets.part0 = [\n"}[
                    kind
                ]
            )
            for line in _source_lines("v1"):
                post = orjson.loads(line)
                if kind == "tweets.js":
                    post.pop("user")
                    post = {"tweet": post}
                out.write((b",\n" if posts else b"") + orjson.dumps(post, option=pretty))
                posts += 1
                if out.tell() >= target:
                    break
            out.write(b"\n]\n" if kind != "statuses" else b'\n],\n"search_metadata": {"count": %d}\n}\n' % posts)
    if partial.stat().st_size < target * 0.99:
        sys.exit(f"The synthetic source ran out at {human_bytes(partial.stat().st_size)}: raise SOURCE_POSTS.")
    partial.replace(path)
    counted.write_text(str(posts))
    return path, posts


def _write_page(out, target: int) -> int:
    """One v2 page: all the posts in `data`, then every user, original and photo once in `includes`
    (kept in spool files while the posts are written)."""
    spools = {section: tempfile.TemporaryFile(dir=OUT) for section in ("users", "tweets", "media")}  # noqa: SIM115
    seen: dict[str, set] = {section: set() for section in spools}
    posts = 0
    out.write(b'{\n"data": [\n')
    for line in _source_lines("v2"):
        page = orjson.loads(line)
        for tweet in page["data"]:
            out.write((b",\n" if posts else b"") + orjson.dumps(tweet, option=orjson.OPT_INDENT_2))
            posts += 1
        for section, key in (("users", "id"), ("tweets", "id"), ("media", "media_key")):
            for item in page["includes"].get(section, []):
                if item[key] not in seen[section]:
                    seen[section].add(item[key])
                    spool = spools[section]
                    spool.write((b",\n" if spool.tell() else b"") + orjson.dumps(item, option=orjson.OPT_INDENT_2))
        if out.tell() + sum(spool.tell() for spool in spools.values()) >= target:
            break
    out.write(b'\n],\n"includes": {')
    for number, (section, spool) in enumerate(spools.items()):
        out.write((b",\n" if number else b"\n") + orjson.dumps(section) + b": [\n")
        spool.seek(0)
        while chunk := spool.read(8 * MIB):
            out.write(chunk)
        spool.close()
        out.write(b"\n]")
    out.write(b'\n},\n"meta": {"result_count": %d}\n}\n' % posts)
    return posts


def write_copies() -> tuple[Path, int]:
    """A JSON array of COPIES copies of one synthetic post, gzipped."""
    path = OUT / f"synthetic-single-copies-{COPIES}-g{SAMPLE_VERSION}.json.gz"
    if not path.exists():
        post = next(iter(_source_lines("v1"))).rstrip(b"\n")
        partial = path.with_name(path.name + ".part")
        with gzip.open(partial, "wb") as out:
            out.write(b"[")
            for number in range(COPIES):
                out.write(b"," + post if number else post)
            out.write(b"]")
        partial.replace(path)
    return path, 1  # the same post 100,000 times: one post in the collection


# --- one run ----------------------------------------------------------------------------------------


def warm(path: Path) -> None:
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 * MIB):
            pass


def run_search(label: str, archive: Path, posts: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(dir=OUT, prefix="archive-memory-") as scratch:
        work = Path(scratch)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
            DNFLOW_DATA_DIR=str(work / "data"),
            DNFLOW_FETCH_PHOTOS="0",
            DJANGO_SETTINGS_MODULE="dnflow_site.settings",
        )
        migrated = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, capture_output=True, text=True
        )
        if migrated.returncode != 0:
            sys.exit(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")
        warm(archive)
        name = f"archive-memory-{label.replace(' ', '-').replace(',', '')}"
        measured = run_measured(
            name, [PYTHON, "manage.py", "run_search", "--archive", str(archive)], posts=posts, env=env, timeout=timeout
        )
        facts = search_facts(work)
    result = {
        "kind": label,
        "file": archive.name,
        "file_bytes": archive.stat().st_size,
        "posts": posts,
        "wall": measured.wall,
        "cpu": measured.cpu,
        "peak_rss": measured.peak_rss,
        "peak_pss": measured.peak_pss,
        "exit_code": measured.exit_code,
        **facts,
    }
    if measured.exit_code != 0 or facts.get("status") != "finished" or facts.get("num_posts") != posts:
        result["problem"] = f"exit {measured.exit_code}, {facts}; log {measured.log}:\n{tail(REPO / measured.log)}"
    return result


def search_facts(work: Path) -> dict:
    """Status, posts, the copy's time and how sources.json describes the archive."""
    with sqlite3.connect(work / "bench.sqlite3") as db:
        row = db.execute("SELECT id, status, folder, num_posts, error FROM searches_search ORDER BY id DESC").fetchone()
        if row is None:
            return {"status": "no search"}
        search_id, status, folder, num_posts, error = row
        collect = db.execute(
            "SELECT SUM(duration) FROM searches_taskevent WHERE search_id = ? AND event = ? AND task_family = ?",
            (search_id, "processing_time", "CollectPosts"),
        ).fetchone()[0]
    facts = {"status": status, "num_posts": num_posts, "copy_seconds": collect, "error": error or ""}
    sources = work / "data" / (folder or "") / "sources.json"
    if folder and sources.is_file():
        entry = json.loads(sources.read_text())["files"][0]
        facts.update(format=entry["format"], lines=entry["lines"])
    return facts


# --- the report -------------------------------------------------------------------------------------


def table(results: list[dict]) -> None:
    print()
    header = (
        f"{'archive (synthetic)':<34} {'file':>10} {'posts':>9} {'wall':>7} {'copy':>6} {'peak RSS':>9} {'peak PSS':>9}"
    )
    print(header + "  copied as")
    for r in results:
        copy = f"{r['copy_seconds']:.1f}" if r.get("copy_seconds") is not None else "-"
        print(
            f"{r['kind']:<34} {human_bytes(r['file_bytes']):>10} {r['posts']:>9,} {r['wall']:>6.1f}s {copy:>5}s "
            f"{r['peak_rss'] / MIB:>5,.0f} MiB {r['peak_pss'] / MIB:>5,.0f} MiB  {r.get('format', r.get('status'))}"
        )
    worst = max(results, key=lambda r: r["peak_rss"])
    mark = "meets" if worst["peak_rss"] < TARGET_RSS else "MISSES"
    print(f"\nHighest peak: {human_bytes(worst['peak_rss'])} RSS ({worst['kind']}); target under 300 MB: {mark}")


def main() -> None:
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("Preparing the synthetic archives (cached in bench/out)...", flush=True)
    began = time.perf_counter()
    runs = []
    for mib in args.sizes:
        for kind in args.kinds:
            path, posts = write_archive(kind, mib)
            runs.append((f"{kind}, {mib} MiB", path, posts))
    if not args.skip_copies:
        path, posts = write_copies()
        runs.append((f"gzip of {COPIES:,} copies of a post", path, posts))
    print(f"  ready in {time.perf_counter() - began:.0f} s")

    results = []
    for label, path, posts in runs:
        print(f"Running {label} ({human_bytes(path.stat().st_size)})...", flush=True)
        result = run_search(label, path, posts, args.timeout)
        rss, pss = human_bytes(result["peak_rss"]), human_bytes(result["peak_pss"])
        print(f"  {result['wall']:.1f} s, peak RSS {rss}, PSS {pss}")
        if "problem" in result:
            print(f"  FAILED: {result['problem']}")
        results.append(result)

    table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    (RESULTS / "archive-memory.json").write_text(json.dumps(summary, indent=2))
    print(f"Results: {(RESULTS / 'archive-memory.json').relative_to(REPO)}")
    if any("problem" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
