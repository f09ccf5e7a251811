"""Stage 1, load: a storyboard file -> `SourceDoc` (plain data + positions).

We compose the YAML into nodes with ruamel.yaml and build plain JSON-shaped
data ourselves, because that is faster than ruamel's round-trip loader and
gives every node's position for free (node marks).  Building it ourselves also
lets us refuse what a storyboard must never contain: duplicate keys, tags
(`!!python/object`, `!foo`), and aliases that expand into huge documents.

Two parsers give the same result.  The fast one composes with libyaml (PyYAML's
C extension) and resolves plain scalars itself with YAML 1.2's rules, exactly as
ruamel.yaml's safe loader does (`16:9` and `yes` stay text); it takes only
clean boards: on any problem (a syntax error, a duplicate key, a tag, an alias
of a mapping or list, a `%YAML` directive) the board is parsed again by the
reference path, ruamel.yaml in pure Python, which gives every diagnostic.
Without PyYAML's C extension, every board takes the reference path: slower,
the same data and positions (a property test holds the two together).

A storyboard may come from an untrusted branch, so loading it is bounded:
its size, its number of nodes, how deep they nest, how long a number is, and
what a string may hold (no lone surrogates) all have limits, each reported
as a located error instead of a crash, a hang or a memory blow-up.
"""

from __future__ import annotations

import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from storyc.diagnostics import (
    BAD_INDENT,
    DUPLICATE_KEY,
    EMPTY_BOARD,
    MERGE_CONFLICT,
    NEEDS_QUOTES,
    NOT_TEXT,
    START,
    TOO_LARGE,
    UNREADABLE,
    YAML_FEATURE,
    YAML_SYNTAX,
    Diagnostic,
    Diagnostics,
    Loc,
    Rule,
)
from storyc.files import LOCAL, FileSource, NotARegularFile

JsonPath = tuple[str | int, ...]

# A YAML alias may repeat a node; a few repeats are normal (shared defaults),
# millions are an attack ("billion laughs").  Bound what aliases add.
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 64
# Parsing costs about 1 us a byte and 40 us a node (ruamel.yaml is pure Python here): 4 MiB or
# 100,000 nodes take a few seconds.  A storyboard of 4,000 scenes with 1 KB prompts fits both; a
# 58 MB board used to take 146 s.
MAX_BOARD_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000
# Python refuses to turn integers of more than 4300 digits into text; a storyboard needs far fewer.
MAX_NUMBER_DIGITS = 100

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Span:
    """Where a scalar's source text is: character offsets into the file."""

    start: int
    end: int


@dataclass
class SourceDoc:
    """A loaded storyboard: JSON-shaped data, and where each node came from."""

    path: Path  # absolute, resolved
    display: str  # as shown in diagnostics
    text: str
    data: Any
    value_locs: dict[JsonPath, Loc] = field(default_factory=dict)
    key_locs: dict[JsonPath, Loc] = field(default_factory=dict)
    spans: dict[JsonPath, Span] = field(default_factory=dict)
    files: FileSource = field(default=LOCAL, repr=False)  # where its templates and assets are read

    def loc(self, path: JsonPath) -> Loc:
        """Position of the node at `path`, or of its nearest existing ancestor."""
        for n in range(len(path), -1, -1):
            found = self.value_locs.get(path[:n])
            if found is not None:
                return found
        return START

    def key_loc(self, path: JsonPath) -> Loc:
        """Position of the mapping key that names `path` (falls back to the value)."""
        return self.key_locs.get(path) or self.loc(path)

    def locate_in_scalar(self, path: JsonPath, needle: str, occurrence: int) -> Loc:
        """Position of the `occurrence`-th `needle` inside the scalar's source text.

        Used to point at an `@name` inside a prompt.  Falls back to the scalar's
        start when the text was produced by a template and is not in the source.
        """
        return self.find_in_scalar(path, needle, occurrence) or self.loc(path)

    def find_in_scalar(self, path: JsonPath, needle: str, occurrence: int = 0) -> Loc | None:
        """Position of the `occurrence`-th `needle` inside the scalar's source text, if it is there."""
        span = self.spans.get(path)
        if span is None:
            return None
        offset = find_name(self.text[span.start : span.end], needle, occurrence)
        return None if offset is None else _offset_to_loc(self.text, span.start + offset)

    def find_char(self, path: JsonPath, char: str) -> Loc | None:
        """Where the scalar at `path` first writes `char`: as itself, or as the escape
        standing for it in a double-quoted scalar ("\\0", "\\x07", "\\u0085")."""
        span = self.spans.get(path)
        if span is None:
            return None
        offset = first_spelling(self.text[span.start : span.end], char)
        return None if offset is None else _offset_to_loc(self.text, span.start + offset)


# One character of a double-quoted scalar's source: an escape ("\\x07", "\\e", "\\\\") or itself.
_QUOTED_CHARACTER = re.compile(r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)|.", re.DOTALL)


def first_spelling(source: str, char: str) -> int | None:
    """Offset in a scalar's source text of the first `char`, written as itself or as an escape."""
    if not source.startswith('"'):  # plain, single-quoted, block: no escapes
        found = source.find(char)
        return None if found < 0 else found
    from ruamel.yaml.scanner import Scanner

    for match in _QUOTED_CHARACTER.finditer(source, 1):
        written = match.group()
        if len(written) == 1:
            meant = written
        elif written[1] in "xuU":
            meant = chr(min(int(written[2:], 16), 0x10FFFF))  # beyond Unicode: no control character either
        else:
            meant = Scanner.ESCAPE_REPLACEMENTS.get(written[1], "")
        if meant == char:
            return match.start()
    return None


def find_name(text: str, needle: str, occurrence: int = 0) -> int | None:
    """Offset of the `occurrence`-th `needle` in `text`, as a whole name."""
    # Whole names only: looking for '@ell' must not stop inside '@ellie'.
    pattern = re.compile(re.escape(needle) + r"(?![A-Za-z0-9_])")
    found = list(pattern.finditer(text))
    return found[occurrence].start() if occurrence < len(found) else None


def locate_offset(text: str, offset: int) -> Loc:
    """The line and column of a character offset into a text, such as a template file."""
    return _offset_to_loc(text, offset)


def locate_in_text(text: str, needle: str) -> Loc | None:
    """Position of the first `needle` (a whole name) in a text, such as a template file."""
    offset = find_name(text, needle)
    return None if offset is None else _offset_to_loc(text, offset)


def _offset_to_loc(text: str, offset: int) -> Loc:
    line = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    return Loc(line, offset - line_start + 1)


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def load(path: Path, diags: Diagnostics, files: FileSource = LOCAL) -> SourceDoc | None:
    """Read and parse a storyboard.  Returns None (with diagnostics) when it can't."""
    try:
        info = files.stat(path)
        if not info.is_file:
            diags.error(UNREADABLE, START, f"cannot read storyboard: not a regular file: it is {info.kind}")
            return None
        if info.size > MAX_BOARD_BYTES:
            diags.error(TOO_LARGE, START, _too_large(info.size))
            return None
        raw = files.read_bytes(path)
    except NotARegularFile as exc:  # swapped for a FIFO or device since the stat
        diags.error(UNREADABLE, START, f"cannot read storyboard: not a regular file: it is {exc.kind}")
        return None
    except OSError as exc:
        diags.error(UNREADABLE, None, f"cannot read storyboard: {exc.strerror or exc}")
        return None
    if len(raw) > MAX_BOARD_BYTES:  # grew since the stat
        diags.error(TOO_LARGE, START, _too_large(len(raw)))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # `exc.start` counts bytes; columns count characters, and everything before the bad byte decodes.
        before = raw[: exc.start].decode("utf-8")
        diags.error(NOT_TEXT, _offset_to_loc(before, len(before)), "not UTF-8 text")
        return None
    return _parse_once(text, files.resolve(path), diags, files)


# The last board parsed from disk, with what parsing it reported.  A board is compiled once per
# profile (check, plan --compare, gc, the sheet), and parsing is most of a compile: each profile
# after the first reuses the parse.  Nothing downstream writes to a SourceDoc.  One entry only,
# keyed by the text itself, so an edited board is parsed again; a git tree's board never comes here
# (its templates and assets are read from that tree, which the key could not tell apart).
_last_parse: tuple[tuple[Path, str, str], SourceDoc | None, list[Diagnostic]] | None = None


def _parse_once(text: str, path: Path, diags: Diagnostics, files: FileSource) -> SourceDoc | None:
    global _last_parse
    if files is not LOCAL:
        return parse(text, path, diags, files)
    key = (path, diags.path, text)
    if _last_parse is None or _last_parse[0] != key:
        reported = Diagnostics(diags.path)
        _last_parse = (key, parse(text, path, reported, files), reported.sorted())
    diags.extend(_last_parse[2])
    return _last_parse[1]


def _too_large(size: int) -> str:
    limit = f"{MAX_BOARD_BYTES} bytes ({MAX_BOARD_BYTES // 2**20} MiB)"
    return f"the storyboard is {size} bytes ({size / 2**20:.1f} MiB); storyc reads at most {limit}"


# Git's conflict markers start a line: `<<<<<<< ours`, `|||||||` (diff3), `=======`, `>>>>>>> theirs`.
_CONFLICT_MARKER = re.compile(r"^(<{7}|\|{7}|={7}|>{7})(?:[ \t][^\n]*)?\r?$", re.MULTILINE)
_CONFLICT_ROLE = {
    "<<<<<<<": "starts here",
    "|||||||": "shows the common ancestor from here",
    "=======": "switches to the other side here",
    ">>>>>>>": "ends here",
}


def _merge_conflicts(text: str, diags: Diagnostics) -> bool:
    """Report git's conflict markers, each at its line; whether there were any.

    Only a file with an opening `<<<<<<<` or closing `>>>>>>>` marker is in
    conflict: a lone `=======` line is left to the YAML parser.
    """
    markers = list(_CONFLICT_MARKER.finditer(text))
    if not any(m.group(1)[0] in "<>" for m in markers):
        return False
    for match in markers:
        loc = _offset_to_loc(text, match.start())
        diags.error(
            MERGE_CONFLICT, loc, f"unresolved git merge conflict: '{match.group(1)}' {_CONFLICT_ROLE[match.group(1)]}"
        )
    return True


def parse(text: str, path: Path, diags: Diagnostics, files: FileSource = LOCAL) -> SourceDoc | None:
    """The board's data and positions; None, with located diagnostics, when it is not a valid document."""
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if _merge_conflicts(text, diags):
        return None
    fast = _parse_fast(text, path, diags.path, files)
    if fast is not None:
        return fast
    doc = SourceDoc(path=path, display=diags.path, text=text, data=None, files=files)
    yaml = YAML(typ="safe", pure=True)
    # ruamel counts the root as depth 1: this stops it where `_Builder` would report a collection
    # nested too deep, before its recursion could overflow Python's stack.
    yaml.max_depth = MAX_DEPTH + 1
    alias_locs = _record_aliases(yaml)
    _limit_nodes(yaml)
    try:
        root = yaml.compose(text)
    except MaxDepthExceededError as exc:
        diags.error(TOO_LARGE, _mark_loc(exc.problem_mark), f"nesting deeper than {MAX_DEPTH} levels")
        return None
    except _TooManyNodes as exc:
        diags.error(
            TOO_LARGE, exc.loc, f"the storyboard has more than {MAX_NODES} YAML nodes; storyc reads at most {MAX_NODES}"
        )
        return None
    except MarkedYAMLError as exc:
        explained = _explain_yaml_error(exc, text)
        diags.error(explained.rule, explained.loc, explained.message, help=explained.help, width=explained.width)
        return None
    except YAMLError as exc:
        diags.error(YAML_SYNTAX, START, f"invalid YAML: {exc}")
        return None
    except (OverflowError, ValueError):  # ruamel's scanner on an escape past Unicode: "\UFFFFFFFF"
        diags.error(YAML_SYNTAX, *_escape_past_unicode(text))
        return None
    if root is None:
        diags.error(EMPTY_BOARD, START, "the storyboard is empty")
        return None
    builder = _Builder(doc, diags, alias_locs)
    doc.data = builder.build(root, ())
    return None if diags.has_errors else doc


_LONG_ESCAPE = re.compile(r"\\U([0-9A-Fa-f]{8})")


def _escape_past_unicode(text: str) -> tuple[Loc, str]:
    """Where a `\\U` escape names no character, and what the largest one is."""
    for match in _LONG_ESCAPE.finditer(text):
        if int(match.group(1), 16) > 0x10FFFF:
            return (
                _offset_to_loc(text, match.start()),
                f"invalid YAML: '{match.group(0)}' is no Unicode character (the largest is \\U0010FFFF)",
            )
    return START, "invalid YAML: an escape in a quoted string names no Unicode character"


# An unquoted value starting like a Jinja tag: YAML reads its '{' as a flow mapping.
_TEMPLATE_VALUE = re.compile(r"(?:^[ \t]*(?:-[ \t]+)?|:[ \t]+)(\{[{%#])")
_TEMPLATE_OPENERS = ("{{", "{%", "{#")


def _quote_hint(opener: str) -> str:
    return f"quote a value that starts with '{opener}' (YAML reads '{{' as the start of a mapping)"


# What YAML reads a plain value's first character as, for the characters that cannot start plain text.
_RESERVED_STARTS = {
    "@": "as reserved, so it cannot start a value",
    "`": "as reserved, so it cannot start a value",
    "%": "as the start of a directive",
    "*": "as an alias (`*name` repeats the value anchored `&name`)",
    "&": "as an anchor (`&name` names the value after it)",
    "!": "as a tag (`!name` gives the value after it a type)",
}
_LONGEST_QUOTED_EXAMPLE = 40


def needs_quotes(line: str, col: int) -> tuple[str, str] | None:
    """For a plain value at 1-based `col` of `line` starting with a character YAML reserves, the
    message saying to quote it and the help line showing it quoted; None otherwise."""
    value = _plain_value_at(line, col)
    if not value or value[0] not in _RESERVED_STARTS:
        return None
    quoted = _quoted(value)
    example = quoted if len(quoted) <= _LONGEST_QUOTED_EXAMPLE else quoted[: _LONGEST_QUOTED_EXAMPLE - 4] + '..."'
    message = f"quote the value: YAML reads '{value[0]}' {_RESERVED_STARTS[value[0]]} (write {example})"
    key = line[: col - 1].strip()
    return message, f"write it in quotes: {key + ' ' if key.endswith(':') else ''}{quoted}"


def _plain_value_at(line: str, col: int) -> str:
    """The text of a plain value from `col` to the end of its line, less a trailing comment."""
    return re.split(r"\s#", line[col - 1 :].rstrip("\r"), maxsplit=1)[0].rstrip()


def _quoted(value: str) -> str:
    if '"' not in value and "\\" not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def _record_aliases(yaml: Any) -> dict[int, Loc]:
    """Make each `*alias` of a mapping or list remember where it is written: id(node) -> position.

    ruamel hands back the anchored node itself for an alias, so a problem in an
    alias's expansion could only be blamed on the anchor.  We hand back a copy
    sharing the anchor's content instead.  Only aliases pay for this.
    """
    from ruamel.yaml.nodes import CollectionNode

    composer = yaml.composer
    locs: dict[int, Loc] = {}

    def return_alias(node: Any) -> Any:
        if not isinstance(node, CollectionNode):
            return node  # a repeated scalar expands to nothing; its text must stay the anchor's
        copy = type(node)(node.ctag, node.value, node.start_mark, node.end_mark, flow_style=node.flow_style)
        mark = composer.parser.last_event.start_mark
        locs[id(copy)] = Loc(mark.line + 1, mark.column + 1)
        return copy

    composer.return_alias = return_alias
    return locs


class _TooManyNodes(Exception):
    def __init__(self, loc: Loc) -> None:
        self.loc = loc


def _limit_nodes(yaml: Any) -> None:
    """Stop composing at the node past `MAX_NODES` (aliases are bounded by `MAX_ALIAS_NODES`)."""
    from ruamel.yaml.events import AliasEvent

    composer = yaml.composer
    compose_node = composer.compose_node
    count = 0

    def counted(parent: Any, index: Any) -> Any:
        nonlocal count
        if not composer.parser.check_event(AliasEvent):
            count += 1
            if count > MAX_NODES:
                raise _TooManyNodes(_mark_loc(composer.parser.peek_event().start_mark))
        return compose_node(parent, index)

    composer.compose_node = counted


def _mark_loc(mark: Any) -> Loc:
    return Loc(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class _Explained:
    rule: Rule
    loc: Loc
    message: str
    help: tuple[str, ...] = ()
    width: int = 0


def _explain_yaml_error(exc: Any, text: str) -> _Explained:
    """A YAML syntax error in words a storyboard writer can act on, at the mistake.

    ruamel describes its parser's state ("expected <block end>, but found
    '<scalar>'") where it gave up, which is often well after the mistake.
    """
    problem, context = exc.problem or "", exc.context or ""
    marks = [m for m in (exc.problem_mark, exc.context_mark) if m is not None]
    template = _unquoted_template(text, marks)
    if template is not None:
        loc, message, help_lines, width = template
        return _Explained(NEEDS_QUOTES, loc, f"invalid YAML: {message}", help_lines, width)
    where = _mark_loc(marks[0]) if marks else START
    lines = text.split("\n")
    if exc.problem_mark is not None:
        reserved = _reserved_start(lines, exc.problem_mark)
        if reserved is not None:
            return reserved
        indent = _bad_indent(lines, exc.problem_mark, problem)
        if indent is not None:
            return indent
    if exc.problem_mark is not None and exc.context_mark is not None:
        opened = _unclosed(context, problem, _mark_loc(exc.context_mark), where)
        if opened is not None:
            return _Explained(YAML_SYNTAX, _mark_loc(exc.context_mark), f"invalid YAML: {opened}")
    if "'\\t'" in problem and exc.problem_mark is not None and _indents(text, exc.problem_mark):
        return _Explained(BAD_INDENT, where, "invalid YAML: a tab indents this line; YAML indents with spaces only")
    if context and problem.startswith("but "):  # the two halves make one sentence
        return _Explained(YAML_SYNTAX, where, f"invalid YAML: {context}, {problem}")
    return _Explained(YAML_SYNTAX, where, f"invalid YAML: {problem or context or 'cannot parse'}")


def _reserved_start(lines: list[str], mark: Any) -> _Explained | None:
    """`subjects: @ellie walks in`: a value starting with a character YAML reserves; the fix is quoting it."""
    line = lines[mark.line] if mark.line < len(lines) else ""
    found = needs_quotes(line, mark.column + 1)
    if found is None:
        return None
    message, help_line = found
    width = len(_plain_value_at(line, mark.column + 1))
    return _Explained(NEEDS_QUOTES, _mark_loc(mark), message, (help_line,), width)


# `key:` at the start of a line (after any `- `), the key in group 1.
_KEY_LINE = re.compile(r"^[ ]*(?:-[ ]+)*([^\s#'\"{\[][^:#]*?|'[^']*'|\"[^\"]*\"):(?:[ ]|$)")


def _bad_indent(lines: list[str], mark: Any, problem: str) -> _Explained | None:
    """A key indented less or more than the keys above it: ruamel fails at it, in its parser's words."""
    if not (problem.startswith("expected <block end>") or problem == "mapping values are not allowed here"):
        return None
    line = lines[mark.line] if mark.line < len(lines) else ""
    key = _KEY_LINE.match(line)
    if key is None:
        return None
    indent = key.start(1)
    if problem == "mapping values are not allowed here" and mark.column != key.end(1):
        return None  # a ': ' inside a value, not this line's key
    above = _key_it_meant(lines, mark.line, indent)
    if above is None:
        return None
    above_number, above_key = above
    name, other, other_indent = key.group(1), above_key.group(1), above_key.start(1)
    message = (
        f"check the indentation of this line: '{name}' ({_spaces(indent)} in) does not line up with "
        f"'{other}' above it (line {above_number + 1}, {_spaces(other_indent)} in)"
    )
    help_line = f"to make '{name}' a key beside '{other}', indent it {_spaces(other_indent)}"
    if indent > other_indent:
        help_line += f" (indented deeper, YAML reads it as more of the value of '{other}')"
    return _Explained(BAD_INDENT, Loc(mark.line + 1, indent + 1), message, (help_line,), len(name))


def _key_it_meant(lines: list[str], number: int, indent: int) -> tuple[int, re.Match[str]] | None:
    """The key above line `number` (0-based) that a key indented `indent` spaces was likely meant to
    line up with: of the keys that enclose that line (each less indented than every line after it),
    the one whose indent is closest, the nearest of equals; None when one lines up already."""
    candidates: list[tuple[int, re.Match[str]]] = []
    outermost = None
    for n in range(number - 1, -1, -1):
        stripped = lines[n].strip()
        key = _KEY_LINE.match(lines[n]) if stripped and not stripped.startswith("#") else None
        if key is None or (outermost is not None and key.start(1) >= outermost):
            continue
        if key.start(1) == indent:
            return None  # it lines up with a key above: the mistake is something else
        outermost = key.start(1)
        candidates.append((n, key))
        if outermost == 0:
            break
    return min(candidates, key=lambda found: abs(found[1].start(1) - indent), default=None)


def _spaces(n: int) -> str:
    return "1 space" if n == 1 else f"{n} spaces"


def _unquoted_template(text: str, marks: list[Any]) -> tuple[Loc, str, tuple[str, ...], int] | None:
    """`prompt: {{ vars.place }} at dawn` fails somewhere on that line: the fix is quoting it."""
    lines = text.split("\n")
    for mark in marks:
        line = lines[mark.line] if mark.line < len(lines) else ""
        for match in _TEMPLATE_VALUE.finditer(line):
            before = line[: match.start(1)]
            if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:  # not inside quoted text
                value = _plain_value_at(line, match.start(1) + 1)
                loc = Loc(mark.line + 1, match.start(1) + 1)
                return loc, _quote_hint(match.group(1)), _write_quoted(line, match), len(value)
    return None


def _write_quoted(line: str, match: re.Match[str]) -> tuple[str, ...]:
    """`write it in quotes: prompt: "{{ vars.place }} at dawn"`, when the value is all on its line."""
    value = _plain_value_at(line, match.start(1) + 1)
    key = line[: match.start(1)].strip()
    return (f"write it in quotes: {key + ' ' if key else ''}{_quoted(value)}",)


def _unclosed(context: str, problem: str, opened: Loc, failed: Loc) -> str | None:
    """A quote, '[' or '{' left open: ruamel fails at the end of the file or on a later line."""
    if context == "while scanning a quoted scalar" and "end of stream" in problem:
        return "the quoted text starting here is never closed"
    kinds = {"while parsing a flow sequence": "list '['", "while parsing a flow mapping": "mapping '{'"}
    if context in kinds and failed.line > opened.line:
        return f"the {kinds[context]} opened here is not closed: {problem} at line {failed.line}, column {failed.col}"
    return None


def _indents(text: str, mark: Any) -> bool:
    """Whether the character at `mark` is in its line's leading whitespace."""
    line_start = text.rfind("\n", 0, mark.index) + 1
    return not text[line_start : mark.index].strip(" \t")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: str) -> int:
    """The code point of the first surrogate in `value` that is not part of a high+low pair."""
    i = 0
    while i < len(value):
        c = ord(value[i])
        if 0xD800 <= c <= 0xDBFF and i + 1 < len(value) and 0xDC00 <= ord(value[i + 1]) <= 0xDFFF:
            i += 2
            continue
        if 0xD800 <= c <= 0xDFFF:
            return c
        i += 1
    return 0


class _AliasBudgetExceeded(Exception):
    pass


class _Builder:
    def __init__(
        self, doc: SourceDoc, diags: Diagnostics, alias_locs: dict[int, Loc], flavour: _Flavour | None = None
    ) -> None:
        flavour = flavour or _ruamel_flavour()
        self.mapping_node, self.scalar_node, self.sequence_node = flavour.nodes
        self.doc = doc
        self.diags = diags
        self.constructor = flavour.constructor
        self.alias_locs = alias_locs
        self.alias_at = START  # the outermost alias being expanded: the one to blame for a blow-up
        self.alias_depth = 0
        self.alias_nodes = 0

    def build(self, root: Any, path: JsonPath) -> Any:
        try:
            return self._node(root, path, 0)
        except _AliasBudgetExceeded:
            return None

    def _node(self, node: Any, path: JsonPath, depth: int) -> Any:
        mark = node.start_mark
        self.doc.value_locs[path] = Loc(mark.line + 1, mark.column + 1)
        if self.alias_depth:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                self.diags.error(
                    TOO_LARGE,
                    self.alias_at,
                    f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes; write the storyboard out instead",
                )
                raise _AliasBudgetExceeded
        if isinstance(node, self.scalar_node):
            self.doc.spans[path] = Span(mark.index, node.end_mark.index)
            anchor = getattr(node, "anchor", None)  # ruamel's nodes have it; the fast path leaves these to ruamel
            quoting = self._quoting(node) if anchor and f"*{anchor}" not in self.doc.text else None
            if quoting is not None:  # `prompt: &x walks` is "walks" anchored as x, and no alias uses it: text
                line = self._line_of(mark.index)
                width = len(_plain_value_at(line, mark.column + 1))
                self.diags.error(NEEDS_QUOTES, _mark_loc(mark), quoting[0], help=(quoting[1],), width=width)
                return None
            return self._scalar(node, path)
        if depth > MAX_DEPTH:
            self.diags.error(TOO_LARGE, self.doc.value_locs[path], f"nesting deeper than {MAX_DEPTH} levels")
            return None
        alias_loc = self.alias_locs.get(id(node))
        if alias_loc is not None and not self.alias_depth:
            self.alias_at = alias_loc
        is_alias = alias_loc is not None
        self.alias_depth += is_alias
        try:
            if isinstance(node, self.mapping_node):
                return self._mapping(node, path, depth)
            return self._sequence(node, path, depth)
        finally:
            self.alias_depth -= is_alias

    def _check_tag(self, node: Any, allowed: str, path: JsonPath) -> None:
        if node.tag != allowed:
            self.diags.error(
                YAML_FEATURE,
                self.doc.value_locs[path],
                f"YAML tag '{node.tag}' is not allowed: a storyboard is plain data",
            )

    def _sequence(self, node: Any, path: JsonPath, depth: int) -> list[Any]:
        self._check_tag(node, _SEQ, path)
        return [self._node(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]

    def _mapping(self, node: Any, path: JsonPath, depth: int) -> dict[str, Any]:
        MappingNode, ScalarNode, SequenceNode = self.mapping_node, self.scalar_node, self.sequence_node
        key_locs = self.doc.key_locs
        self._check_tag(node, _MAP, path)
        result: dict[str, Any] = {}
        first_seen: dict[str, Loc] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            key_loc = Loc(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.tag == _MERGE:
                merges.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, ScalarNode):
                self._complex_key(node, key_loc)
                continue
            key = str(self._scalar(key_node, path))
            if key in first_seen:
                self.diags.error(
                    DUPLICATE_KEY, key_loc, f"duplicate key '{key}' (first given at line {first_seen[key].line})"
                )
                continue
            first_seen[key] = key_loc
            child = (*path, key)
            key_locs[child] = key_loc
            value = self._node(value_node, child, depth + 1)
            if value is None and not value_node.value:
                # `prompt:` left blank: ruamel puts the empty value at the next token, often the
                # next line's key; what the user left out belongs to this key.
                self.doc.value_locs[child] = key_loc
            result[key] = value
        # `<<: *defaults` merges keys the mapping does not set itself (YAML merge keys).
        for merged in merges:
            if not isinstance(merged, MappingNode):
                self.diags.error(YAML_FEATURE, self.doc.value_locs[path], "'<<' must merge a mapping")
                continue
            for key, value in self._node(merged, (*path, "<<"), depth + 1).items():
                if key not in result:
                    result[key] = value
                    self._copy_locs((*path, "<<", key), (*path, key))
        return result

    def _complex_key(self, mapping: Any, key_loc: Loc) -> None:
        start = mapping.start_mark.index
        opener = self.doc.text[start : start + 2]
        if opener in _TEMPLATE_OPENERS:
            # `prompt: {{ vars.place }}` is valid YAML: a mapping whose key is a mapping.
            self.diags.error(NEEDS_QUOTES, _mark_loc(mapping.start_mark), _quote_hint(opener))
        else:
            self.diags.error(YAML_FEATURE, key_loc, "mapping keys must be plain text")

    def _text(self, node: Any) -> str | None:
        """Text with `\\u` escapes of UTF-16 surrogates: a pair is one character (as in JSON), a lone one an error."""
        value: str = node.value
        try:
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            pass
        lone = _lone_surrogate(value)
        source = self.doc.text[node.start_mark.index : node.end_mark.index]
        escape = re.search(rf"\\(?:u|U0000){lone:04x}", source, re.IGNORECASE)
        offset = node.start_mark.index + (escape.start() if escape else 0)
        self.diags.error(
            NOT_TEXT,
            _offset_to_loc(self.doc.text, offset),
            f"'\\u{lone:04x}' is half of a UTF-16 surrogate pair, not a character; "
            "write the character itself (or its \\U escape)",
        )
        return None

    def _copy_locs(self, src: JsonPath, dst: JsonPath) -> None:
        """Merged values keep pointing at where they were written."""
        n = len(src)
        for table in (self.doc.value_locs, self.doc.key_locs, self.doc.spans):
            for p in [p for p in table if p[:n] == src]:
                table[(*dst, *p[n:])] = table[p]  # type: ignore[assignment]

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        tag = node.tag
        value = node.value
        if tag == _STR:
            return self._text(node) if _SURROGATE.search(value) else value
        if tag == _INT:
            digits = sum(c.isalnum() for c in value) if len(value) > MAX_NUMBER_DIGITS else 0
            if digits > MAX_NUMBER_DIGITS:
                self.diags.error(
                    TOO_LARGE,
                    _mark_loc(node.start_mark),
                    f"a number of {digits} digits is too long; storyc reads numbers of at most {MAX_NUMBER_DIGITS}",
                )
                return None
            return int(value) if value.isdigit() else self.constructor.construct_yaml_int(node)
        if tag == _FLOAT:
            return self.constructor.construct_yaml_float(node)
        if tag == _BOOL:
            return self.constructor.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        if tag == _TIMESTAMP:
            return value  # dates stay the text the user wrote
        # `prompt: !x walks` may be text starting with '!': say how to keep it, if so.
        quoting = self._quoting(node) if tag.startswith("!") and not tag.startswith("!!") else None
        self.diags.error(
            YAML_FEATURE,
            _mark_loc(node.start_mark),
            f"YAML tag '{tag}' is not allowed: a storyboard is plain data",
            help=(f"if it is text, {quoting[1]}",) if quoting else (),
        )
        return value

    def _quoting(self, node: Any) -> tuple[str, str] | None:
        """For a plain value that starts with a character YAML reserves (`&x walks`), the message and
        help line saying to quote it (see `needs_quotes`)."""
        mark = node.start_mark
        return needs_quotes(self._line_of(mark.index), mark.column + 1) if node.style is None else None

    def _line_of(self, index: int) -> str:
        start = self.doc.text.rfind("\n", 0, index) + 1
        end = self.doc.text.find("\n", index)
        return self.doc.text[start : end if end >= 0 else len(self.doc.text)]


# --- the fast path: libyaml composes, storyc resolves ------------------------------------------


class _Constructor(Protocol):
    def construct_yaml_int(self, node: Any) -> Any: ...
    def construct_yaml_float(self, node: Any) -> Any: ...
    def construct_yaml_bool(self, node: Any) -> Any: ...


@dataclass(frozen=True)
class _Flavour:
    """One parser's node classes (mapping, scalar, sequence) and how it turns a plain scalar into a value."""

    nodes: tuple[Any, Any, Any]
    constructor: _Constructor


def _ruamel_flavour() -> _Flavour:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    return _Flavour((MappingNode, ScalarNode, SequenceNode), SafeConstructor(loader=YAML(typ="safe", pure=True)))


# YAML 1.2's implicit types, in the order ruamel.yaml's resolver tries them (its `implicit_resolvers`
# for version 1.2): the first that matches a plain scalar gives its tag, else it is text.
_IMPLICIT_12: tuple[tuple[str, re.Pattern[str]], ...] = (
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")),
    (
        _FLOAT,
        re.compile(
            r"""^(?:
             [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
    ),
    (_INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$")),
    (_MERGE, re.compile(r"^(?:<<)$")),
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$")),
    (
        _TIMESTAMP,
        re.compile(
            r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
            |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
            (?:[Tt]|[ \t]+)[0-9][0-9]?
            :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
            (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
            re.X,
        ),
    ),
    ("tag:yaml.org,2002:value", re.compile(r"^(?:=)$")),
)
# Which characters each type can start with (ruamel looks its resolvers up by the first one).
_STARTS = {
    _BOOL: "tTfF",
    _FLOAT: "-+0123456789.",
    _INT: "-+0123456789",
    _MERGE: "<",
    _NULL: "~nN",
    _TIMESTAMP: "0123456789",
    "tag:yaml.org,2002:value": "=",
}


def resolve_plain(value: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar under YAML 1.2, as ruamel.yaml's safe loader gives it."""
    if not value:
        return _NULL
    first = value[0]
    for tag, pattern in _IMPLICIT_12:
        if first in _STARTS[tag] and pattern.match(value):
            return tag
    return _STR


class _Yaml12Constructor:
    """Values of resolved plain scalars, as ruamel.yaml's SafeConstructor makes them for YAML 1.2."""

    def construct_yaml_bool(self, node: Any) -> bool:
        return str(node.value).lower() == "true"

    def construct_yaml_int(self, node: Any) -> int:
        text = str(node.value).replace("_", "")
        sign = -1 if text[0] == "-" else 1
        digits = text[1:] if text[0] in "+-" else text
        if digits == "0":
            return 0
        for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
            if digits.startswith(prefix):
                return sign * int(digits[2:], base)
        return sign * int(digits)

    def construct_yaml_float(self, node: Any) -> float:
        text = str(node.value).replace("_", "").lower()
        sign = -1 if text[0] == "-" else 1
        digits = text[1:] if text[0] in "+-" else text
        if digits == ".inf":
            return sign * math.inf
        if digits == ".nan":
            return math.nan
        return sign * float(digits)


_DIRECTIVE = re.compile(r"^%", re.MULTILINE)
# An anchor before a plain value on its line (`prompt: &x walks`): the reference path tells whether it is
# meant (an alias repeats it) or text to quote.
_ANCHORED_TEXT = re.compile(r"&[^\s,\[\]{}]+[ \t]+[^\s#{\[]")


def _fast_flavour() -> _Flavour | None:
    """libyaml's composer with storyc's resolver, or None where PyYAML's C extension is not installed."""
    global _FAST
    if _FAST is None:
        _FAST = _make_fast_flavour()
    return _FAST or None


_FAST: _Flavour | typing.Literal[False] | None = None


def _make_fast_flavour() -> _Flavour | typing.Literal[False]:
    try:
        from yaml import MappingNode, ScalarNode, SequenceNode
        from yaml._yaml import CParser
        from yaml.resolver import BaseResolver
    except ImportError:  # no PyYAML, or no C extension for this platform: the reference path only
        return False

    class PlainResolver(BaseResolver):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                return _PLAIN  # resolved by storyc (YAML 1.2); PyYAML's own rules are YAML 1.1
            return super().resolve(kind, value, implicit)

    class Loader(CParser, PlainResolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            PlainResolver.__init__(self)

    global _FAST_LOADER
    _FAST_LOADER = Loader
    return _Flavour((MappingNode, ScalarNode, SequenceNode), _Yaml12Constructor())


_FAST_LOADER: Any = None
_PLAIN = "tag:storyc,2026:plain"


def _compose_fast(text: str, flavour: _Flavour) -> Any | None:
    """The document's root node from libyaml, plain scalars resolved; None to leave it to the reference path."""
    if _DIRECTIVE.search(text) or ("&" in text and _ANCHORED_TEXT.search(text)):
        return None  # `%YAML 1.1` would change how plain scalars read: ruamel honours it; anchors: see above
    from yaml import YAMLError

    loader = _FAST_LOADER(text)
    try:
        root = loader.get_single_node()
    except (YAMLError, RecursionError):
        return None  # the reference path says where and why, in storyc's words
    finally:
        loader.dispose()
    if root is None or not _resolve_tree(root, flavour):
        return None
    return root


def _resolve_tree(root: Any, flavour: _Flavour) -> bool:
    """Give each plain scalar its YAML 1.2 tag; False for what only the reference path reports.

    A mapping or list reached twice is an alias (the reference path bounds and locates what
    aliases expand to); more than `MAX_NODES` nodes is refused there, at the node past the limit.
    """
    _, scalar_node, _ = flavour.nodes
    seen: set[int] = set()
    stack = [root]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            return False
        if isinstance(node, scalar_node):
            if node.tag == _PLAIN:
                node.tag = resolve_plain(node.value)
            continue
        if id(node) in seen:
            return False
        seen.add(id(node))
        if isinstance(node.value, list) and node.value and isinstance(node.value[0], tuple):
            for key, value in node.value:
                stack.append(value)
                stack.append(key)
        else:
            stack.extend(node.value)
    return True


def _parse_fast(text: str, path: Path, display: str, files: FileSource) -> SourceDoc | None:
    """The board through libyaml when it is clean; None when the reference path must look at it."""
    flavour = _fast_flavour()
    if flavour is None:
        return None
    root = _compose_fast(text, flavour)
    if root is None:
        return None
    doc = SourceDoc(path=path, display=display, text=text, data=None, files=files)
    found = Diagnostics(display)
    try:
        doc.data = _Builder(doc, found, {}, flavour).build(root, ())
    except (ValueError, IndexError, OverflowError):
        return None  # a scalar the reference path reads its own way (and reports)
    if found.sorted():
        return None  # a problem (a duplicate key, a tag...): the reference path reports it exactly
    return doc
