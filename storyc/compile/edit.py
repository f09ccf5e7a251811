"""Small edits of a board's text that keep everything else as written: comments, quoting, order, spacing.

Used where storyc writes a choice back into the board (the sheet's "pick this
candidate"). The edit replaces one scalar's source text, found by the
positions the loader records, or adds one `key: value` line under a block
mapping at its keys' indentation; only a mapping written in flow style
(`{prompt: ..., pick: 2}`) goes through ruamel.yaml's round trip, which may
respace that mapping. The result is written atomically, and only if it
still loads as the same board with the one value changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storyc.compile.source import JsonPath, SourceDoc, parse
from storyc.diagnostics import Diagnostics, StorycError


def set_scalar(board: Path, path: JsonPath, value: int | str) -> bool:
    """Set the value at `path` (an existing mapping's key) in the board file; whether the file changed."""
    text = board.read_text("utf-8")
    doc = _load(board, text)
    parent, key = path[:-1], path[-1]
    mapping = _at(doc.data, parent)
    if not isinstance(mapping, dict):
        raise StorycError(f"{board}: nothing at {'.'.join(map(str, parent))} to set '{key}' in")
    if mapping.get(str(key)) == value:
        return False
    edited = _replace(doc, path, value) if str(key) in mapping else _insert(doc, parent, str(key), value)
    _check(board, doc.data, edited, path, value)
    from storyc.fsutil import atomic_write_bytes

    atomic_write_bytes(board, edited.encode("utf-8"))
    return True


def _load(board: Path, text: str) -> SourceDoc:
    diags = Diagnostics(str(board))
    doc = parse(text, board.resolve(), diags)
    if doc is None:
        raise StorycError(f"{board}: does not load, so storyc leaves it as it is ({diags.sorted()[0].message})")
    return doc


def _at(data: Any, path: JsonPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + col - 1


def _replace(doc: SourceDoc, path: JsonPath, value: int | str) -> str:
    span = doc.spans.get(path)
    if span is None:
        raise StorycError(f"{doc.display}: '{path[-1]}' is not a plain value storyc can rewrite")
    return doc.text[: span.start] + _scalar_text(value) + doc.text[span.end :]


def _insert(doc: SourceDoc, parent: JsonPath, key: str, value: int | str) -> str:
    keys = [p for p in doc.key_locs if p[:-1] == parent and len(p) == len(parent) + 1]
    start = doc.loc(parent)
    opener = doc.text[_offset(doc.text, start.line, start.col) :][:1]
    if not keys or opener == "{":
        return _round_trip(doc, parent, key, value)
    indent = doc.key_locs[keys[0]].col - 1
    # After the last line of the mapping: the line before the next line indented no deeper than its keys.
    last = max(_end_line(doc, (*parent, str(k[-1]))) for k in keys)
    lines = doc.text.split("\n")
    lines.insert(last, " " * indent + f"{key}: {_scalar_text(value)}")
    return "\n".join(lines)


def _end_line(doc: SourceDoc, path: JsonPath) -> int:
    """The last line (1-based) that the value at `path` takes, comments after it excluded."""
    own = [doc.loc(p).line for p in doc.value_locs if p[: len(path)] == path]
    spans = [doc.text.count("\n", 0, s.end) + 1 for p, s in doc.spans.items() if p[: len(path)] == path]
    return max([*own, *spans, doc.key_loc(path).line])


def _round_trip(doc: SourceDoc, parent: JsonPath, key: str, value: int | str) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    data = yaml.load(doc.text)
    _at(data, parent)[key] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _scalar_text(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    import json

    return json.dumps(value, ensure_ascii=False)  # a double-quoted YAML scalar


def _check(board: Path, before: Any, edited: str, path: JsonPath, value: int | str) -> None:
    """The edit must load, and change exactly that one value of `before` (the board as read)."""
    after = _load(board, edited).data
    expected = _set(before, path, value)
    if after != expected:
        raise StorycError(f"{board}: storyc could not set {'.'.join(map(str, path))} without changing more; edit it")


def _set(data: Any, path: JsonPath, value: Any) -> Any:
    import copy

    result = copy.deepcopy(data)
    _at(result, path[:-1])[path[-1]] = value
    return result
