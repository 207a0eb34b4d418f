"""What dnflow's commands say when they cannot do their work: one paragraph that names the problem
and the fix, and an exit code, never a traceback.

Exit codes: 0 done; 1 a search ran and failed (run_search); 2 the command could not work: bad input,
or a configuration problem (a database or Redis it cannot reach, a database without its tables, a
bad setting: see manage.py). An unexpected error keeps its traceback: that is a bug to report.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

CONFIGURATION = 2


class PlainErrors:
    """For a BaseCommand: a database it cannot use becomes a CommandError (exit 2), and a CommandError
    from the shell is printed alone, without Django's "CommandError:" prefix or a traceback."""

    def execute(self, *args, **options):
        try:
            try:
                return super().execute(*args, **options)
            except DatabaseError as exc:
                problem = database_problem(exc)
                if problem is None:
                    raise
                raise problem from None
        except CommandError as exc:
            if not getattr(self, "_called_from_command_line", False):
                raise  # call_command: the caller decides
            self.stderr.write(str(exc))  # red on a terminal: stderr's default style
            sys.exit(exc.returncode)
        except BrokenPipeError:
            # The reader went away (`| head -1`): nothing more can be said to it, and Python would
            # print a traceback as it flushed stdout at exit. Done as any program is when its pipe closes.
            if not getattr(self, "_called_from_command_line", False):
                raise
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)


def database_problem(exc: DatabaseError) -> CommandError | None:
    """The database cannot be reached or used, or has no tables yet: what to do. None for other errors."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
    where = describe_database()
    if "no such table" in text or ("relation " in text and "does not exist" in text):
        return CommandError(
            f"The database ({where}) has no dnflow tables yet ({text}). Create them with "
            "manage.py migrate, then run this again.",
            returncode=CONFIGURATION,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        return CommandError(
            f"The database could not be used: {text}. Check that it is running and that DATABASE_URL "
            f"({where}) points at it, then run this again.",
            returncode=CONFIGURATION,
        )
    return None


def describe_database() -> str:
    """Which database DATABASE_URL names, without its user or password."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"the SQLite file {db['NAME']}"
    vendor = db["ENGINE"].rsplit(".", 1)[-1]
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"{vendor} database {db.get('NAME')!r} on {host}{port}"


def redis_problem(exc: Exception) -> CommandError:
    reason = str(exc).rstrip(".")
    return CommandError(
        f"Redis could not be reached at {without_password(settings.REDIS_URL)} ({reason}). Start Redis or fix "
        "REDIS_URL, then run this again; the searches stay saved meanwhile.",
        returncode=CONFIGURATION,
    )


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))
