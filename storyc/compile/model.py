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
# What an image slot may take besides a file or URL: another step's output.
UpstreamKind = Literal["still", "last_frame_of", "first_frame_of"]
UPSTREAM_KINDS: tuple[UpstreamKind, ...] = ("still", "last_frame_of", "first_frame_of")


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
class Upstream:
    """An image slot taking another step's output: `{still: NAME}`, `{last_frame_of: SCENE}`, `{first_frame_of: X}`."""

    kind: UpstreamKind
    name: str  # the still's name or the scene's id
    path: JsonPath  # the slot's YAML node

    @property
    def what(self) -> str:
        """In words: "still 'meet-open'", "the last frame of scene 'meet'"."""
        if self.kind == "still":
            return f"still '{self.name}'"
        return f"the {self.kind.split('_')[0]} frame of scene '{self.name}'"


# An image slot as written: a file or URL, or another step's output.
ImageRef = AssetRef | Upstream


def files_of(slots: tuple[ImageRef | None, ...]) -> tuple[AssetRef, ...]:
    return tuple(a for a in slots if isinstance(a, AssetRef))


def upstreams_of(slots: tuple[ImageRef | None, ...]) -> tuple[Upstream, ...]:
    return tuple(a for a in slots if isinstance(a, Upstream))


@dataclass(frozen=True, slots=True)
class Character:
    name: str
    path: JsonPath
    description: str | None = None
    frontal: ImageRef | None = None
    references: tuple[ImageRef, ...] = ()
    video: AssetRef | None = None
    voice: str | None = None
    kind: RefKind = "character"

    @property
    def slots(self) -> tuple[ImageRef, ...]:
        items = [self.frontal, *self.references, self.video]
        return tuple(a for a in items if a is not None)

    @property
    def assets(self) -> tuple[AssetRef, ...]:
        """Its local files and URLs (not the slots taking a still or a frame)."""
        return files_of(self.slots)


@dataclass(frozen=True, slots=True)
class Style:
    name: str
    path: JsonPath
    image: ImageRef
    description: str | None = None
    kind: RefKind = "style"

    @property
    def slots(self) -> tuple[ImageRef, ...]:
        return (self.image,)

    @property
    def assets(self) -> tuple[AssetRef, ...]:
        return files_of(self.slots)


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
    start_frame: ImageRef | None = None
    end_frame: ImageRef | None = None
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
        return files_of((self.start_frame, self.end_frame))


@dataclass(frozen=True)
class Still:
    """A generated image: one request to an image endpoint, `variants` candidates, `pick` flows on."""

    name: str
    path: JsonPath
    prompt: Text
    endpoint: str | None  # as chosen by the board (still, profile, target); None: by its prompt
    aspect_ratio: str
    resolution: str | None  # None: the endpoint's default
    variants: int
    pick: int
    with_names: tuple[tuple[str, JsonPath], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # its fields as written, for templates (`still.*`)
    # where `endpoint` and `resolution` are written, when the still or its profile or target sets them
    where: dict[str, JsonPath] = field(default_factory=dict)


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
    stills: dict[str, Still] = field(default_factory=dict)
    broken_stills: frozenset[str] = frozenset()  # declared, with errors (reported): using one fails quietly
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
