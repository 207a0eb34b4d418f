"""A request the database could not serve (locked past its wait, restarting, unreachable) gets a
503 that says so, rather than the 500's "Something went wrong": it is no bug, and trying again
later is the fix. The page is made without the database (no user, no session), which is down."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from pipeline.errors import DATABASE_UNAVAILABLE, error_kind

log = logging.getLogger("dnflow.web")

RETRY_AFTER_SECONDS = 30


class DatabaseUnavailable:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        log.warning("%s %s: the database did not answer (%s)", request.method, request.path, error_kind(exception))
        page = render_to_string("503.html", {"write": request.method not in ("GET", "HEAD", "OPTIONS")})
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
