"""A size limit for archives uploaded on the web form, that says what to do instead.

Django streams an upload to a temporary file whatever its size. UploadSizeLimit runs before
Django's own handlers and skips a file once it passes DNFLOW_MAX_UPLOAD_BYTES: the rest of the
file is read and thrown away (the browser gets an answer, not a reset connection), nothing is
kept, and the reason is left on the request for the form to show on its archive field.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.template.defaultfilters import filesizeformat


class UploadSizeLimit(FileUploadHandler):
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = settings.DNFLOW_MAX_UPLOAD_BYTES
        if limit and start + len(raw_data) > limit:
            self.request.upload_refused = (
                f"{self.file_name or 'This file'} is larger than the upload limit of {filesizeformat(limit)} "
                "(DNFLOW_MAX_UPLOAD_BYTES). Import it on the server instead, with "
                "manage.py run_search --archive FILE, or compress it with gzip and upload that."
            )
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the handlers after this one make the file
