"""One board as the editor has it: its parse, its compile in each profile, and what is written where.

`analyse` is the language server's one compile: the buffer is loaded once (through the editor's
buffers), then compiled in each profile as `storyc check` does, so the diagnostics are check's own.
Hover, completion, rename and the outline read the result; none of them compiles again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from storyc.compile.compiler import CompiledBoard, CompileResult, Job
from storyc.compile.model import RefKind
from storyc.compile.pipeline import compile_doc
from storyc.compile.references import tokens
from storyc.compile.source import JsonPath, SourceDoc, Span, load
from storyc.diagnostics import Diagnostic, Diagnostics
from storyc.lsp.overlay import Overlay
from storyc.lsp.positions import UTF16, LineIndex

# Keys whose value names a scene (`{last_frame_of: SCENE}`: stills), a profile, or a template.
SCENE_KEYS = frozenset({"last_frame_of", "first_frame_of"})
PROFILE_KEYS = frozenset({"default_profile"})
TEMPLATE_KEYS = frozenset({"template", "shot_template"})
STILL_KEYS = frozenset({"still"})  # `{still: NAME}` in an image slot
# Keys whose value is an asset (a local path or a URL); `references` holds a list of them.
ASSET_KEYS = frozenset({"frontal", "video", "image", "start_frame", "end_frame", "file"})
_NAME_OF_KIND = {
    "reference": re.compile(r"[A-Za-z][A-Za-z0-9_]*"),
    "scene": re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*"),
    "still": re.compile(r"[A-Za-z][A-Za-z0-9_-]*"),
}


@dataclass(frozen=True)
class Declared:
    """A character or style as declared: its name is the key at `("characters" | "styles", name)`."""

    name: str
    kind: RefKind
    description: str | None
    image: str | None  # its first image (a character's frontal, a style's image) as written
    video: str | None = None

    @property
    def path(self) -> JsonPath:
        return ("characters" if self.kind == "character" else "styles", self.name)


@dataclass(frozen=True)
class SceneEntry:
    id: str
    index: int
    start: int  # offset of the scene's first node
    end: int  # offset where the next scene starts (or the text ends)
    id_span: Span | None


@dataclass(frozen=True)
class Mention:
    """A name written in the board: `@name` in a text (the offsets skip the '@'), a `with:` entry, a scene id."""

    start: int
    end: int
    name: str
    kind: str  # "reference" (a character or style), "scene" or "still"
    path: JsonPath


@dataclass(frozen=True)
class Scalar:
    start: int
    end: int
    path: JsonPath
    value: Any


@dataclass
class Analysis:
    path: Path  # the board, absolute
    display: str  # as its diagnostics name it
    text: str
    doc: SourceDoc | None
    results: tuple[CompileResult, ...]
    _lines: dict[str, LineIndex] = field(default_factory=dict, repr=False)

    def lines(self, encoding: str = UTF16) -> LineIndex:
        found = self._lines.get(encoding)
        if found is None:
            found = self._lines[encoding] = LineIndex(self.text, encoding)
        return found

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """Every profile's problems, once, as `storyc check` lists them."""
        from storyc.commands.check import Checked

        return Checked(self.path, self.results).diagnostics

    @property
    def data(self) -> dict[str, Any]:
        data = self.doc.data if self.doc is not None else None
        return data if isinstance(data, dict) else {}

    @cached_property
    def boards(self) -> dict[str | None, CompiledBoard]:
        """Each profile that compiles -> its compiled board (None: a board without profiles)."""
        return {r.board.profile: r.board for r in self.results if r.board is not None}

    @property
    def default_board(self) -> CompiledBoard | None:
        return next((b for b in self.boards.values() if b.is_default_profile), None)

    def job(self, scene: str, board: CompiledBoard | None) -> Job | None:
        return None if board is None else _jobs_by_scene(board).get(scene)

    @cached_property
    def declared(self) -> dict[str, Declared]:
        found: dict[str, Declared] = {}
        for name, value in _mapping(self.data.get("characters")).items():
            fields = _mapping(value)
            found[name] = Declared(
                name,
                "character",
                _text(fields.get("description")),
                _text(fields.get("frontal")),
                _text(fields.get("video")),
            )
        for name, value in _mapping(self.data.get("styles")).items():
            fields = _mapping(value)
            image = _text(value) if isinstance(value, str) else _text(fields.get("image"))
            found.setdefault(name, Declared(name, "style", _text(fields.get("description")), image))
        return found

    @cached_property
    def profiles(self) -> list[str]:
        return list(_mapping(self.data.get("profiles")))

    @cached_property
    def stills(self) -> list[str]:
        return list(_mapping(self.data.get("stills")))

    @cached_property
    def templates(self) -> list[str]:
        return list(_mapping(self.data.get("templates")))

    @cached_property
    def scenes(self) -> list[SceneEntry]:
        if self.doc is None or not isinstance(self.data.get("scenes"), list):
            return []
        lines = self.lines()
        items = [(i, s) for i, s in enumerate(self.data["scenes"]) if isinstance(s, dict)]
        starts = [lines.loc_offset(self.doc.loc(("scenes", i))) for i, _ in items]
        ends = [*starts[1:], len(self.text)]
        return [
            SceneEntry(str(scene.get("id")), i, start, end, self.doc.spans.get(("scenes", i, "id")))
            for (i, scene), start, end in zip(items, starts, ends, strict=True)
            if isinstance(scene.get("id"), str)
        ]

    def scene_at(self, offset: int) -> SceneEntry | None:
        return next((s for s in self.scenes if s.start <= offset < s.end), None)

    @cached_property
    def scalars(self) -> list[Scalar]:
        """Every scalar value written in the board, in text order."""
        if self.doc is None:
            return []
        found = [Scalar(s.start, s.end, path, _value_at(self.data, path)) for path, s in self.doc.spans.items()]
        return sorted(found, key=lambda s: s.start)

    def scalar_at(self, offset: int) -> Scalar | None:
        return next((s for s in self.scalars if s.start <= offset <= s.end), None)

    @cached_property
    def mentions(self) -> list[Mention]:
        """Every name written in the board: `@name`s in texts, `with:` entries, scene ids, scene and still names."""
        return [m for scalar in self.scalars if isinstance(scalar.value, str) for m in self._mentions_in(scalar)]

    def _mentions_in(self, scalar: Scalar) -> Iterator[Mention]:
        source = self.text[scalar.start : scalar.end]
        kind = _whole_name_kind(scalar.path)
        if kind is not None:  # the value is a name: `with: [ellie]`, `id: meet`, `{still: meet-open}`
            at = source.find(scalar.value)
            if at >= 0 and _NAME_OF_KIND[kind].fullmatch(scalar.value):
                yield Mention(scalar.start + at, scalar.start + at + len(scalar.value), scalar.value, kind, scalar.path)
            return
        for token in tokens(source):
            if token.name is not None:
                yield Mention(
                    scalar.start + token.start + 1, scalar.start + token.end, token.name, "reference", scalar.path
                )

    def mention_at(self, offset: int) -> Mention | None:
        """The name under the cursor; a cursor just after a name is on it (as editors place it)."""
        return next((m for m in self.mentions if m.start - 1 <= offset <= m.end), None)

    def key_span(self, path: JsonPath) -> tuple[int, int] | None:
        """Where the mapping key naming `path` is written (inside its quotes, if quoted)."""
        if self.doc is None or path not in self.doc.key_locs:
            return None
        start = self.lines().loc_offset(self.doc.key_locs[path])
        name = str(path[-1])
        if self.text.startswith(name, start):
            return start, start + len(name)
        if self.text[start : start + 1] in ("'", '"') and self.text.startswith(name, start + 1):
            return start + 1, start + 1 + len(name)
        return None

    def declaration_at(self, offset: int) -> Declared | None:
        """The character or style whose declaring key is under the cursor."""
        for item in self.declared.values():
            span = self.key_span(item.path)
            if span is not None and span[0] <= offset <= span[1]:
                return item
        return None


def _whole_name_kind(path: JsonPath) -> str | None:
    """What a scalar at `path` names as a whole ("reference", "scene", "still"), or None for a text."""
    if len(path) >= 2 and path[-2] == "with":
        return "reference"
    if (len(path) == 3 and path[0] == "scenes" and path[2] == "id") or (path and path[-1] in SCENE_KEYS):
        return "scene"
    if path and path[-1] in STILL_KEYS:
        return "still"
    return None


def _jobs_by_scene(board: CompiledBoard) -> dict[str, Job]:
    return {job.scene: job for job in board.jobs}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _value_at(data: Any, path: JsonPath) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def analyse(path: Path, display: str, buffers: Mapping[Path, str]) -> Analysis:
    """The board at `path` as the buffers have it (the disk for files not open), checked in each profile."""
    from storyc.commands.check import each_profile

    files = Overlay(buffers)
    loaded = Diagnostics(display)
    doc = load(path, loaded, files)
    text = doc.text if doc is not None else buffers.get(path, "")
    if doc is None:
        return Analysis(path, display, text, None, (CompileResult(None, loaded.sorted()),))

    def compile_as(profile: str | None) -> CompileResult:
        diags = Diagnostics(display)
        diags.extend(loaded.sorted())
        return compile_doc(doc, diags, profile)

    return Analysis(path, display, text, doc, each_profile(compile_as))
