"""ZIP files: the archive X lets a person download ("download your archive"), or a folder of
JSON lines someone zipped.

A ZIP is read as the folder it unpacks to would be (pipeline.formats.copying.input_files): in
Twitter's archive, data/tweets.js and its parts, with data/account.js, which names their author;
in any other ZIP, the files with an archive's endings. Only those members are unpacked, into the
import's working folder (removed with it), never the rest (media, likes, direct messages), and
never a member whose name would land outside that folder.

The copy then reads the unpacked files as it reads any folder; sources.json names each as
"<the zip's name>/<its path inside>", with the size and SHA-256 of what was unpacked.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .limits import size_text
from .names import ARCHIVE_MARKERS, FOLDER_SUFFIXES, TWEETS_JS_NAME, TXT_SNIFF, maybe_posts
from .report import ArchiveError

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP = b"PK\x05\x06"  # a ZIP of no file is its end record alone
_UNPACK_CHUNK = 1024 * 1024


def is_zip(path: Path) -> bool:
    try:
        with Path(path).open("rb") as handle:
            return handle.read(4) in (ZIP_MAGIC, EMPTY_ZIP)
    except IsADirectoryError:
        return False


@contextmanager
def opened(source: Path | BinaryIO, name: str) -> Iterator[zipfile.ZipFile]:
    """The ZIP at `source` (a path or an open, seekable file), its damage said in words."""
    try:
        with zipfile.ZipFile(source) as archive:
            yield archive
    except zipfile.BadZipFile as error:
        raise ArchiveError(
            f"{name} is a damaged or incomplete ZIP file ({error}): download or copy it again."
        ) from None


def chosen_members(
    archive: zipfile.ZipFile, name: str
) -> tuple[list[zipfile.ZipInfo], list[zipfile.ZipInfo], list[str]]:
    """The members an import reads (as input_files chooses a folder's files), those it needs
    beside them (account.js, which names tweets.js's author), and the others' names.

    Raises ArchiveError when none would be read.
    """
    files = [info for info in archive.infolist() if not info.is_dir()]
    if not files:
        raise ArchiveError(f"{name} is an empty ZIP file: it holds no file, so there is nothing to import.")
    members = [info for info in files if _safe_parts(info.filename)]
    # Never unpacked, and said so: a name that would land outside the folder it is unpacked into.
    outside = [
        f"{name}/{info.filename} (outside the ZIP's folder: not unpacked)" for info in files if info not in members
    ]
    shown = [info for info in members if not any(part.startswith(".") for part in _safe_parts(info.filename))]
    by_path = {PurePosixPath(info.filename): info for info in shown}
    archive_dirs = {path.parent for path in by_path if path.name in ARCHIVE_MARKERS}
    tweets_js = [
        info
        for path, info in by_path.items()
        if TWEETS_JS_NAME.match(path.name) and (path.parent in archive_dirs or path.parent.name == "data")
    ]
    beside: list[zipfile.ZipInfo] = []
    if tweets_js:
        chosen = tweets_js
        # Its author is named in account.js beside it: unpacked too, so the copy finds it there.
        beside = [by_path[path] for path in by_path if path.name == "account.js" and path.parent in archive_dirs]
    else:
        chosen = [
            info
            for path, info in by_path.items()
            if path.name.lower().endswith(FOLDER_SUFFIXES) and maybe_posts(path.name, _start(archive, info, name))
        ]
    if not chosen:
        found = ", ".join(PurePosixPath(info.filename).name for info in (shown or files)[:5])
        raise ArchiveError(
            f"The ZIP file {name} holds no archive file (found: {found}). Choose the ZIP X gave you "
            "(with data/tweets.js), or a ZIP of JSON lines files."
        )
    kept = {info.filename for info in chosen + beside}
    left_out = outside + [f"{name}/{info.filename}" for info in shown if info.filename not in kept]
    return chosen, beside, left_out


def unpack(path: Path, into: Path, *, max_bytes: int = 0) -> tuple[Path, list[str]]:
    """Unpack what an import of the ZIP at `path` reads into `into/<its name>/`; that folder,
    and the names of the members left out. `max_bytes` (0: none): the most they may hold."""
    name = path.name
    folder = into / name
    with opened(path, name) as archive:
        chosen, beside, left_out = chosen_members(archive, name)
        size = sum(info.file_size for info in chosen)
        if max_bytes and size > max_bytes:
            raise ArchiveError(
                f"{name} is too big to import: the files to read in it hold {size_text(size)}, more than the "
                f"limit of {size_text(max_bytes)} (DNFLOW_MAX_ARCHIVE_BYTES), so nothing was unpacked. Raise "
                "the limit (0: no limit), or import the files in parts as separate searches."
            )
        for info in chosen + beside:
            target = folder.joinpath(*_safe_parts(info.filename))
            target.parent.mkdir(parents=True, exist_ok=True)
            with member(archive, info, name) as source, target.open("wb") as out:
                # A member gives at most the size its header declares (zipfile checks it, and its CRC).
                shutil.copyfileobj(source, out, _UNPACK_CHUNK)
    return folder, left_out


@contextmanager
def member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Iterator[BinaryIO]:
    """One member, opened; what Python cannot undo is refused in words."""
    try:
        with archive.open(info) as source:
            yield source
    except RuntimeError as error:
        if "encrypted" not in str(error):
            raise
        raise ArchiveError(
            f"{name} is password-protected: unzip it with its password, then import the folder."
        ) from None
    except NotImplementedError:
        raise ArchiveError(
            f"{name} is compressed in a way Python cannot undo ({info.filename}: method {info.compress_type}, "
            "such as the Deflate64 of large ZIPs made by Windows): unzip it first, then import the folder."
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile) as error:
        # A member damaged past its start: found while it is unpacked, said as any damage is.
        raise ArchiveError(f"{name} is damaged ({info.filename}: {error}): download or copy it again.") from None


def _start(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """The first bytes of a .txt member, for maybe_posts (other members are judged by name)."""
    if not info.filename.lower().endswith(".txt"):
        return b""
    with member(archive, info, name) as source:
        return source.read(TXT_SNIFF)


def _safe_parts(filename: str) -> tuple[str, ...]:
    """A member's path parts, or () when it would land outside the folder it is unpacked into."""
    path = PurePosixPath(filename.replace("\\", "/"))
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or ":" in path.parts[0]:
        return ()
    return path.parts
