"""What may be typed at the cursor: `@` names, keys from the board's JSON Schema, and values that name
something (a profile, a scene, a template, an asset file).

It reads the line being typed and the lines above it, not the parse: a board being typed is
rarely valid YAML, and completion is most wanted exactly then.  What the names are comes from the
board's last parse that worked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from storyc.compile.validate import TEMPLATE_FILE_SUFFIXES
from storyc.lsp.analysis import ASSET_KEYS, PROFILE_KEYS, SCENE_KEYS, STILL_KEYS, TEMPLATE_KEYS, Analysis

ITEM = 0  # a list item, in a path of keys
KeyPath = list[str | int]

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_FILES = (".mp4", ".mov")
TEMPLATE_FILES = TEMPLATE_FILE_SUFFIXES
MAX_FILES = 2000  # an asset folder is small; a huge tree must not stall the editor

_AT_NAME = re.compile(r"(?<![A-Za-z0-9@])@([A-Za-z0-9_]*)$")
_KEY_BEING_TYPED = re.compile(r"^(?P<indent> *)(?P<dash>-[ \t]+)?(?P<word>[A-Za-z_]*)$")
# `key: va`, `key: [a, b`, `- key: "va`: the value (or flow list entry) being typed
_VALUE_BEING_TYPED = re.compile(
    r"^(?P<indent> *)(?P<dash>-[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*):[ \t]+"
    r"(?:\[(?:[^\]]*,[ \t]*)?)?[\"']?(?P<word>[^\"',\]#]*)$"
)
# `slot: {still: na`: the value of a one-line mapping being typed
_FLOW_VALUE_BEING_TYPED = re.compile(
    r"^(?P<indent> *)(?P<dash>-[ \t]+)?(?P<outer>[A-Za-z_][A-Za-z0-9_]*):[ \t]*\{[ \t]*"
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*):[ \t]*[\"']?(?P<word>[^\"',}#]*)$"
)
_ITEM_BEING_TYPED = re.compile(r"^(?P<indent> *)(?P<dash>-[ \t]+)[\"']?(?P<word>[^\"'#:]*)$")
# A line's indentation, its `- ` and its key, if it has them
_LINE = re.compile(
    r"^(?P<indent> *)(?P<dash>-[ \t]+)?"
    r"(?:(?P<key>\"[^\"]*\"|'[^']*'|[^\s#'\"{\[\-][^#]*?)[ \t]*:(?:[ \t]|$))?"
)


@dataclass(frozen=True)
class Candidate:
    label: str
    kind: str  # "character", "style", "key", "profile", "scene", "still", "template", "file", "value"
    detail: str | None = None
    documentation: str | None = None
    insert: str | None = None  # what to insert, when not the label
    replace_from: int = 0  # how many characters before the cursor the candidate replaces


def candidates(line_prefix: str, lines_above: list[str], known: Analysis | None, board: Path) -> list[Candidate]:
    """What may be typed where the line so far is `line_prefix` (`lines_above` are the lines before it)."""
    at = _AT_NAME.search(line_prefix)
    if at is not None:
        return list(_names(known, len(at.group(1))))
    if "#" in line_prefix:
        return []
    key = _KEY_BEING_TYPED.match(line_prefix)
    if key is not None:
        dash = key.group("dash")
        container = container_path(lines_above, key.start("word"), len(key.group("indent")) if dash else None)
        return list(_keys(container, len(key.group("word"))))
    flow = _FLOW_VALUE_BEING_TYPED.match(line_prefix)
    if flow is not None:
        dash = flow.group("dash")
        container = container_path(lines_above, flow.start("outer"), len(flow.group("indent")) if dash else None)
        return list(
            _values([*container, flow.group("outer"), flow.group("key")], known, board, len(flow.group("word")))
        )
    value = _VALUE_BEING_TYPED.match(line_prefix)
    if value is not None:
        dash = value.group("dash")
        container = container_path(lines_above, value.start("key"), len(value.group("indent")) if dash else None)
        return list(_values([*container, value.group("key")], known, board, len(value.group("word"))))
    item = _ITEM_BEING_TYPED.match(line_prefix)
    if item is not None:
        container = container_path(lines_above, item.start("word"), len(item.group("indent")))
        return list(_values(container, known, board, len(item.group("word"))))
    return []


def _names(known: Analysis | None, typed: int) -> Iterator[Candidate]:
    for item in known.declared.values() if known is not None else ():
        yield Candidate(item.name, item.kind, item.kind, item.description, replace_from=typed)


def _keys(container: KeyPath, typed: int) -> Iterator[Candidate]:
    seen: set[str] = set()
    for node in schema_at(container):
        for key, sub in node.get("properties", {}).items():
            if key not in seen:
                seen.add(key)
                yield Candidate(key, "key", None, _description(sub), f"{key}: ", typed)


def _values(path: KeyPath, known: Analysis | None, board: Path, typed: int) -> Iterator[Candidate]:
    key = next((p for p in reversed(path) if isinstance(p, str)), None)
    listed = bool(path) and path[-1] == ITEM
    if key in PROFILE_KEYS and known is not None:
        yield from (Candidate(p, "profile", "profile", replace_from=typed) for p in known.profiles)
    elif key in SCENE_KEYS and known is not None:
        yield from (Candidate(s.id, "scene", "scene", replace_from=typed) for s in known.scenes)
    elif key in STILL_KEYS and known is not None:
        yield from (Candidate(name, "still", "still", replace_from=typed) for name in known.stills)
    elif key in TEMPLATE_KEYS and known is not None:
        yield from (Candidate(t, "template", "template", replace_from=typed) for t in known.templates)
    elif key == "with" and listed and known is not None:
        yield from (
            Candidate(d.name, d.kind, d.kind, d.description, replace_from=typed) for d in known.declared.values()
        )
    elif key in ASSET_KEYS or (key == "references" and listed) or (path[:1] == ["styles"] and len(path) == 2):
        kinds = VIDEO_FILES if key == "video" else TEMPLATE_FILES if key == "file" else IMAGE_FILES
        yield from (Candidate(f, "file", "file", replace_from=typed) for f in asset_files(board.parent, kinds))
    elif path[:1] == ["templates"] and len(path) == 2:
        yield from (Candidate(f, "file", "file", replace_from=typed) for f in asset_files(board.parent, TEMPLATE_FILES))
    else:
        for node in schema_at(path):
            for choice in node.get("enum", []) or ([True, False] if node.get("type") == "boolean" else []):
                text = json.dumps(choice) if not isinstance(choice, str) or ":" in choice else choice
                yield Candidate(text, "value", None, _description(node), replace_from=typed)


def asset_files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Files under `folder` (hidden folders skipped) ending in one of `suffixes`, as paths relative to it."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(suffixes):
                found.append(Path(root, name).relative_to(folder).as_posix())
                if len(found) >= MAX_FILES:
                    return found
    return found


def container_path(lines_above: list[str], column: int, dash: int | None) -> KeyPath:
    """The path of keys (ITEM for a list item) of the mapping whose key starts at `column` on the
    cursor's line, read from the indentation of the lines above (`dash`: the column of the cursor
    line's `- `, when it starts a list item)."""
    path: KeyPath = []
    at, in_item = column, False
    if dash is not None:
        path, at, in_item = [ITEM], dash, True
    for text in reversed(lines_above):
        line = _LINE.match(text)
        if line is None or not text.strip() or text.lstrip().startswith("#"):
            continue
        indent = len(line.group("indent"))
        key_col = indent + len(line.group("dash") or "")
        key = line.group("key")
        line_dash = indent if line.group("dash") else None
        if key is not None and (key_col < at or (in_item and key_col == at and line_dash is None)):
            path.insert(0, key.strip("'\""))
            if line_dash is not None:
                path.insert(0, ITEM)
                at, in_item = line_dash, True
            else:
                at, in_item = key_col, False
        elif line_dash is not None and line_dash < at:
            path.insert(0, ITEM)
            at, in_item = line_dash, True
        if at == 0 and not in_item:
            break
    return path


@cache
def _schema() -> dict[str, Any]:
    from storyc.resources import storyboard_schema_path

    schema: dict[str, Any] = json.loads(storyboard_schema_path().read_text(encoding="utf-8"))
    return schema


def schema_at(path: KeyPath) -> list[dict[str, Any]]:
    """The schema nodes that may describe the value at `path` (each alternative of a oneOf)."""
    nodes = _expand([_schema()])
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int):  # ITEM
                items = node.get("items")
                following += [items] if isinstance(items, dict) else []
            elif isinstance(part, str):
                props = node.get("properties", {})
                extra = node.get("additionalProperties")
                following += [props[part]] if part in props else [extra] if isinstance(extra, dict) else []
        nodes = _expand(following)
    return nodes


def _expand(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each node with its `$ref` followed and its `oneOf`/`anyOf`/`allOf` alternatives spread out."""
    out: list[dict[str, Any]] = []
    for node in nodes:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _schema()["$defs"][ref.removeprefix("#/$defs/")]
            out += _expand([{**target, **{k: v for k, v in node.items() if k != "$ref"}}])
            continue
        out.append(node)
        for alternatives in ("oneOf", "anyOf", "allOf"):
            out += _expand([n for n in node.get(alternatives, []) if isinstance(n, dict)])
    return out


def _description(node: dict[str, Any]) -> str | None:
    found = node.get("description")
    if isinstance(found, str):
        return found
    return next((d for n in _expand([node]) if isinstance(d := n.get("description"), str)), None)
