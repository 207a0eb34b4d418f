"""Throughput and peak memory of a whole dnflow search, beside the old design and the parse limit.

    .venv/bin/python bench/bench_workflow.py --posts 100000 [--format v1|v2] [--skip-baseline]
        [--baseline-posts 100000] [--no-pad]

In one run, on the same SYNTHETIC archive (generated once, cached in bench/out), each in a fresh
process so that its peak memory (RSS, and PSS, which counts pages shared after a fork once) is its own:
  (w) dnflow: `manage.py run_search --archive FILE` with photos off, a throwaway SQLite database
      and data folder under bench/out: the real workflow (Luigi, every output file, the package);
  (a) the 2016 prototype's design (bench/prototype_baseline.py): one Luigi task per output, each
      re-reading and re-parsing the file with json.loads;
  (b) the parse-only limit (bench/parse_only.py): one pass that only parses each line with orjson.
With --baseline-posts M < N the baseline runs on M posts and its time is scaled by N/M (labelled
"extrapolated"). Results go to bench/out/results/ as JSON; see bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from common import MIB, OUT, PYTHON, REPO, Measurement, human_bytes, run_measured, tail
from synthetic_files import ensure_synthetic

from pipeline.contract import TEXT_FREE_FILES  # importable: synthetic_files put the project on the path

WORK = OUT / "workflow"
BASELINE_OUT = OUT / "baseline"
RESULTS = OUT / "results"
# Outputs both designs write under the same counting rules: they must agree line for line.
COMPARED_FILES = TEXT_FREE_FILES
TARGET_SPEEDUP = 15.0  # (w) at least this many times faster than (a)
TARGET_PARSE_RATIO = 3.0  # (w) at most this many times the parse-only time
TARGET_RSS = 1024 * MIB


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark a whole dnflow search (see bench/README.md).")
    parser.add_argument("--posts", type=int, default=100_000, help="Posts in the synthetic archive.")
    parser.add_argument("--format", choices=("v1", "v2"), default="v1", help="v1.1 tweets or v2 response pages.")
    parser.add_argument(
        "--no-pad",
        action="store_true",
        help="Lean generator output (~1.5 KB/post) instead of real-sized posts (~3.7 KB/post as v1.1).",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="Do not run the prototype baseline (a).")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="Accounts that post and are mentioned (default: the generator's pool of 2,500). Hundreds of "
        "thousands show what many distinct authors cost.",
    )
    parser.add_argument(
        "--baseline-posts", type=int, help="Run the baseline on this many posts and scale its time to --posts."
    )
    parser.add_argument("--baseline-workers", type=int, default=1, help="Luigi workers for the baseline.")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds before a contender is killed.")
    parser.add_argument("--keep-outputs", action="store_true", help="Keep the workflow's copy of the raw file.")
    args = parser.parse_args()
    if args.posts < 1 or (args.baseline_posts is not None and not 1 <= args.baseline_posts <= args.posts):
        parser.error("--posts must be positive and --baseline-posts between 1 and --posts.")
    return args


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def prepared(name: str, path: Path, posts: int) -> str:
    size = path.stat().st_size
    print(f"  {name}: {path.relative_to(REPO)} ({posts:,} posts, {human_bytes(size)}, {size / posts:,.0f} B/post)")
    return str(path)


# --- the contenders -----------------------------------------------------------------------------


def warm_page_cache(path: Path) -> float:
    """Read `path` once (untimed for the contenders); returns the seconds it took."""
    began = time.perf_counter()
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 * MIB):
            pass
    return time.perf_counter() - began


def run_parse_only(archive: Path, posts: int, timeout: float) -> Measurement:
    return run_measured(
        "parse-only", [PYTHON, str(REPO / "bench" / "parse_only.py"), str(archive)], posts=posts, timeout=timeout
    )


def workflow_env() -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{WORK / 'bench.sqlite3'}",
        DNFLOW_DATA_DIR=str(WORK / "data"),
        DNFLOW_FETCH_PHOTOS="0",
        DJANGO_SETTINGS_MODULE="dnflow_site.settings",
    )
    return env


def run_dnflow(archive: Path, posts: int, timeout: float) -> Measurement:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True)
    env = workflow_env()
    # The throwaway database is made before the clock starts: a real installation has one already.
    subprocess_run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env)
    measured = run_measured(
        "dnflow-workflow",
        [PYTHON, "manage.py", "run_search", "--archive", str(archive)],
        posts=posts,
        env=env,
        timeout=timeout,
    )
    measured.notes = workflow_facts(posts)
    return measured


def subprocess_run(argv: list[str], env: dict) -> None:
    import subprocess

    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def workflow_facts(posts: int) -> dict:
    """What the run left in its database: status, folder, and the time each Luigi task took."""
    with sqlite3.connect(WORK / "bench.sqlite3") as db:
        row = db.execute(
            "SELECT id, status, folder, num_posts, error FROM searches_searchrun ORDER BY id DESC"
        ).fetchone()
        if row is None:
            return {"problem": "no run was recorded"}
        run_id, status, folder, num_posts, error = row
        tasks = db.execute(
            "SELECT task_family, SUM(duration) FROM searches_taskevent WHERE run_id = ? AND event = ? "
            "GROUP BY task_family ORDER BY MIN(created)",
            (run_id, "processing_time"),
        ).fetchall()
    facts: dict = {"status": status, "folder": folder, "num_posts": num_posts, "tasks": dict(tasks)}
    if error:
        facts["error"] = error
    output = WORK / "data" / folder if folder else None
    if status != "finished" or num_posts != posts or output is None:
        facts["problem"] = f"search {status} with {num_posts} posts (expected finished with {posts:,}) {error or ''}"
        return facts
    facts["package"] = sorted(p.name for p in output.glob("*.zip"))
    missing = [name for name in (*COMPARED_FILES, "tweets.csv", "summary.json") if not (output / name).is_file()]
    if missing or not facts["package"]:
        facts["problem"] = f"outputs missing: {missing or 'the package'}"
    return facts


def run_baseline(archive: Path, posts: int, workers: int, timeout: float) -> Measurement:
    shutil.rmtree(BASELINE_OUT, ignore_errors=True)
    return run_measured(
        "prototype-baseline",
        [
            PYTHON,
            str(REPO / "bench" / "prototype_baseline.py"),
            str(archive),
            str(BASELINE_OUT),
            "--workers",
            str(workers),
        ],
        posts=posts,
        timeout=timeout,
    )


def compare_outputs(folder: Path) -> dict[str, str]:
    """File name -> "same" or what differs, between the workflow's outputs and the baseline's."""
    verdicts = {}
    for name in COMPARED_FILES:
        ours, theirs = folder / name, BASELINE_OUT / name
        if not ours.is_file() or not theirs.is_file():
            verdicts[name] = "missing"
            continue
        with ours.open(newline="", encoding="utf-8") as a, theirs.open(newline="", encoding="utf-8") as b:
            rows_a, rows_b = list(csv.reader(a)), list(csv.reader(b))
        if rows_a == rows_b:
            verdicts[name] = "same"
        else:
            first = next((i for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=False)) if x != y), None)
            verdicts[name] = f"differs ({len(rows_a):,} vs {len(rows_b):,} rows; first difference at row {first})"
    return verdicts


# --- the report ---------------------------------------------------------------------------------


def row(label: str, m: Measurement, seconds: float, note: str = "") -> str:
    rate = m.posts / m.wall if m.wall else 0
    return (
        f"{label:<34} {m.posts:>10,} {m.wall:>9.1f} {m.cpu:>8.1f} {rate:>11,.0f} {seconds:>12.1f} "
        f"{m.peak_rss / MIB:>9,.0f} {m.peak_pss / MIB:>9,.0f}  {note}"
    )


def report(args, sizes: dict, results: dict[str, Measurement]) -> dict:
    posts = args.posts
    w, a, b = results.get("w"), results.get("a"), results.get("b")
    scale = posts / a.posts if a else 1.0
    print()
    at_n = f"wall@{posts:,}"
    columns = ("posts", 10), ("wall s", 9), ("cpu s", 8), ("posts/s", 11), (at_n, 12), ("RSS MiB", 9), ("PSS MiB", 9)
    print(f"{'contender':<34} " + " ".join(f"{name:>{width}}" for name, width in columns))
    if w:
        print(row("(w) dnflow workflow", w, w.wall))
    if a:
        label = "(a) prototype design" + (" [extrapolated]" if a.posts != posts else "")
        print(row(label, a, a.wall * scale, f"x{scale:g} from {a.posts:,} posts" if a.posts != posts else ""))
    if b:
        print(row("(b) orjson parse only", b, b.wall))
    summary: dict = {
        "posts": posts,
        "format": args.format,
        "padded": not args.no_pad,
        "accounts": args.accounts,
        "file_bytes": sizes["main"],
        "load_average_after": load(),
        "contenders": {key: m.as_dict() for key, m in results.items()},
    }
    print()
    if w and a:
        speedup = a.wall * scale / w.wall
        cpu_speedup = a.cpu * scale / w.cpu
        summary["speedup_vs_prototype"] = speedup
        mark = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
        print(
            f"w vs a: {speedup:.1f}x faster (CPU time {cpu_speedup:.1f}x)"
            f"{' [a extrapolated]' if scale != 1 else ''}; target >= {TARGET_SPEEDUP:g}x: {mark}"
        )
    if w and b:
        ratio = w.wall / b.wall
        summary["ratio_to_parse_only"] = ratio
        mark = "meets" if ratio <= TARGET_PARSE_RATIO else "MISSES"
        cpu_ratio = w.cpu / b.cpu
        print(
            f"w / b: {ratio:.2f}x the parse-only time (CPU {cpu_ratio:.2f}x); target <= {TARGET_PARSE_RATIO:g}x: {mark}"
        )
    if w:
        mark = "meets" if w.peak_rss < TARGET_RSS else "MISSES"
        print(f"w peak RSS: {human_bytes(w.peak_rss)} (PSS {human_bytes(w.peak_pss)}); target < 1 GiB: {mark}")
        tasks = w.notes.get("tasks", {})
        if tasks:
            inside = sum(tasks.values())
            parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in tasks.items())
            print(f"w by Luigi task: {parts}; outside tasks (start-up, DB, scheduling) {w.wall - inside:.1f} s")
    return summary


def result_kind(args) -> str:
    """Which results compare with each other: the same format, padding and pool of accounts."""
    many = f"-a{args.accounts}" if args.accounts else ""
    return f"{args.format}-{'lean' if args.no_pad else 'padded'}{many}"


def earlier_results(args) -> None:
    """Peak memory at other sizes of the same kind of file: is it flat in N?"""
    kind = result_kind(args)
    rows = []
    for path in sorted(RESULTS.glob(f"{kind}-*.json")):
        data = json.loads(path.read_text())
        w = data.get("contenders", {}).get("w")
        if w and data.get("accounts") == args.accounts:  # "v1-padded-*" also matches "v1-padded-a…"
            pss = w.get("peak_pss", 0)  # absent from results kept before PSS was measured
            rows.append((data["posts"], w["wall"], w["peak_rss"], pss, data.get("measured_at", "")))
    if len(rows) > 1:
        print("\nThe workflow at each size measured (same file kind): is memory flat in N?")
        for posts, wall, rss, pss, when in sorted(rows):
            rate = posts / wall
            print(
                f"  {posts:>10,} posts  {wall:8.1f} s  {rate:>9,.0f} posts/s  "
                f"peak RSS {rss / MIB:6,.0f} MiB  PSS {pss / MIB:6,.0f} MiB  {when}"
            )


def main() -> None:
    args = parse_args()
    padded = not args.no_pad
    print(f"Benchmark: {args.posts:,} synthetic {args.format} posts{' (real-sized)' if padded else ' (lean)'}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {load()}")
    print("Preparing the synthetic archives (cached in bench/out):")
    began = time.perf_counter()
    archive = ensure_synthetic(args.posts, args.format, padded=padded, accounts=args.accounts)
    prepared("main", archive, args.posts)
    baseline_posts = args.baseline_posts or args.posts
    baseline_archive = archive
    if not args.skip_baseline and baseline_posts != args.posts:
        baseline_archive = ensure_synthetic(baseline_posts, args.format, padded=padded, accounts=args.accounts)
        prepared("baseline", baseline_archive, baseline_posts)
    print(f"  ready in {time.perf_counter() - began:.1f} s")
    sizes = {"main": archive.stat().st_size}

    results: dict[str, Measurement] = {}
    steps = [("b", "(b) parse only"), ("w", "(w) dnflow workflow")]
    if not args.skip_baseline:
        steps.append(("a", "(a) prototype baseline"))
    for key, title in steps:
        # Every contender starts with its archive in the page cache. dnflow drops the pages of
        # an archive behind it as it copies it (pipeline.formats.pagecache), so without this the
        # contender after it would read from disk and the comparison would measure the disk.
        warm = warm_page_cache(baseline_archive if key == "a" else archive)
        print(f"Running {title}... (load {load()}; archive read into the page cache in {warm:.1f} s)", flush=True)
        if key == "b":
            m = run_parse_only(archive, args.posts, args.timeout)
        elif key == "w":
            m = run_dnflow(archive, args.posts, args.timeout)
        else:
            m = run_baseline(baseline_archive, baseline_posts, args.baseline_workers, args.timeout)
        print(
            f"  {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, peak RSS {human_bytes(m.peak_rss)}, "
            f"PSS {human_bytes(m.peak_pss)}, exit {m.exit_code}"
        )
        problem = m.notes.get("problem")
        if m.exit_code != 0 or problem:
            print(f"  FAILED: {problem or ''}\n  log {m.log}:\n{tail(REPO / m.log)}")
            sys.exit(1)
        results[key] = m

    summary = report(args, sizes, results)
    folder = WORK / "data" / results["w"].notes["folder"]
    if "a" in results and baseline_posts == args.posts:
        verdicts = compare_outputs(folder)
        summary["outputs_compared"] = verdicts
        same = [name for name, verdict in verdicts.items() if verdict == "same"]
        print(f"Outputs of w and a agree on {len(same)} of {len(verdicts)} files", end="")
        print("." if len(same) == len(verdicts) else ":")
        for name, verdict in verdicts.items():
            if verdict != "same":
                print(f"  {name}: {verdict}")
    if not args.keep_outputs:
        (folder / "tweets.jsonl").unlink(missing_ok=True)  # the workflow's copy of the archive

    summary["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(parents=True, exist_ok=True)
    kind = result_kind(args)
    result_path = RESULTS / f"{kind}-{args.posts}.json"
    result_path.write_text(json.dumps(summary, indent=2))
    print(f"\nResults: {result_path.relative_to(REPO)}")
    earlier_results(args)


if __name__ == "__main__":
    main()
