"""Typed values passed between the pipeline stages.

`dict[str, Any]` exists only between YAML and the schema check; from then on
every stage sees these frozen values.  Each keeps the JSON path of the YAML
node it came from, so any stage can point a diagnostic at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from storyc.compile.source import JsonPath, SourceDoc

STRUCTURED_FIELDS = ("scene", "subjects", "style", "camera", "details", "audio", "constraints")
TEXT_FIELDS = ("prompt", *STRUCTURED_FIELDS[:-1])

RefKind = Literal["character", "style"]


@dataclass(frozen=True, slots=True)
class Text:
    """A text field as written (a Jinja2 template) and where it was written."""

    value: str
    path: JsonPath


def is_url(asset: str) -> bool:
    """Whether an asset (as written, or as compiled) is a URL rather than a local path."""
    return "://" in asset


@dataclass(frozen=True, slots=True)
class AssetRef:
    """An asset as written: a path relative to the storyboard, or an https URL."""

    value: str
    path: JsonPath

    @property
    def is_url(self) -> bool:
        return is_url(self.value)


@dataclass(frozen=True, slots=True)
class Character:
    name: str
    path: JsonPath
    description: str | None = None
    frontal: AssetRef | None = None
    references: tuple[AssetRef, ...] = ()
    video: AssetRef | None = None
    voice: str | None = None
    kind: RefKind = "character"

    @property
    def assets(self) -> tuple[AssetRef, ...]:
        items = [self.frontal, *self.references, self.video]
        return tuple(a for a in items if a is not None)


@dataclass(frozen=True, slots=True)
class Style:
    name: str
    path: JsonPath
    image: AssetRef
    description: str | None = None
    kind: RefKind = "style"

    @property
    def assets(self) -> tuple[AssetRef, ...]:
        return (self.image,)


Reference = Character | Style


@dataclass(frozen=True, slots=True)
class TemplateDef:
    name: str
    source: str
    path: JsonPath  # where it is declared (or, for a file, the node naming the file)
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class Shot:
    prompt: Text
    duration: int
    path: JsonPath


@dataclass(frozen=True)
class Scene:
    id: str
    index: int
    path: JsonPath
    raw: dict[str, Any]  # the scene's own fields as written, for templates
    endpoint: str
    aspect_ratio: str
    generate_audio: bool
    shot_type: str
    duration: int | None  # as written on the scene (or the target default)
    prompt: Text | None = None
    fields: dict[str, Text] = field(default_factory=dict)  # structured text fields
    constraints: tuple[Text, ...] = ()
    shots: tuple[Shot, ...] = ()
    template: str | None = None
    shot_template: str | None = None
    with_names: tuple[tuple[str, JsonPath], ...] = ()
    start_frame: AssetRef | None = None
    end_frame: AssetRef | None = None
    # its schema errors are reported: only the parts without errors are here, checked
    # for more problems (references, templates, assets), never compiled into a request
    has_errors: bool = False
    profile: str | None = None  # the profile whose settings it was built with

    @property
    def seconds(self) -> int:
        if self.shots:
            return sum(s.duration for s in self.shots)
        return self.duration or 0

    @property
    def assets(self) -> tuple[AssetRef, ...]:
        return tuple(a for a in (self.start_frame, self.end_frame) if a is not None)


@dataclass(frozen=True)
class Storyboard:
    doc: SourceDoc
    root: Path  # project root: assets may not resolve outside it
    title: str
    vars: dict[str, Any]
    characters: dict[str, Character]
    styles: dict[str, Style]
    templates: dict[str, TemplateDef]
    scenes: tuple[Scene, ...]
    # declared names whose declaration has errors: already reported, so a scene
    # using one fails quietly instead of adding "unknown reference" noise
    broken_names: frozenset[str] = frozenset()
    profile: str | None = None  # the profile this compile uses (None: the board declares none)
    profiles: tuple[str, ...] = ()  # every profile the board declares, in order
    default_profile: str | None = None  # the one used without --profile

    @property
    def base_dir(self) -> Path:
        return self.doc.path.parent

    def reference(self, name: str) -> Reference | None:
        return self.characters.get(name) or self.styles.get(name)

    @property
    def names(self) -> list[str]:
        return [*self.characters, *self.styles]
