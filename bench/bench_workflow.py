"""Throughput and peak memory of a whole dnflow search, beside the old design and the parse limit.

    .venv/bin/python bench/bench_workflow.py --posts 1000000 [--repeat 3] [--format v1|v2]
        [--skip-baseline] [--baseline-posts 100000] [--no-pad] [--expect-digests RESULTS.json]

In one run, on the same SYNTHETIC archives (generated once, cached in bench/out), each in a fresh
process so that its peak memory (RSS, and PSS, which counts pages shared after a fork once) is its own:
  (w) dnflow: `manage.py run_search --archive FILE` with photos off, a throwaway SQLite database
      and data folder under bench/out: the real workflow (Luigi, every output file, the package);
  (a) the 2016 prototype's design (bench/prototype_baseline.py): one Luigi task per output, each
      re-reading and re-parsing the file with json.loads;
  (b) the parse-only limit (bench/parse_only.py): one pass that only parses each line with orjson.
(b) and (w) run on N posts, --repeat times in pairs (medians reported); (a) runs on M posts
(--baseline-posts, 100,000 by default, at most N) beside --repeat runs of (w) on the same M posts
(their median), so that one invocation prints the three ratios: w / b in wall time and in CPU time
at N, a / w at M. The sha256 of every file of the summary pass is kept, and compared with an earlier result's
(--expect-digests). Results go to bench/out/results/ as JSON; see bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from common import MIB, OUT, PYTHON, REPO, Measurement, human_bytes, run_measured, tail
from synthetic_files import ensure_synthetic

# importable: synthetic_files put the project on the path
from pipeline.contract import SUMMARISED, TEXT_FREE_FILES  # noqa: E402
from pipeline.summarise import PASS_OUTPUTS  # noqa: E402

WORK = OUT / "workflow"
BASELINE_OUT = OUT / "baseline"
RESULTS = OUT / "results"
# Outputs both designs write under the same counting rules: they must agree line for line.
COMPARED_FILES = TEXT_FREE_FILES
TARGET_SPEEDUP = 15.0  # (w) at least this many times faster than (a), at --baseline-posts
TARGET_PARSE_RATIO = 1.0  # (w) at most this many times the parse-only wall time
TARGET_PARSE_CPU_RATIO = 1.3  # (w) at most this many times the parse-only CPU time
DEFAULT_BASELINE_POSTS = 100_000
# The files of the pass compared byte for byte across runs: all but its facts, which hold a time.
DIGESTED_FILES = tuple(name for name in PASS_OUTPUTS if name != SUMMARISED)
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
        "--baseline-posts",
        type=int,
        help=f"Posts for the prototype baseline (a), run beside dnflow on the same posts (default "
        f"{DEFAULT_BASELINE_POSTS:,}, at most --posts).",
    )
    parser.add_argument("--repeat", type=int, default=1, help="Paired runs of (b) and (w) on --posts; medians.")
    parser.add_argument(
        "--expect-digests", type=Path, help="A results JSON of an earlier run: its pass outputs must be identical."
    )
    parser.add_argument("--baseline-workers", type=int, default=1, help="Luigi workers for the baseline.")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds before a contender is killed.")
    parser.add_argument("--keep-outputs", action="store_true", help="Keep the workflow's copy of the raw file.")
    args = parser.parse_args()
    if args.baseline_posts is None:
        args.baseline_posts = min(args.posts, DEFAULT_BASELINE_POSTS)
    if args.posts < 1 or not 1 <= args.baseline_posts <= args.posts or args.repeat < 1:
        parser.error("--posts and --repeat must be positive and --baseline-posts between 1 and --posts.")
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
    # Python caches a module's bytecode on its first run, but not where PYTHONDONTWRITEBYTECODE is
    # set (this machine, many containers): each run would compile dnflow's own modules again.
    subprocess_run([PYTHON, "-m", "compileall", "-q", "manage.py", "dnflow_site", "searches", "pipeline"], env)
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


def pass_digests(folder: Path) -> dict[str, str]:
    """sha256 of each file of the summary pass (DIGESTED_FILES) in a run's folder."""
    digests = {}
    for name in DIGESTED_FILES:
        digest = hashlib.sha256()
        with (folder / name).open("rb") as handle:
            while chunk := handle.read(8 * MIB):
                digest.update(chunk)
        digests[name] = digest.hexdigest()
    return digests


# --- the report ---------------------------------------------------------------------------------


def row(label: str, m: Measurement, note: str = "") -> str:
    rate = m.posts / m.wall if m.wall else 0
    return (
        f"{label:<30} {m.posts:>10,} {m.wall:>9.1f} {m.cpu:>8.1f} {rate:>11,.0f} "
        f"{m.peak_rss / MIB:>9,.0f} {m.peak_pss / MIB:>9,.0f}  {note}"
    )


def median_of(runs: list[Measurement]) -> Measurement:
    """One Measurement holding the medians of `runs` (wall, CPU, memory each on its own)."""
    middle = runs[len(runs) // 2]
    return Measurement(
        name=middle.name,
        posts=middle.posts,
        wall=statistics.median(m.wall for m in runs),
        cpu=statistics.median(m.cpu for m in runs),
        peak_rss=int(statistics.median(m.peak_rss for m in runs)),
        peak_pss=int(statistics.median(m.peak_pss for m in runs)),
        exit_code=0,
        log=middle.log,
        notes=middle.notes,
    )


def report(args, sizes: dict, runs: dict[str, list[Measurement]]) -> dict:
    posts = args.posts
    medians = {key: median_of(each) for key, each in runs.items()}
    w, b, a, w_small = (medians.get(key) for key in ("w", "b", "a", "w_small"))
    print()
    columns = ("posts", 10), ("wall s", 9), ("cpu s", 8), ("posts/s", 11), ("RSS MiB", 9), ("PSS MiB", 9)
    print(f"{'contender':<30} " + " ".join(f"{name:>{width}}" for name, width in columns))
    labels = {
        "w": "(w) dnflow workflow",
        "b": "(b) orjson parse only",
        "w_small": "(w) dnflow workflow",
        "a": "(a) prototype design",
    }
    for key in ("w", "b", "w_small", "a"):
        for index, m in enumerate(runs.get(key, [])):
            print(row(labels[key], m, f"run {index + 1} of {len(runs[key])}" if len(runs[key]) > 1 else ""))
        if len(runs.get(key, [])) > 1:
            print(row(labels[key], medians[key], "median"))
    summary: dict = {
        "posts": posts,
        "format": args.format,
        "padded": not args.no_pad,
        "accounts": args.accounts,
        "file_bytes": sizes["main"],
        "repeat": args.repeat,
        "load_average_after": load(),
        "contenders": {key: m.as_dict() for key, m in medians.items()},
        "runs": {key: [m.as_dict() for m in each] for key, each in runs.items()},
    }
    print()
    if w and b:
        ratio, cpu_ratio = w.wall / b.wall, w.cpu / b.cpu
        summary["ratio_to_parse_only"] = ratio
        summary["cpu_ratio_to_parse_only"] = cpu_ratio
        pairs = ", ".join(f"{x.wall / y.wall:.2f}x" for x, y in zip(runs["w"], runs["b"], strict=True))
        mark = "meets" if ratio <= TARGET_PARSE_RATIO else "MISSES"
        print(f"w / b wall at {posts:,}: {ratio:.2f}x the parse-only time ({b.wall:.1f} s); target <= ", end="")
        print(f"{TARGET_PARSE_RATIO:g}x: {mark}" + (f" [pairs: {pairs}]" if len(runs["w"]) > 1 else ""))
        pairs = ", ".join(f"{x.cpu / y.cpu:.2f}x" for x, y in zip(runs["w"], runs["b"], strict=True))
        mark = "meets" if cpu_ratio <= TARGET_PARSE_CPU_RATIO else "MISSES"
        print(f"w / b CPU at {posts:,}: {cpu_ratio:.2f}x the parse-only CPU ({b.cpu:.1f} s); target <= ", end="")
        print(f"{TARGET_PARSE_CPU_RATIO:g}x: {mark}" + (f" [pairs: {pairs}]" if len(runs["w"]) > 1 else ""))
    against = w_small or (w if w and a and w.posts == a.posts else None)
    if a and against:
        speedup = a.wall / against.wall
        summary["speedup_vs_prototype"] = speedup
        summary["prototype_posts"] = a.posts
        mark = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
        print(
            f"a / w at {a.posts:,}: dnflow {speedup:.1f}x faster than the prototype's design "
            f"(CPU time {a.cpu / against.cpu:.1f}x); target >= {TARGET_SPEEDUP:g}x: {mark}"
        )
    if w:
        mark = "meets" if w.peak_rss < TARGET_RSS else "MISSES"
        print(f"w peak RSS: {human_bytes(w.peak_rss)} (PSS {human_bytes(w.peak_pss)}); target < 1 GiB: {mark}")
        tasks = runs["w"][-1].notes.get("tasks", {})
        if tasks:
            inside = sum(tasks.values())
            parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in tasks.items())
            print(f"w by Luigi task (last run): {parts}; outside tasks (start-up, DB, scheduling) ", end="")
            print(f"{runs['w'][-1].wall - inside:.1f} s")
    return summary


def check_digests(digests: dict[str, str], expected_path: Path | None) -> dict | None:
    """Compare the pass outputs' digests with an earlier result's; None when there is none to compare."""
    if expected_path is None:
        return None
    expected = json.loads(expected_path.read_text()).get("pass_output_sha256", {})
    differ = sorted(name for name in DIGESTED_FILES if expected.get(name) != digests.get(name))
    if differ:
        print(f"Pass outputs DIFFER from {expected_path}: {', '.join(differ)}")
    else:
        print(f"Pass outputs identical to {expected_path} (sha256 of {len(digests)} files)")
    return {"against": str(expected_path), "differ": differ}


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


def run_contender(key: str, archive: Path, posts: int, args) -> Measurement:
    # Every contender starts with its archive in the page cache. dnflow drops the pages of an
    # archive behind it as it copies it (pipeline.formats.pagecache), so without this the
    # contender after it would read from disk and the comparison would measure the disk.
    warm = warm_page_cache(archive)
    titles = {"b": "(b) parse only", "w": "(w) dnflow workflow", "a": "(a) prototype baseline"}
    print(f"Running {titles[key]} on {posts:,} posts... (load {load()}; archive read into the page cache in ", end="")
    print(f"{warm:.1f} s)", flush=True)
    if key == "b":
        m = run_parse_only(archive, posts, args.timeout)
    elif key == "w":
        m = run_dnflow(archive, posts, args.timeout)
    else:
        m = run_baseline(archive, posts, args.baseline_workers, args.timeout)
    m.notes["load_before"] = load()
    print(
        f"  {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, peak RSS {human_bytes(m.peak_rss)}, "
        f"PSS {human_bytes(m.peak_pss)}, exit {m.exit_code}"
    )
    problem = m.notes.get("problem")
    if m.exit_code != 0 or problem:
        print(f"  FAILED: {problem or ''}\n  log {m.log}:\n{tail(REPO / m.log)}")
        sys.exit(1)
    return m


def main() -> None:
    args = parse_args()
    padded = not args.no_pad
    print(f"Benchmark: {args.posts:,} synthetic {args.format} posts{' (real-sized)' if padded else ' (lean)'}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {load()}")
    print("Preparing the synthetic archives (cached in bench/out):")
    began = time.perf_counter()
    archive = ensure_synthetic(args.posts, args.format, padded=padded, accounts=args.accounts)
    prepared("main", archive, args.posts)
    small_archive = archive
    if not args.skip_baseline and args.baseline_posts != args.posts:
        small_archive = ensure_synthetic(args.baseline_posts, args.format, padded=padded, accounts=args.accounts)
        prepared("baseline", small_archive, args.baseline_posts)
    print(f"  ready in {time.perf_counter() - began:.1f} s")
    sizes = {"main": archive.stat().st_size}

    runs: dict[str, list[Measurement]] = {"b": [], "w": []}
    digests: dict[str, str] = {}
    for _ in range(args.repeat):
        runs["b"].append(run_contender("b", archive, args.posts, args))
        runs["w"].append(run_contender("w", archive, args.posts, args))
        folder = WORK / "data" / runs["w"][-1].notes["folder"]
        these = pass_digests(folder)
        if digests and these != digests:
            sys.exit("The pass outputs differ from one run of the same archive to the next.")
        digests = these
        if not args.keep_outputs:
            (folder / "tweets.jsonl").unlink(missing_ok=True)  # the workflow's copy of the archive
    if not args.skip_baseline:
        if args.baseline_posts != args.posts:
            # As many runs as at N: one run of 2 s moves by a tenth with what else the machine does.
            runs["w_small"] = [run_contender("w", small_archive, args.baseline_posts, args) for _ in range(args.repeat)]
        runs["a"] = [run_contender("a", small_archive, args.baseline_posts, args)]

    summary = report(args, sizes, runs)
    summary["pass_output_sha256"] = digests
    summary["digests_checked"] = check_digests(digests, args.expect_digests)
    if "a" in runs:
        folder = WORK / "data" / (runs.get("w_small") or runs["w"])[-1].notes["folder"]
        verdicts = compare_outputs(folder)
        summary["outputs_compared"] = verdicts
        same = [name for name, verdict in verdicts.items() if verdict == "same"]
        print(f"Outputs of w and a at {args.baseline_posts:,} agree on {len(same)} of {len(verdicts)} files", end="")
        print("." if len(same) == len(verdicts) else ":")
        for name, verdict in verdicts.items():
            if verdict != "same":
                print(f"  {name}: {verdict}")

    summary["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(parents=True, exist_ok=True)
    kind = result_kind(args)
    result_path = RESULTS / f"{kind}-{args.posts}.json"
    result_path.write_text(json.dumps(summary, indent=2))
    print(f"\nResults: {result_path.relative_to(REPO)}")
    earlier_results(args)


if __name__ == "__main__":
    main()
