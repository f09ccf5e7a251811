"""Stage 1, load: a storyboard file -> `SourceDoc` (plain data + positions).

We compose the YAML into nodes with ruamel.yaml and build plain JSON-shaped
data ourselves, because that is faster than ruamel's round-trip loader and
gives every node's position for free (node marks).  Building it ourselves also
lets us refuse what a storyboard must never contain: duplicate keys, tags
(`!!python/object`, `!foo`), and aliases that expand into huge documents.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyc.diagnostics import START, Diagnostics, Loc

JsonPath = tuple[str | int, ...]

# A YAML alias may repeat a node; a few repeats are normal (shared defaults),
# millions are an attack ("billion laughs").  Bound what aliases add.
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 64

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
        span = self.spans.get(path)
        if span is None:
            return self.loc(path)
        source = self.text[span.start : span.end]
        # Whole names only: looking for '@ell' must not stop inside '@ellie'.
        pattern = re.compile(re.escape(needle) + r"(?![A-Za-z0-9_])")
        found = list(pattern.finditer(source))
        if occurrence >= len(found):
            return self.loc(path)
        return _offset_to_loc(self.text, span.start + found[occurrence].start())


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


def load(path: Path, diags: Diagnostics) -> SourceDoc | None:
    """Read and parse a storyboard.  Returns None (with diagnostics) when it can't."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        diags.error(None, f"cannot read storyboard: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags.error(_offset_to_loc(raw.decode("utf-8", "replace"), exc.start), "not UTF-8 text")
        return None
    return parse(text, path.resolve(), diags)


def parse(text: str, path: Path, diags: Diagnostics) -> SourceDoc | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    doc = SourceDoc(path=path, display=diags.path, text=text, data=None)
    try:
        root = YAML(typ="safe", pure=True).compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(mark.line + 1, mark.column + 1) if mark else START
        problem = exc.problem or exc.context or "invalid YAML"
        diags.error(loc, f"invalid YAML: {problem}")
        return None
    except YAMLError as exc:
        diags.error(START, f"invalid YAML: {exc}")
        return None
    if root is None:
        diags.error(START, "the storyboard is empty")
        return None
    builder = _Builder(doc, diags)
    doc.data = builder.build(root, ())
    return None if diags.has_errors else doc


class _AliasBudgetExceeded(Exception):
    pass


class _Builder:
    def __init__(self, doc: SourceDoc, diags: Diagnostics) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.constructor import SafeConstructor

        self.doc = doc
        self.diags = diags
        self.constructor = SafeConstructor(loader=YAML(typ="safe", pure=True))
        self.seen: set[int] = set()
        self.alias_depth = 0
        self.alias_nodes = 0

    def build(self, root: Any, path: JsonPath) -> Any:
        try:
            return self._node(root, path, 0)
        except _AliasBudgetExceeded:
            return None

    def _node(self, node: Any, path: JsonPath, depth: int) -> Any:
        from ruamel.yaml.nodes import MappingNode, ScalarNode

        mark = node.start_mark
        self.doc.value_locs[path] = Loc(mark.line + 1, mark.column + 1)
        if self.alias_depth:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                self.diags.error(
                    self.doc.value_locs[path],
                    f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes; write the storyboard out instead",
                )
                raise _AliasBudgetExceeded
        if isinstance(node, ScalarNode):
            self.doc.spans[path] = Span(mark.index, node.end_mark.index)
            return self._scalar(node, path)
        if depth > MAX_DEPTH:
            self.diags.error(self.doc.value_locs[path], f"nesting deeper than {MAX_DEPTH} levels")
            return None
        is_alias = id(node) in self.seen
        self.seen.add(id(node))
        self.alias_depth += is_alias
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
            return self._sequence(node, path, depth)
        finally:
            self.alias_depth -= is_alias

    def _check_tag(self, node: Any, allowed: str, path: JsonPath) -> None:
        if node.tag != allowed:
            self.diags.error(
                self.doc.value_locs[path],
                f"YAML tag '{node.tag}' is not allowed: a storyboard is plain data",
            )

    def _sequence(self, node: Any, path: JsonPath, depth: int) -> list[Any]:
        self._check_tag(node, _SEQ, path)
        return [self._node(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]

    def _mapping(self, node: Any, path: JsonPath, depth: int) -> dict[str, Any]:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

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
                self.diags.error(key_loc, "mapping keys must be plain text")
                continue
            key = str(self._scalar(key_node, path))
            if key in first_seen:
                self.diags.error(key_loc, f"duplicate key '{key}' (first given at line {first_seen[key].line})")
                continue
            first_seen[key] = key_loc
            child = (*path, key)
            self.doc.key_locs[child] = key_loc
            result[key] = self._node(value_node, child, depth + 1)
        # `<<: *defaults` merges keys the mapping does not set itself (YAML merge keys).
        for merged in merges:
            if not isinstance(merged, MappingNode):
                self.diags.error(self.doc.value_locs[path], "'<<' must merge a mapping")
                continue
            for key, value in self._node(merged, (*path, "<<"), depth + 1).items():
                if key not in result:
                    result[key] = value
                    self._copy_locs((*path, "<<", key), (*path, key))
        return result

    def _copy_locs(self, src: JsonPath, dst: JsonPath) -> None:
        """Merged values keep pointing at where they were written."""
        n = len(src)
        for table in (self.doc.value_locs, self.doc.key_locs, self.doc.spans):
            for p in [p for p in table if p[:n] == src]:
                table[(*dst, *p[n:])] = table[p]  # type: ignore[index]

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        tag = node.tag
        value = node.value
        if tag == _STR:
            return value
        if tag == _INT:
            return int(value) if value.isdigit() else self.constructor.construct_yaml_int(node)
        if tag == _FLOAT:
            return self.constructor.construct_yaml_float(node)
        if tag == _BOOL:
            return self.constructor.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        if tag == _TIMESTAMP:
            return value  # dates stay the text the user wrote
        mark = node.start_mark
        self.diags.error(
            Loc(mark.line + 1, mark.column + 1),
            f"YAML tag '{tag}' is not allowed: a storyboard is plain data",
        )
        return value
