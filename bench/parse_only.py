"""The parse-only limit: read a JSONL file once and parse every line with orjson, dnflow's parser.

Nothing is counted or written: no summary of a file can be faster than parsing it once, so this
is the floor the workflow is measured against.

    .venv/bin/python bench/parse_only.py FILE
"""

from __future__ import annotations

import sys
import time

import orjson


def parse_all(path: str) -> tuple[int, int]:
    """(lines parsed, bytes read)."""
    loads = orjson.loads
    lines = size = 0
    with open(path, "rb") as stream:
        for line in stream:
            loads(line)
            lines += 1
            size += len(line)
    return lines, size


def main() -> None:
    began = time.perf_counter()
    lines, size = parse_all(sys.argv[1])
    print(f"parsed {lines:,} lines, {size:,} bytes in {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
