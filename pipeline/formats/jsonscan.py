"""One big JSON document read a value at a time, in bounded memory.

A JSON array of posts, a search response or one v2 page can be gigabytes in a single document,
and parsed whole it takes 10 to 15 times its size in memory. The scanner finds where each value
begins and ends without parsing it, so that the caller parses one element at a time with orjson:
the parser the whole document went through before, so each element's copy is what it was.

How: a value is matched by one regular expression, in C, strings as units (a bracket inside a
string does not count) and brackets nested up to _NESTING deep. A value that expression cannot
match whole (cut by the end of the buffer, or nested deeper) is walked bracket by bracket.
Memory: the buffer holds the value being read, up to `max_value` bytes; a longer value is handed
on in pieces as it is read (to be written as it is, or skipped), never held whole.

The scanner checks only what finding the boundaries needs: the commas, colons and brackets
between values. A value is checked by whoever parses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

CHUNK = 1024 * 1024  # read size: the buffer is about this plus the value being read

_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_NESTING = 24  # posts nest about 10 deep (a quoted post inside a retweet); deeper ones are walked


def _nested(depth: int) -> re.Pattern:
    # Possessive quantifiers throughout: a failed match never backtracks, so it costs one pass.
    pattern = rb'[\[{](?:[^"\[\]{}]++|' + _STRING + rb")*+[\]}]"
    for _ in range(depth - 1):
        pattern = rb'[\[{](?:[^"\[\]{}]++|' + _STRING + rb"|" + pattern + rb")*+[\]}]"
    return re.compile(pattern, re.S)


_CONTAINER = _nested(_NESTING)
_STRING_VALUE = re.compile(_STRING, re.S)
_NONSPACE = re.compile(rb"[^ \t\n\r]")
_SCALAR_END = re.compile(rb"[ \t\n\r,\]}:]")
# The walk: the next bracket or quote outside strings; the rest of a string, or as much as is there.
_STEP = re.compile(rb'[^"\[\]{}]*+([\[\]{}"])')
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_STRING_PART = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.S)
_OPENING = frozenset(b"{[")


class ScanError(ValueError):
    """The text is not JSON where the scanner needed it to be; the message says what and where."""


@dataclass(slots=True)
class Value:
    start: int  # offset of its first byte in the stream
    end: int  # offset just after its last byte
    data: bytes | None  # its bytes; None when it was longer than max_value (handed to `spill`)
    first: bytes  # its first byte: b"{", b"[", b'"' or a scalar's

    @property
    def size(self) -> int:
        return self.end - self.start


def discard(piece: bytes) -> None:
    """A `spill` for values that are skipped."""


class JsonScanner:
    """Values of the JSON text in a byte stream, read forwards once.

    `head`: bytes already read from the stream (they come first); `offset`: the stream offset of
    the first of them; `first_line`: the line they start (None: unknown, places are then given in
    bytes).
    """

    def __init__(
        self,
        stream,
        *,
        max_value: int,
        head: bytes = b"",
        offset: int = 0,
        first_line: int | None = 1,
        chunk: int | None = None,
    ) -> None:
        self._stream = stream
        self._read = stream.read
        self._buf = head
        self._pos = 0
        self._base = offset  # the stream offset of self._buf[0]
        self._eof = False
        self._chunk = chunk or CHUNK
        # Newlines before the buffer (None: unknown), for saying where a problem is.
        self._lines: int | None = None if first_line is None else first_line - 1
        self.max_value = max_value

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def line(self, offset: int | None = None) -> int | None:
        """The line (from 1) of an offset still in the buffer, the current one by default; None
        once skip_to() jumped over lines uncounted."""
        if self._lines is None:
            return None
        at = self._pos if offset is None else max(offset - self._base, 0)
        return self._lines + self._buf.count(b"\n", 0, at) + 1

    def where(self, offset: int | None = None) -> str:
        """ "line N" of an offset still in the buffer (the current one by default), else "byte N"."""
        line = self.line(offset)
        return f"line {line:,}" if line else f"byte {self.offset if offset is None else offset:,}"

    def error(self, problem: str) -> ScanError:
        return ScanError(f"{problem} at {self.where()}")

    def _more(self) -> int | None:
        """Read on, dropping what lies before the position; how far indexes moved, None at the end."""
        if self._eof:
            return None
        data = self._read(self._chunk)
        if not data:
            self._eof = True
            return None
        drop = self._pos
        if self._lines is not None:
            self._lines += self._buf.count(b"\n", 0, drop)
        self._buf = self._buf[drop:] + data
        self._base += drop
        self._pos = 0
        return drop

    def peek(self) -> bytes:
        """The next byte that is not whitespace, moving to it; b"" at the end of the stream."""
        while True:
            found = _NONSPACE.search(self._buf, self._pos)
            if found is not None:
                self._pos = found.start()
                return self._buf[self._pos : self._pos + 1]
            self._pos = len(self._buf)
            if self._more() is None:
                return b""

    def at_end(self) -> bool:
        """Whether only whitespace is left."""
        return self.peek() == b""

    def expect(self, byte: bytes) -> None:
        found = self.peek()
        if found != byte:
            raise self.error(f"expected {byte.decode()!r} but found {_shown(found)}")
        self._pos += 1

    def value(self, spill: Callable[[bytes], None] | None = None) -> Value:
        """The next value. One longer than max_value is handed to `spill` piece by piece (its
        `data` is then None); without a `spill` it is an error."""
        first = self.peek()
        if not first:
            raise self.error("the text ends where a value should be")
        buf, pos = self._buf, self._pos
        if first[0] in _OPENING:
            found = _CONTAINER.match(buf, pos)
            end = found.end() if found is not None else -1
        elif first == b'"':
            found = _STRING_VALUE.match(buf, pos)
            end = found.end() if found is not None else -1
        else:
            found = _SCALAR_END.search(buf, pos)
            if found is not None and found.start() == pos:
                raise self.error(f"found {_shown(first)} where a value should be")
            end = found.start() if found is not None else -1
        if end >= 0 and end - pos <= self.max_value:
            self._pos = end
            return Value(self._base + pos, self._base + end, buf[pos:end], first)
        return self._walk(first, spill)

    def _walk(self, first: bytes, spill: Callable[[bytes], None] | None) -> Value:
        """value() for what one match could not take: read on until the value ends."""
        start = self.offset
        keep = self._pos  # the first byte not yet handed to `spill`
        i = keep + 1
        depth = 1 if first[0] in _OPENING else 0
        in_string = first == b'"'
        scalar = depth == 0 and not in_string
        spilled = False
        while True:
            buf = self._buf
            if scalar:
                found = _SCALAR_END.search(buf, i)
                if found is not None:
                    i = found.start()
                    break
                i = len(buf)
            elif in_string:
                found = _STRING_REST.match(buf, i)
                if found is not None:
                    i, in_string = found.end(), False
                    if depth == 0:
                        break
                    continue
                i = _STRING_PART.match(buf, i).end()  # stops before a lone backslash: it needs what follows
            else:
                found = _STEP.match(buf, i)
                if found is not None:
                    i = found.end()
                    byte = buf[i - 1]
                    if byte == 0x22:  # "
                        in_string = True
                    elif byte in _OPENING:
                        depth += 1
                    else:
                        depth -= 1
                        if depth == 0:
                            break
                    continue
                i = len(buf)
            # The buffer ends inside the value.
            if i - keep > self.max_value:
                if spill is None:
                    raise self.error(f"a value longer than {self.max_value:,} bytes")
                spill(buf[keep:i])
                keep, spilled = i, True
            self._pos = keep
            moved = self._more()
            if moved is None:
                if scalar:
                    i = len(self._buf)
                    break
                raise self.error("the text ends inside a value")
            i -= moved
            keep -= moved
        self._pos = i
        data = self._buf[keep:i]
        if spilled or len(data) > self.max_value:
            if spill is None:
                raise self.error(f"a value longer than {self.max_value:,} bytes")
            spill(data)
            return Value(start, self.offset, None, first)
        return Value(start, self.offset, data, first)

    def items(self, spill: Callable[[bytes], None] | None = None) -> Iterator[Value]:
        """The elements of the array that starts here, each read when the caller asks for it."""
        self.expect(b"[")
        if self.peek() == b"]":
            self._pos += 1
            return
        while True:
            yield self.value(spill)
            found = self.peek()
            self._pos += 1
            if found == b",":
                continue
            if found == b"]":
                return
            self._pos -= 1
            raise self.error(f"expected ',' or ']' after an item but found {_shown(found)}")

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here. After each key the caller must read its value
        (value(), items(), members() or skip()) before asking for the next key."""
        self.expect(b"{")
        if self.peek() == b"}":
            self._pos += 1
            return
        while True:
            if self.peek() != b'"':
                raise self.error(f"expected a key but found {_shown(self.peek())}")
            key = self.value()
            try:
                name = orjson.loads(key.data)
            except orjson.JSONDecodeError as error:
                raise self.error(f"a key that is not valid JSON ({error})") from None
            self.expect(b":")
            yield name
            found = self.peek()
            self._pos += 1
            if found == b",":
                continue
            if found == b"}":
                return
            self._pos -= 1
            raise self.error(f"expected ',' or '}}' after a member but found {_shown(found)}")

    def skip_to(self, offset: int) -> None:
        """Move forwards to a stream offset (the end of a value surveyed before), seeking past
        what lies between where the stream can."""
        end = self._base + len(self._buf)
        if offset <= end:
            self._pos = offset - self._base
            return
        advance(self._stream, end, offset)
        self._buf, self._pos, self._base, self._lines = b"", 0, offset, None

    def skip(self, levels: int = 2) -> None:
        """Read past the next value. The first `levels` levels of containers go element by element,
        each matched whole, which is far quicker than walking a big value bracket by bracket."""
        first = self.peek()
        if levels and first == b"[":
            for _ in self.items(discard):
                pass
        elif levels and first == b"{":
            for _ in self.members():
                self.skip(levels - 1)
        else:
            self.value(discard)


def advance(stream, position: int, offset: int) -> None:
    """Move a stream from `position` forwards to `offset`: a seek where it has seek_forward, else reading."""
    if offset <= position:
        return
    seek_forward = getattr(stream, "seek_forward", None)
    if seek_forward is not None:
        seek_forward(offset)
        return
    left = offset - position
    while left > 0:
        skipped = stream.read(min(left, CHUNK))
        if not skipped:
            return
        left -= len(skipped)


def _shown(found: bytes) -> str:
    return repr(found.decode("latin-1")) if found else "the end of the text"
