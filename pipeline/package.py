"""The BagIt package of a finished search (RFC 8493), zipped.

The package is `<folder>/<folder>.zip`, inside the search's own folder so that everything a search
made lives (and is deleted) together. The zip holds one directory, `<folder>/`, which is a bag:
`bagit.txt`, `bag-info.txt` (query, source, dates, counts, dnflow version), sha256 manifests and
`data/` with every output file and the photos. The raw posts (`tweets.jsonl` and the live
collection's state) stay out: the platform's terms allow sharing post ids, not the posts. For the
same reason so do `tweets.csv` and `sample.csv`, which carry every post's full text: the package is
what a published search offers to anyone, so it holds ids and counts, never the posts themselves.

The bag is built in a hidden working folder from hard links to the outputs (no copies on the same
disk), zipped under a temporary name and renamed into place, so an existing zip is always whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import bagit

from .outputs import replace_from_temp

# Never in a package: the raw posts, the files with their text, and the collection's bookkeeping
# (see module docstring).
NOT_PACKAGED = frozenset(
    {
        "tweets.jsonl",
        "tweets.jsonl.gz",
        "tweets.jsonl.part",
        "collect-state.json",
        "collect-state.json.tmp",
        "tweets.csv",
        "sample.csv",
    }
)
CHECKSUMS = ["sha256"]
# Deflate's fastest level: on a million-post search (50 MB of edge lists and ids) it zips in
# 0.3 s instead of 1.8 s at the default level 6, for a zip about 20% larger.
COMPRESS_LEVEL = 1
# Photos are compressed already; deflating them again only costs time.
STORED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".zip", ".gz"})


def package_path(folder: Path) -> Path:
    return folder / f"{folder.name}.zip"


def packaged_files(folder: Path) -> list[Path]:
    """The files (relative to folder) that go into the bag's data/, in a stable order."""
    own_zip = package_path(folder).name
    chosen = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # temporaries and working folders
        if path.is_symlink() or not path.is_file():
            continue
        if relative.as_posix() in NOT_PACKAGED or relative.as_posix() == own_zip:
            continue
        chosen.append(relative)
    return chosen


def _one_line(value: object) -> str:
    # bag-info.txt is line based: a query with a line break would start a bogus field.
    return " ".join(str(value).split())


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def build_package(folder: Path, bag_info: dict[str, object]) -> Path:
    """Make `<folder>/<folder>.zip`; returns its path. bag_info: extra bag-info.txt fields."""
    target = package_path(folder)
    info = {key: _one_line(value) for key, value in bag_info.items() if value not in (None, "")}
    with tempfile.TemporaryDirectory(prefix=".package-", dir=folder) as work:
        bag_dir = Path(work) / folder.name
        bag_dir.mkdir()
        for relative in packaged_files(folder):
            dest = bag_dir / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(folder / relative, dest)
        bagit.make_bag(str(bag_dir), info, checksums=CHECKSUMS)
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
    return target
