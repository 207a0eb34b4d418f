"""What a person reads when a step of the workflow fails: the message of errors that explain
themselves, otherwise the step and the kind of error, never a traceback."""

from __future__ import annotations

import errno

from django.db import InterfaceError, OperationalError

from .formats.report import ArchiveError
from .ids import IdFileError
from .purge import PurgeError
from .query import QueryError
from .xapi_client import XApiError


class WorkflowCancelled(Exception):
    """The run was cancelled (or taken over) while its workflow ran: stop at the next progress report."""


# A database that is locked past its wait, restarting or unreachable: its trouble, not a bug in dnflow.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def error_kind(exc: BaseException) -> str:
    """The error's class and the first line of what it says ("OperationalError: database is locked")."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


# Errors whose message is already written for the person who asked: shown as they are.
EXPLAINED_ERRORS = (ArchiveError, IdFileError, PurgeError, XApiError, QueryError, WorkflowCancelled)


def plain_reason(exc: BaseException, step_label: str = "") -> str:
    if isinstance(exc, EXPLAINED_ERRORS):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"Disk full: {step_label or 'a step of the workflow'} could not write its files. Free some space where "
            "dnflow keeps its data (DNFLOW_DATA_DIR), then run the search again: completed steps are kept."
        )
    kind = error_kind(exc)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        # Locked, restarted, refusing connections: the database's trouble, not the posts'.
        return (
            f"Database unavailable: {step_label or 'a step of the workflow'} could not use dnflow's database "
            f"({kind}). Once it answers again (DATABASE_URL), run the search again: completed steps are kept."
        )
    where = f"{step_label} failed" if step_label else "A step of the workflow failed"
    return f"{where}: {kind}"
