"""storyc's positions (1-based line and column, counting characters) <-> LSP's (0-based, in code units).

LSP counts a column in the code units of the encoding agreed at start-up: UTF-16 unless client and
server agree on another, so 'é' is one unit and '🐘' two.  Everything here works on text offsets
(characters, as Python indexes a `str`) and converts only at the edge.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from storyc.diagnostics import Loc

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"


def units(text: str, encoding: str) -> int:
    """How many code units of `encoding` the text takes."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def chars_in(text: str, count: int, encoding: str) -> int:
    """How many characters of `text` its first `count` code units cover (a split character counts whole)."""
    if encoding == UTF32 or text.isascii():
        return min(count, len(text))
    seen = 0
    for index, char in enumerate(text):
        if seen >= count:
            return index
        seen += units(char, encoding)
    return len(text)


@dataclass(frozen=True)
class Point:
    """An LSP position: 0-based line, and column in code units."""

    line: int
    unit: int


class LineIndex:
    """Where each line of a text starts, to go between offsets, storyc's `Loc`s and LSP positions."""

    def __init__(self, text: str, encoding: str = UTF16) -> None:
        self.text = text
        self.encoding = encoding
        self.starts = [0]
        start = text.find("\n")
        while start != -1:
            self.starts.append(start + 1)
            start = text.find("\n", start + 1)

    def line_text(self, line: int) -> str:
        """Line `line` (0-based) without its line break; '' past the end."""
        if not 0 <= line < len(self.starts):
            return ""
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[line] : end].rstrip("\r")

    def point(self, offset: int) -> Point:
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        before = self.text[self.starts[line] : offset]
        return Point(line, units(before, self.encoding))

    def offset(self, point: Point) -> int:
        """The character offset of an LSP position, clamped to the text (a client may send any numbers)."""
        if point.line < 0:
            return 0
        if point.line >= len(self.starts):
            return len(self.text)
        line = self.line_text(point.line)
        return self.starts[point.line] + chars_in(line, max(point.unit, 0), self.encoding)

    def loc_offset(self, loc: Loc) -> int:
        """The character offset of storyc's 1-based `Loc` (its column counts characters)."""
        line = min(max(loc.line - 1, 0), len(self.starts) - 1)
        return min(self.starts[line] + max(loc.col - 1, 0), self.starts[line] + len(self.line_text(line)))

    def loc_point(self, loc: Loc) -> Point:
        return self.point(self.loc_offset(loc))
