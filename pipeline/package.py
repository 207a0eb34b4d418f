"""The BagIt package of a finished search (RFC 8493), zipped.

The package is `<folder>/<folder>.zip`, inside the search's own folder so that everything a search
made lives (and is deleted) together. The zip holds one directory, `<folder>/`, which is a bag:
`bagit.txt`, `bag-info.txt` (query, source, dates, counts, dnflow version), sha256 manifests and
`data/` with every output file and the photos, as pipeline.contract says (`is_packaged`). The raw
posts stay out: the platform's terms allow sharing post ids, not the posts. For the same reason so
do the tables that carry every post's full text: the package is what a published search offers to
anyone, so it holds ids and counts, never the posts themselves.

The bag is built in a hidden working folder from hard links to the outputs (no copies on the same
disk), zipped under a temporary name and renamed into place, so an existing zip is always whole;
summary.json, which says the search finished, is written after it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import bagit

from .contract import DATA_DICTIONARY, PACKAGE_WORK_PREFIX, SUMMARY, is_packaged, package_name, run_file
from .outputs import replace_from_temp, write_csv, write_json

CHECKSUMS = ["sha256"]
# Deflate's fastest level: on a million-post search (50 MB of edge lists and ids) it zips in
# 0.3 s instead of 1.8 s at the default level 6, for a zip about 20% larger.
COMPRESS_LEVEL = 1
# Photos are compressed already; deflating them again only costs time.
STORED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".zip", ".gz"})


def package_path(folder: Path) -> Path:
    return folder / package_name(folder.name)


def packaged_files(folder: Path) -> list[Path]:
    """The files (relative to folder) that go into the bag's data/ as they are, in a stable order.

    summary.json is not among them: the package step writes it (see build_package).
    """
    chosen = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_symlink() or not path.is_file() or relative.as_posix() == SUMMARY:
            continue
        if is_packaged(relative.as_posix()):
            chosen.append(relative)
    return chosen


def write_data_dictionary(bag_dir: Path, files: list[Path]) -> None:
    """data-dictionary.csv beside the outputs: each file, what it holds, and a CSV's columns."""
    rows = []
    for relative in sorted(set(files)):
        entry = run_file(relative.as_posix())
        columns = ""
        if relative.suffix == ".csv":
            with (bag_dir / relative).open(newline="", encoding="utf-8") as handle:
                columns = " ".join(next(csv.reader(handle), []))
        rows.append((relative.as_posix(), entry.description if entry else "", columns))
    write_csv(bag_dir / DATA_DICTIONARY, ("file", "holds", "columns"), rows, ("file", "holds", "columns"))


def _one_line(value: object) -> str:
    # bag-info.txt is line based: a query with a line break would start a bogus field.
    return " ".join(str(value).split())


BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def declare_rfc_8493(bag_dir: Path) -> None:
    """Make bagit.py's bag say what it is: a bag of RFC 8493, BagIt version 1.0.

    bagit.py writes "BagIt-Version: 0.97" whatever it makes. The one way a 1.0 bag is written
    differently is that manifests percent-encode CR, LF and % in file names, and no packaged name
    has any (pipeline.contract's names, photos named by their hash). So only bagit.txt, and its
    line in the tag manifest, change.
    """
    (bag_dir / "bagit.txt").write_bytes(BAGIT_TXT)
    for algorithm in CHECKSUMS:
        tagmanifest = bag_dir / f"tagmanifest-{algorithm}.txt"
        digest = hashlib.new(algorithm, BAGIT_TXT).hexdigest()
        lines = tagmanifest.read_text(encoding="utf-8").splitlines()
        tagmanifest.write_text(
            "".join(f"{digest} bagit.txt\n" if line.endswith(" bagit.txt") else f"{line}\n" for line in lines),
            encoding="utf-8",
        )


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def build_package(folder: Path, bag_info: dict[str, object], summary: dict) -> Path:
    """Make `<folder>/<folder>.zip`, then write `summary` as the folder's summary.json; returns
    the zip's path. bag_info: extra bag-info.txt fields.

    The bag holds `summary` as its data/summary.json. The folder's summary.json is written only
    once the zip is in place, so a summary that says "finished" always has its package beside it.
    """
    target = package_path(folder)
    info = {key: _one_line(value) for key, value in bag_info.items() if value not in (None, "")}
    with tempfile.TemporaryDirectory(prefix=PACKAGE_WORK_PREFIX, dir=folder) as work:
        bag_dir = Path(work) / folder.name
        bag_dir.mkdir()
        for relative in packaged_files(folder):
            dest = bag_dir / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(folder / relative, dest)
        write_json(bag_dir / SUMMARY, summary)
        write_data_dictionary(bag_dir, [*packaged_files(folder), Path(SUMMARY)])
        bagit.make_bag(str(bag_dir), info, checksums=CHECKSUMS)
        declare_rfc_8493(bag_dir)
        temp_zip, finish = replace_from_temp(target)
        try:
            with zipfile.ZipFile(
                temp_zip, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
            ) as archive:
                for path in sorted(bag_dir.rglob("*")):
                    if path.is_file():
                        stored = path.suffix.lower() in STORED_SUFFIXES
                        archive.write(
                            path,
                            path.relative_to(work).as_posix(),
                            compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                        )
            finish()
        finally:
            temp_zip.unlink(missing_ok=True)
    write_json(folder / SUMMARY, summary)
    return target
