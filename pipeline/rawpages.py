"""The raw-page file and its state file: what makes a collection from the X API resumable.

Shared by the search collection (`pipeline.xapi.collect_live`) and the lookups
(`pipeline.hydrate`). The rules, which a kill -9 at any instant must not break:

- A response page is stored as one line: its body with its line breaks removed (JSON strings hold
  no raw line breaks, so only whitespace between tokens goes), appended, flushed and fsynced.
- Only then is the state file replaced (written to a temporary, fsynced, renamed, the folder
  fsynced) to record the page and the raw file's new size (`raw_bytes`).
- On a resume, anything past the recorded size (a page stored just before a kill, even half a
  line) is cut off before anything else is appended.

Framework-free: no Django.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .xapi_client import XApiError


class StateError(XApiError):
    """A state or raw file that cannot be trusted; the message says which and what to do.

    An XApiError, so that whoever explains a failed collection to a person shows this one too.
    """


def read_state(
    state_path: Path, *, required: tuple[str, ...] = ("raw_bytes",), what: str = "collection"
) -> dict | None:
    """The state recorded at state_path, or None when there is none yet.

    `required`: integer keys that must be present. Raises StateError for a damaged file.
    """
    try:
        text = Path(state_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
        for key in required:
            int(state[key])
    except (ValueError, KeyError, TypeError):
        raise StateError(
            f"The {what} state {state_path} is damaged. Delete it and the files beside it that it records "
            f"to start the {what} again from the beginning."
        ) from None
    return state


def write_state(state_path: Path, state: dict) -> None:
    """Replace the state file atomically and durably (the rename itself is fsynced)."""
    state_path = Path(state_path)
    temporary = state_path.with_name(state_path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, state_path)
    directory = os.open(state_path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def truncate_to_recorded(path: Path, recorded_bytes: int, state_path: Path) -> None:
    """Cut `path` back to the size the state records (creating it empty if it is absent).

    Whatever is past that size was appended after the last recorded step (a kill between the
    append and the state): it is dropped so that it is neither kept twice nor left half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = path.stat().st_size if path.exists() else 0
    if size < recorded_bytes:
        raise StateError(
            f"The file {path} is shorter ({size} bytes) than {Path(state_path).name} records "
            f"({recorded_bytes} bytes): it was changed or lost. Delete both files to start again from the beginning."
        )
    if size > recorded_bytes or not path.exists():
        with open(path, "ab") as handle:
            handle.truncate(recorded_bytes)
            handle.flush()
            os.fsync(handle.fileno())


def one_line(body: bytes) -> bytes:
    """A JSON response body as one line. JSON strings cannot hold raw line breaks, so the only
    ones are whitespace between tokens, and removing them changes nothing else."""
    return body.strip().replace(b"\r", b"").replace(b"\n", b"")


def append_durably(path: Path, data: bytes) -> int:
    """Append, flush and fsync; returns the file's size after the append."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def append_line(path: Path, line: bytes) -> int:
    """Append one line (a newline is added) durably; returns the file's new size."""
    return append_durably(path, line + b"\n")
