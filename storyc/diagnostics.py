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
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

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
class Rule:
    """A kind of problem: a stable code (`SC012`) and a short title, listed in `RULES`."""

    code: str
    title: str


RULES: dict[str, Rule] = {}


def _rule(code: str, title: str) -> Rule:
    assert code not in RULES, f"rule {code} is declared twice"
    RULES[code] = rule = Rule(code, title)
    return rule


# The codes are a contract (CI filters and editors match them): a code is never reused for another kind.
UNREADABLE = _rule("SC001", "the storyboard cannot be read")
NOT_TEXT = _rule("SC002", "text that is not valid UTF-8 or Unicode")
MERGE_CONFLICT = _rule("SC003", "unresolved git merge conflict")
YAML_SYNTAX = _rule("SC004", "invalid YAML")
NEEDS_QUOTES = _rule("SC005", "a value YAML reads as syntax: quote it")
BAD_INDENT = _rule("SC006", "indentation that does not line up")
TOO_LARGE = _rule("SC007", "beyond storyc's limits (size, nesting, nodes, aliases, digits)")
YAML_FEATURE = _rule("SC008", "YAML that is not plain data (tags, complex keys, bad merges)")
DUPLICATE_KEY = _rule("SC009", "duplicate key")
EMPTY_BOARD = _rule("SC010", "empty storyboard")
NOT_A_BOARD = _rule("SC011", "not a storyboard mapping")
UNKNOWN_KEY = _rule("SC012", "unknown key")
MISSING_KEY = _rule("SC013", "missing required key")
BAD_NAME = _rule("SC014", "invalid name")
BAD_VALUE = _rule("SC015", "wrong type or value")
UNKNOWN_PROFILE = _rule("SC016", "unknown profile")
UNKNOWN_ENDPOINT = _rule("SC017", "unknown endpoint")
ENDPOINT_OVERRIDE = _rule("SC018", "a scene's endpoint overrides its profile")
CHARACTER_IMAGES = _rule("SC020", "a character's images or video")
NAME_CLASH = _rule("SC021", "a name taken twice or reading as a positional reference")
LOOKALIKE_NAMES = _rule("SC022", "names that look alike")
TEMPLATE_FILE = _rule("SC023", "a template file that cannot be used")
DUPLICATE_SCENE = _rule("SC024", "duplicate scene id")
AUDIO_IGNORED = _rule("SC025", "audio left out of the prompt")
PROMPT_FORM = _rule("SC026", "no prompt, or several kinds of prompt")
DURATION = _rule("SC027", "duration missing, or outside the endpoint's range")
DURATION_MISMATCH = _rule("SC028", "duration disagrees with the shots")
TOO_MANY_SHOTS = _rule("SC029", "too many shots")
TEMPLATE_USE = _rule("SC030", "unknown template, or one used where it does not apply")
UNKNOWN_REFERENCE = _rule("SC031", "unknown reference")
LOOKALIKE_REFERENCE = _rule("SC032", "text that looks like a reference")
TOO_MANY_REFERENCES = _rule("SC033", "too many references")
VIDEO_REFERENCES = _rule("SC034", "references with a video character")
UNUSED = _rule("SC035", "declared but not used")
TEMPLATE_SYNTAX = _rule("SC040", "template error")
UNDEFINED_VARIABLE = _rule("SC041", "undefined template variable")
PROMPT_LENGTH = _rule("SC042", "prompt empty or too long after templates")
REQUEST_SCHEMA = _rule("SC043", "request refused by the endpoint's input schema")
ASSET = _rule("SC050", "an asset that cannot be used")
CONTROL_CHAR = _rule("SC051", "a control character in text")
UNKNOWN_STEP = _rule("SC060", "a frame or still from an unknown scene or still")
FRAME_SHAPE = _rule("SC061", "a frame of another shape than its scene")
DEPENDENCY_CYCLE = _rule("SC062", "a dependency cycle between scenes and stills")
IMAGE_SOURCE = _rule("SC063", "an image given several ways, or none")
STILL_INPUTS = _rule("SC064", "a still's input images and its endpoint disagree")
ENDPOINT_SETTING = _rule("SC065", "a setting its endpoint does not take")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place.

    `code` is its `Rule`'s code ("" for a failure of the run as a whole, which is no rule of a board);
    `help` says how to fix it, where storyc knows; `width` is how many characters of the source line
    the problem spans (0: the token at `loc`, as the renderer reads it); `profiles` are the profiles
    it is found in, when that depends on the profile.
    """

    path: str
    loc: Loc | None
    severity: Severity
    message: str
    code: str = ""
    help: tuple[str, ...] = ()
    width: int = 0
    profiles: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The message as shown: with the profiles it applies to, when it depends on the profile."""
        if not self.profiles:
            return self.message
        names = ", ".join(f"'{p}'" for p in self.profiles)
        return f"{self.message}; in profile{'s' if len(self.profiles) > 1 else ''} {names}"

    def format(self) -> str:
        where = self.path if self.loc is None else f"{self.path}:{self.loc.line}:{self.loc.col}"
        return f"{where}: {self.severity}: {self.text}"

    def sort_key(self) -> tuple[str, int, int]:
        loc = self.loc or Loc(0, 0)
        return (self.path, loc.line, loc.col)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.loc.line if self.loc else None,
            "col": self.loc.col if self.loc else None,
            "severity": self.severity,
            "code": self.code or None,
            "message": self.text,
            **({"help": list(self.help)} if self.help else {}),
            **({"profiles": list(self.profiles)} if self.profiles else {}),
        }

    def to_record(self) -> dict[str, object]:
        """Everything, for the compile cache (`from_record` reads it back)."""
        return {**self.to_json(), "message": self.message, "width": self.width}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Diagnostic:
        return cls(
            d["path"],
            Loc(d["line"], d["col"]) if d["line"] is not None else None,
            d["severity"],
            d["message"],
            d["code"] or "",
            tuple(d.get("help", ())),
            d["width"],
            tuple(d.get("profiles", ())),
        )


class Diagnostics:
    """Collects diagnostics for one storyboard file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()
        self.error_count = 0

    def error(
        self,
        rule: Rule,
        loc: Loc | None,
        message: str,
        *,
        help: Sequence[str] = (),
        width: int = 0,
        profile: str | None = None,
    ) -> None:
        """A problem of kind `rule` at `loc`; `profile`: the profile it depends on, when it does."""
        self._add(Diagnostic(self.path, loc, "error", message, rule.code, tuple(help), width, _found_in(profile)))

    def warning(self, rule: Rule, loc: Loc | None, message: str, *, profile: str | None = None) -> None:
        self._add(Diagnostic(self.path, loc, "warning", message, rule.code, profiles=_found_in(profile)))

    def error_in(
        self, rule: Rule, path: str, loc: Loc | None, message: str, *, help: Sequence[str] = (), width: int = 0
    ) -> None:
        """An error in another file than the storyboard (a template file)."""
        self._add(Diagnostic(path, loc, "error", message, rule.code, tuple(help), width))

    def _add(self, diagnostic: Diagnostic) -> None:
        message, path = printable(diagnostic.message), printable(diagnostic.path)
        if message is not diagnostic.message or path is not diagnostic.path:  # one line each, always printable
            diagnostic = replace(diagnostic, path=path, message=message)
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


def _found_in(profile: str | None) -> tuple[str, ...]:
    return () if profile is None else (profile,)


def once_per_problem(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics of several profiles' compiles, one per problem, sorted.

    A problem found in several profiles (the same node, the same kind, the same words) is
    reported once, naming every profile it is found in; its help lines are kept, each once.
    """
    merged: dict[tuple[object, ...], Diagnostic] = {}
    for d in diagnostics:
        key = (d.path, d.loc, d.severity, d.code, d.message, d.width)
        first = merged.get(key)
        if first is None:
            merged[key] = d
        elif d.profiles or first.profiles:
            profiles = tuple(dict.fromkeys((*first.profiles, *d.profiles)))
            merged[key] = replace(first, profiles=profiles, help=tuple(dict.fromkeys((*first.help, *d.help))))
    return sorted(merged.values(), key=Diagnostic.sort_key)


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


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate `word` was most likely meant to be, if one is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    match = closest(word, candidates)
    return f" (did you mean '{match}'?)" if match else ""


def summary_line(diagnostics: Iterable[Diagnostic], files: int) -> str:
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity == "error")
    warnings = len(items) - errors
    noun = "file" if files == 1 else "files"
    return f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {files} {noun}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
