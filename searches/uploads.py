"""Archives uploaded on the web form: a size limit that says what to do instead, and a full disk
that says so instead of a server error.

Django streams an upload to a temporary file whatever its size. UploadSizeLimit runs before
Django's own handlers and skips a file once it passes DNFLOW_MAX_UPLOAD_BYTES: the rest of the
file is read and thrown away (the browser gets an answer, not a reset connection), nothing is
kept, and the reason is left on the request for the form to show on its archive field.

A big upload is written to a temporary file in DNFLOW_DATA_DIR/uploads/.incoming/ (unless
FILE_UPLOAD_TEMP_DIR names another folder), not in the system's /tmp: on the disk it ends up on,
so the view moves it into its folder by a rename instead of copying gigabytes while the browser
waits, and /tmp, often a RAM disk far smaller than DNFLOW_MAX_UPLOAD_BYTES, is not filled.

A full disk can stop an upload in two places: while Django writes it to its temporary file, in
TemporaryFileOrDiskFull below, and while the view moves it into DNFLOW_DATA_DIR/uploads/
(searches.views.pages). Both remove what they wrote and explain it on the form with
`disk_full_message`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# A temporary upload file untouched for this long was left by a server process that was killed
# (an upload in progress writes to its file all the time): the next upload removes it.
STALE_UPLOAD_SECONDS = 24 * 3600


def uploads_dir() -> Path:
    """DNFLOW_DATA_DIR/uploads/: dnflow's own copies of archives and id datasets (the web form's
    uploads, run_search's links to several archives), one folder each."""
    return Path(settings.DNFLOW_DATA_DIR) / "uploads"


def incoming_dir() -> Path:
    """Where uploads in progress are written: FILE_UPLOAD_TEMP_DIR, else uploads/.incoming/."""
    if settings.FILE_UPLOAD_TEMP_DIR:
        return Path(settings.FILE_UPLOAD_TEMP_DIR)
    return uploads_dir() / ".incoming"


def remove_stale_uploads(folder: Path) -> None:
    """Remove what killed uploads left in `folder` (see STALE_UPLOAD_SECONDS)."""
    too_old = time.time() - STALE_UPLOAD_SECONDS
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if ".upload" in entry.name and entry.is_file() and entry.stat().st_mtime < too_old:
                    os.remove(entry.path)


def new_upload_folder() -> Path:
    """A fresh folder name under uploads/ (not made yet)."""
    return uploads_dir() / uuid.uuid4().hex


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_message(name: str) -> str:
    return (
        f"The server's disk is full: {name or 'the file'} could not be stored, and nothing of it was kept. "
        "Ask the server's administrator to free space in dnflow's data folder (DNFLOW_DATA_DIR) and the "
        "temporary folder, then upload it again; or import the archive on the server with "
        "manage.py run_search --archive FILE."
    )


class UploadSizeLimit(FileUploadHandler):
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = settings.DNFLOW_MAX_UPLOAD_BYTES
        if limit and start + len(raw_data) > limit:
            # Compressing it again would not make it smaller.
            compressed = (self.file_name or "").lower().endswith((".gz", ".zip"))
            self.request.upload_refused = (
                f"{self.file_name or 'This file'} is larger than the upload limit of {filesizeformat(limit)} "
                "(DNFLOW_MAX_UPLOAD_BYTES). Import it on the server instead, with "
                "manage.py run_search --archive FILE"
                + ("." if compressed else ", or compress it with gzip and upload that.")
            )
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the handlers after this one make the file


class IncomingUpload(TemporaryUploadedFile):
    """Django's temporary upload file, made in incoming_dir(): dnflow's own folder is created if need
    be and cleared of what killed uploads left; a FILE_UPLOAD_TEMP_DIR must exist, as in Django."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None) -> None:
        folder = incoming_dir()
        if not settings.FILE_UPLOAD_TEMP_DIR:  # dnflow's own folder, not one shared with others
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_uploads(folder)
        file = tempfile.NamedTemporaryFile(suffix=".upload" + os.path.splitext(name)[1], dir=folder)  # noqa: SIM115
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)


class TemporaryFileOrDiskFull(TemporaryFileUploadHandler):
    """Django's handler for big uploads (a temporary file, in incoming_dir()), that keeps nothing of
    a file the disk had no room for and leaves the reason for the form."""

    def new_file(self, *args, **kwargs) -> None:
        FileUploadHandler.new_file(self, *args, **kwargs)
        try:
            self.file = IncomingUpload(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)
        except OSError as exc:  # no room even for the folder or an empty file
            self._give_up(exc)
            raise SkipFile from exc

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError as exc:
            self._give_up(exc)
            raise SkipFile from exc  # the rest of the file is read and thrown away

    def file_complete(self, file_size: int):
        try:
            return super().file_complete(file_size)  # flushes what is still buffered
        except OSError as exc:
            self._give_up(exc)
            return None  # no file: the form shows the reason left on the request

    def _give_up(self, exc: OSError) -> None:
        upload = self.__dict__.pop("file", None)  # Django would close it again, and fail on the flush
        if upload is not None:
            path = upload.temporary_file_path()
            with contextlib.suppress(OSError):  # what is still buffered cannot be written either
                upload.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        if not is_disk_full(exc):
            raise exc
        self.request.upload_refused = disk_full_message(self.file_name)
