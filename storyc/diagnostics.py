"""Diagnostics: every problem in a storyboard, located at the YAML node at fault.

Stages never print and never raise for bad input: they add `Diagnostic`s to a
`Diagnostics` collector, so a user sees every problem at once.  Everything else
storyc reports to a user (a lock it can't read, a render that can't start, a
revision git doesn't know) is a `StorycError` carrying diagnostics too: the
CLI's one error boundary prints them the same way and exits 1.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Loc:
    """1-based line and column in a file."""

    line: int
    col: int


START = Loc(1, 1)

# What would break "one line each" (line breaks, including the ones `str.splitlines` knows),
# or could not be printed at all (a lone surrogate, from a file name that isn't UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with control characters, line breaks and surrogates written as escapes (`\\n`, `\\x00`)."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text


# Environment variables whose values must never appear in a message: the team store's credentials,
# and fal's key in each of its forms (FAL_KEY, or FAL_KEY_ID with FAL_KEY_SECRET).
_SECRET_NAMES = re.compile(
    r"SECRET|TOKEN|PASSWORD|CREDENTIAL|ACCOUNT_KEY|SERVICE_ACCOUNT|SAS_KEY|_KEY$|_KEY_ID$", re.IGNORECASE
)
_SHORTEST_SECRET = 6  # shorter values ("1", "true") are settings, and would blot out ordinary words
_ID_AND_SECRET = re.compile(r"^([^:\s]+):([^:\s]+)$")  # fal's key: `key-id:key-secret`
REDACTED = "[redacted]"


def secrets_in(environ: Mapping[str, str] | None = None, *more: str) -> tuple[str, ...]:
    """The secrets a message must not show: the values of `environ`'s and the process's secret-named
    variables, and `more`; longest first, so a whole key goes before its parts.

    A value of fal's `id:secret` form counts whole and by each half: a service may echo either.
    """
    values = [v for env in (environ or {}, os.environ) for name, v in env.items() if _SECRET_NAMES.search(name)]
    found: set[str] = set()
    for value in (*values, *more):
        halves = _ID_AND_SECRET.match(value.strip())
        for part in (value.strip(), *(halves.groups() if halves else ())):
            if len(part) >= _SHORTEST_SECRET:
                found.add(part)
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` as it may be shown or stored: each secret (default: `secrets_in()`, read now) and the
    user-info of any URL in it (`https://user:pass@host`) written as [redacted]."""
    for secret in secrets_in() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    return strip_userinfo(text)


def strip_userinfo(text: str) -> str:
    """URLs in `text` without their user-info (`//user:pass@host` -> `//[redacted]@host`)."""
    return re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\0": "\\0"}
    if char in named:
        return named[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str
    loc: Loc | None
    severity: Severity
    message: str

    def format(self) -> str:
        where = self.path if self.loc is None else f"{self.path}:{self.loc.line}:{self.loc.col}"
        return f"{where}: {self.severity}: {self.message}"

    def sort_key(self) -> tuple[str, int, int]:
        loc = self.loc or Loc(0, 0)
        return (self.path, loc.line, loc.col)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.loc.line if self.loc else None,
            "col": self.loc.col if self.loc else None,
            "severity": self.severity,
            "message": self.message,
        }


class Diagnostics:
    """Collects diagnostics for one storyboard file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()
        self.error_count = 0

    def error(self, loc: Loc | None, message: str) -> None:
        self._add(Diagnostic(self.path, loc, "error", message))

    def warning(self, loc: Loc | None, message: str) -> None:
        self._add(Diagnostic(self.path, loc, "warning", message))

    def error_in(self, path: str, loc: Loc | None, message: str) -> None:
        """An error in another file than the storyboard (a template file)."""
        self._add(Diagnostic(path, loc, "error", message))

    def _add(self, diagnostic: Diagnostic) -> None:
        message, path = printable(diagnostic.message), printable(diagnostic.path)
        if message is not diagnostic.message or path is not diagnostic.path:  # one line each, always printable
            diagnostic = Diagnostic(path, diagnostic.loc, diagnostic.severity, message)
        if diagnostic not in self._seen:
            self._seen.add(diagnostic)
            self._items.append(diagnostic)
            self.error_count += diagnostic.severity == "error"

    def extend(self, items: Iterable[Diagnostic]) -> None:
        for item in items:
            self._add(item)

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self._items, key=Diagnostic.sort_key)


class StorycError(Exception):
    """The base of every failure storyc reports to a user (exit status 1), never a bug.

    It carries `Diagnostic`s: `StorycError.at(path, line, col, message)` for a
    located problem, `StorycError("message")` for one about the run as a whole
    (shown as `storyc: message`).  `str()` is the diagnostics, one per line.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, diagnostics: Sequence[Diagnostic] = ()) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics) or (Diagnostic("storyc", None, "error", message),)
        super().__init__(message if not diagnostics else "\n".join(d.format() for d in self.diagnostics))

    @classmethod
    def at(cls, path: str, line: int | None, col: int | None, message: str) -> Self:
        loc = Loc(line, col or 1) if line is not None else None
        return cls(message, diagnostics=[Diagnostic(path, loc, "error", message)])

    def lines(self) -> list[str]:
        """What the user sees: `PATH:LINE:COL: error: MESSAGE`, or `storyc: MESSAGE`."""
        return [_plain(d) for d in self.diagnostics]


def _plain(d: Diagnostic) -> str:
    return f"storyc: {d.message}" if d.path == "storyc" and d.loc is None else d.format()


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def summary_line(diagnostics: Iterable[Diagnostic], files: int) -> str:
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity == "error")
    warnings = len(items) - errors
    noun = "file" if files == 1 else "files"
    return f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {files} {noun}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
