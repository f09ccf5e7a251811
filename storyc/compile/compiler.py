"""Stage 5, compile: resolved scenes -> one request (`Job`) per scene.

Each request is checked against its endpoint's input schema before anything
is sent, and gets its cost and its content key:

    key = sha256(canonical JSON of {endpoint, arguments}), with every local
          asset in the arguments replaced by the sha256 of its bytes

so renaming a file keeps the key, repainting it changes it, and the key does
not depend on storyc's version, upload URLs or other scenes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from storyc.compile.assets import Assets, LocalFile, MediaKind
from storyc.compile.endpoints import Endpoint
from storyc.compile.model import UPSTREAM_KINDS, Character, ImageRef, Storyboard, Style, Upstream, UpstreamKind, is_url
from storyc.compile.references import ResolvedScene, ResolvedText
from storyc.compile.view import RefView, SceneView, Segment, ShotView
from storyc.diagnostics import PROMPT_LENGTH, REQUEST_SCHEMA, Diagnostic, Diagnostics

# The request's settings besides prompts and references, as the board names them (compile, diff).
REQUEST_SETTINGS = ("duration", "aspect_ratio", "generate_audio", "shot_type")

# Argument fields that hold an asset (URL or local path), at any depth.
ASSET_FIELDS = frozenset(
    {"frontal_image_url", "reference_image_urls", "video_url", "image_urls", "start_image_url", "end_image_url"}
)

# A request with a video element is priced as an estimate: fal's page prices "4K mode, without video
# input" and says video-based elements "may be priced under a separate tier".
VIDEO_INPUT = "video input"
VIDEO_INPUT_CAVEAT = f"{VIDEO_INPUT}: fal may price it differently"


def price_uncertainty(arguments: dict[str, Any]) -> str | None:
    """Why a request's price is only an estimate ("video input"), or None when the price list covers it."""
    elements = arguments.get("elements") or []
    if any(isinstance(e, dict) and "video_url" in e for e in elements):
        return VIDEO_INPUT
    return None


def money(amount: Decimal) -> str:
    return f"${amount:.2f}"


def stills_text(stills: Sequence[StillJob]) -> str:
    """'2 stills, 4 images, $0.21 (estimated)': what a board's stills cost, apart from its video."""
    images = sum(s.variants for s in stills)
    cost = money(sum((s.cost_usd for s in stills), Decimal("0.00")))
    estimated = " (estimated)" if any(not s.price_certain for s in stills) else ""
    noun = "still" if len(stills) == 1 else "stills"
    return f"{len(stills)} {noun}, {images} {'image' if images == 1 else 'images'}, {cost}{estimated}"


def price_text(amount: Decimal, uncertain: Decimal) -> str:
    """A total: '$7.14', or with an uncertain part '$7.14 ($4.20 of it uncertain: video input)'."""
    if uncertain <= 0:
        return money(amount)
    part = "all" if uncertain >= amount else money(uncertain)
    return f"{money(amount)} ({part} of it uncertain: {VIDEO_INPUT})"


@dataclass(frozen=True)
class Edge:
    """An input of a step that is another step's output: a still's picked candidate, or a scene's frame.

    In the step's `arguments` it stands as `placeholder` (a `still://` or `frame://` value, which no
    asset a board may write can be: an asset is a local path or an https URL); in the step's key it
    stands as `hashed`, the upstream's own key with the pick or the frame.
    """

    kind: UpstreamKind
    name: str  # the still's name, or the scene's id
    pick: int | None = None  # a still's candidate that flows on (1-based)
    key: str = ""  # the upstream step's key (filled in by `storyc.compile.graph.assign_keys`)

    @property
    def placeholder(self) -> str:
        if self.kind == "still":
            return f"still://{self.name}/{self.pick}"
        return f"frame://{self.name}/{self.kind.split('_')[0]}"

    @property
    def hashed(self) -> str:
        if self.kind == "still":
            return f"still:{self.key}#{self.pick}"
        return f"{self.kind}:{self.key}"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "still":
            return {"still": self.name, "pick": self.pick, "key": self.key}
        return {self.kind: self.name, "key": self.key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Edge:
        """Read back strictly (the compile cache): anything unexpected is a ValueError or TypeError."""
        kinds = [k for k in UPSTREAM_KINDS if k in data]
        if len(kinds) != 1:
            raise ValueError(f"not an edge: {data!r}")
        kind = kinds[0]
        pick = data.get("pick")
        if pick is not None and type(pick) is not int:
            raise TypeError(f"expected a whole number, not {pick!r}")
        return cls(kind, str(data[kind]), pick, str(data["key"]))


def edge_of(slot: Upstream, board: Storyboard) -> Edge:
    """The compiled edge of an image slot taking a still or a frame (the still's pick flows on)."""
    if slot.kind == "still":
        return Edge("still", slot.name, board.stills[slot.name].pick)
    return Edge(slot.kind, slot.name)


@dataclass(frozen=True)
class Job:
    """One scene's request, ready to send once its local assets are uploaded."""

    scene: str
    endpoint: str
    arguments: dict[str, Any]
    references: dict[str, str]
    seconds: int
    cost_usd: Decimal
    key: str
    view: SceneView  # what people see of it (names, shots, thumbnails) and where its fields were written
    files: dict[str, LocalFile] = field(default_factory=dict)  # local assets in `arguments`
    depends_on: tuple[Edge, ...] = ()  # stills and frames in `arguments`, by their placeholders

    @property
    def price_caveat(self) -> str | None:
        """Why `cost_usd` is only an estimate ("video input"), or None when it is the price list's."""
        return price_uncertainty(self.arguments)

    @property
    def price_certain(self) -> bool:
        return self.price_caveat is None

    @property
    def uncertain_usd(self) -> Decimal:
        """The part of `cost_usd` that is an estimate: all of it, or nothing."""
        return Decimal("0.00") if self.price_certain else self.cost_usd

    @property
    def price_text(self) -> str:
        """'$3.36', or as an estimate '$4.20, video input: fal may price it differently'."""
        if self.price_certain:
            return money(self.cost_usd)
        return f"{money(self.cost_usd)}, {VIDEO_INPUT_CAVEAT}"

    def to_json(self, graph: bool = False) -> dict[str, Any]:
        """The compiled form; `graph` (a board with stills or frames) adds what the scene depends on."""
        data: dict[str, Any] = {
            "scene": self.scene,
            "endpoint": self.endpoint,
            "arguments": self.arguments,
            "references": self.references,
            "seconds": self.seconds,
            "cost_usd": self.cost_usd,  # a Decimal: storyc.jsontext writes it exactly
            "key": self.key,
        }
        if graph:
            data["depends_on"] = [e.to_json() for e in self.depends_on]
        if not self.price_certain:  # absent: the price list's own price
            data["price_certain"] = False
            data["price_note"] = VIDEO_INPUT_CAVEAT
        return data

    def arguments_with(
        self, url_of: Callable[[LocalFile], str], output_of: Callable[[Edge], str] | None = None
    ) -> dict[str, Any]:
        """The arguments with each local asset replaced, e.g. by its uploaded URL, and each upstream
        placeholder by `output_of(edge)` (the URL of that still's candidate or that frame)."""
        return _replace_inputs(self.arguments, self.files, self.depends_on, url_of, output_of)


def _replace_inputs(
    arguments: dict[str, Any],
    files: dict[str, LocalFile],
    depends_on: tuple[Edge, ...],
    url_of: Callable[[LocalFile], str],
    output_of: Callable[[Edge], str] | None,
) -> dict[str, Any]:
    edges = {e.placeholder: e for e in depends_on} if output_of is not None else {}

    def replace(value: str) -> str:
        if value in files:
            return url_of(files[value])
        if output_of is not None and value in edges:
            return output_of(edges[value])
        return value

    replaced: dict[str, Any] = map_assets(arguments, replace)
    return replaced


@dataclass(frozen=True)
class StillJob:
    """One still's request: `variants` candidates in one request to an image endpoint."""

    still: str
    endpoint: str
    arguments: dict[str, Any]
    references: dict[str, str]  # how the prompt names each input image ("image 1") -> reference name
    segments: tuple[Segment, ...]  # the compiled prompt with references by name, for people
    variants: int
    pick: int
    resolution: str
    cost_usd: Decimal
    key: str
    price_notes: tuple[str, ...] = ()  # why `cost_usd` is only an estimate
    files: dict[str, LocalFile] = field(default_factory=dict)
    depends_on: tuple[Edge, ...] = ()

    @property
    def price_certain(self) -> bool:
        return not self.price_notes

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "still": self.still,
            "endpoint": self.endpoint,
            "arguments": self.arguments,
            "references": self.references,
            "variants": self.variants,
            "pick": self.pick,
            "resolution": self.resolution,
            "cost_usd": float(self.cost_usd),
            "key": self.key,
            "depends_on": [e.to_json() for e in self.depends_on],
        }
        if self.price_notes:
            data["price_certain"] = False
            data["price_note"] = "; ".join(self.price_notes)
        return data

    def arguments_with(
        self, url_of: Callable[[LocalFile], str], output_of: Callable[[Edge], str] | None = None
    ) -> dict[str, Any]:
        """As `Job.arguments_with`."""
        return _replace_inputs(self.arguments, self.files, self.depends_on, url_of, output_of)


@dataclass(frozen=True)
class CompiledBoard:
    storyboard: str  # as given on the command line
    path: Path  # absolute
    title: str
    jobs: tuple[Job, ...]
    template_files: tuple[str, ...] = ()  # absolute paths of template files read
    asset_files: tuple[str, ...] = ()  # every local asset checked, as written
    profile: str | None = None  # the profile compiled (None: the board declares none)
    profiles: tuple[str, ...] = ()  # every profile the board declares, in order
    default_profile: str | None = None  # the one used without --profile
    stills: tuple[StillJob, ...] = ()  # in the order declared

    @property
    def has_graph(self) -> bool:
        """Whether any step takes another's output (or the board has stills): the compiled form says so."""
        return bool(self.stills) or any(j.depends_on for j in self.jobs)

    @property
    def is_default_profile(self) -> bool:
        """Compiled as the board's default profile: its keys are what the lock's `scenes:` records."""
        return self.profile == self.default_profile

    def to_json(self, scenes: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if scenes is None else set(scenes)  # a set: boards have thousands of scenes
        head: dict[str, Any] = {"storyboard": self.storyboard}
        if self.profile is not None:  # a board without profiles compiles to the form it always had
            head["profile"] = self.profile
        jobs = [j for j in self.jobs if wanted is None or j.scene in wanted]
        if not self.has_graph:  # a board without stills or frames compiles to the form it always had
            return {**head, "jobs": [j.to_json() for j in jobs]}
        from storyc.compile.graph import upstream_stills

        stills = self.stills if wanted is None else upstream_stills(self, jobs)
        totals = {
            "scenes_usd": float(sum((j.cost_usd for j in jobs), Decimal("0.00"))),
            "stills_usd": float(sum((s.cost_usd for s in stills), Decimal("0.00"))),
        }
        return {
            **head,
            "stills": [s.to_json() for s in stills],
            "jobs": [j.to_json(graph=True) for j in jobs],
            "totals": totals,
        }

    @property
    def total_seconds(self) -> int:
        return sum(j.seconds for j in self.jobs)

    @property
    def total_cost(self) -> Decimal:
        return sum((j.cost_usd for j in self.jobs), Decimal("0.00"))

    @property
    def total_uncertain(self) -> Decimal:
        """How much of `total_cost` is an estimate (scenes with a video input)."""
        return sum((j.uncertain_usd for j in self.jobs), Decimal("0.00"))

    @property
    def stills_cost(self) -> Decimal:
        """What the stills cost, apart from `total_cost` (the scenes' video)."""
        return sum((s.cost_usd for s in self.stills), Decimal("0.00"))

    def still(self, name: str) -> StillJob | None:
        return next((s for s in self.stills if s.still == name), None)

    def job(self, scene: str) -> Job | None:
        return next((j for j in self.jobs if j.scene == scene), None)


@dataclass(frozen=True)
class CompileResult:
    board: CompiledBoard | None  # None when there are errors
    diagnostics: list[Diagnostic]
    profiles: tuple[str, ...] = ()  # the profiles the board declares (known also when it has errors)

    @property
    def ok(self) -> bool:
        return self.board is not None


def map_assets(value: Any, fn: Callable[[str], str], in_asset: bool = False) -> Any:
    if isinstance(value, dict):
        # Text and numbers are most of a request: handled here, without a call each (a 1,000-scene
        # board maps every request twice: for its key and for its files).
        return {
            k: (fn(v) if k in ASSET_FIELDS else v)
            if isinstance(v, str)
            else map_assets(v, fn, k in ASSET_FIELDS)
            if isinstance(v, (dict, list))
            else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [map_assets(v, fn, in_asset) for v in value]
    if in_asset and isinstance(value, str):
        return fn(value)
    return value


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_key(
    endpoint: str, arguments: dict[str, Any], files: dict[str, LocalFile], depends_on: tuple[Edge, ...] = ()
) -> str:
    """The request's key: local assets by their bytes' hash, upstream steps by their keys (Merkle)."""
    upstream = {e.placeholder: e.hashed for e in depends_on}
    hashed = map_assets(arguments, lambda v: files[v].sha256 if v in files else upstream.get(v, v))
    digest = hashlib.sha256(canonical_json({"endpoint": endpoint, "arguments": hashed}))
    return "sha256:" + digest.hexdigest()


class JobBuilder:
    def __init__(self, board: Storyboard, assets: Assets, diags: Diagnostics) -> None:
        self.board = board
        self.doc = board.doc
        self.assets = assets
        self.diags = diags
        self._asset_failed = False
        self._scene_ids = frozenset(s.id for s in board.scenes)
        self._edges: dict[str, Edge] = {}  # the scene's upstream outputs, by placeholder

    def build(self, resolved: ResolvedScene, endpoint: Endpoint) -> Job | None:
        scene = resolved.rendered.scene
        errors_before = self.diags.error_count
        self._asset_failed = False
        self._edges = {}
        self._check_lengths(resolved, endpoint)
        arguments = self._arguments(resolved)
        if self._asset_failed or self.diags.error_count > errors_before:
            return None  # each problem is reported where it is; no request is built
        if not self._check_endpoint_schema(resolved, endpoint, arguments):
            return None
        files = {v: self.assets.files[v] for v in _asset_values(arguments) if v in self.assets.files}
        seconds = scene.seconds
        return Job(
            scene=scene.id,
            endpoint=endpoint.id,
            arguments=arguments,
            references=resolved.references,
            seconds=seconds,
            cost_usd=endpoint.cost(seconds, audio=arguments.get("generate_audio") is True),
            key=content_key(endpoint.id, arguments, files),
            files=files,
            view=self._view(resolved),
            depends_on=tuple(self._edges.values()),
        )

    def _check_lengths(self, resolved: ResolvedScene, endpoint: Endpoint) -> None:
        scene = resolved.rendered.scene
        limit = endpoint.limits
        if resolved.prompt is not None:
            origin = resolved.rendered.prompt.origin if resolved.rendered.prompt else scene.path
            self._check_length(scene.id, "the prompt", resolved.prompt.text, limit.max_prompt_chars, origin)
        for i, (text, rendered) in enumerate(zip(resolved.shots, resolved.rendered.shots, strict=True)):
            self._check_length(
                scene.id, f"shot {i + 1}'s prompt", text.text, limit.max_shot_prompt_chars, rendered.origin
            )

    def _check_length(self, sid: str, what: str, text: str, limit: int, origin: tuple[Any, ...]) -> None:
        loc = self.doc.loc(origin)
        if not text.strip():
            self.diags.error(PROMPT_LENGTH, loc, f"scene '{sid}': {what} is empty after templates")
        elif len(text) > limit:
            self.diags.error(
                PROMPT_LENGTH,
                loc,
                f"scene '{sid}': {what} is {len(text):,} characters after templates; the API accepts at most {limit:,}",
            )

    def _arguments(self, resolved: ResolvedScene) -> dict[str, Any]:
        scene = resolved.rendered.scene
        args: dict[str, Any] = {}
        if resolved.prompt is not None:
            args["prompt"] = resolved.prompt.text
        else:
            args["multi_prompt"] = [
                {"prompt": text.text, "duration": str(shot.duration)}
                for text, shot in zip(resolved.shots, scene.shots, strict=True)
            ]
            args["shot_type"] = scene.shot_type
        if resolved.elements:
            args["elements"] = [self._element(c) for c in resolved.elements]
        if resolved.images:
            args["image_urls"] = [self._asset(s.image, "image") for s in resolved.images]
        args["duration"] = str(scene.seconds)
        args["aspect_ratio"] = scene.aspect_ratio
        args["generate_audio"] = scene.generate_audio
        if scene.start_frame:
            args["start_image_url"] = self._asset(scene.start_frame, "image")
        if scene.end_frame:
            args["end_image_url"] = self._asset(scene.end_frame, "image")
        return args

    def _asset(self, ref: ImageRef, media: MediaKind) -> str | None:
        if isinstance(ref, Upstream):
            return self._upstream(ref)
        value = self.assets.check(ref, media)
        self._asset_failed |= value is None
        return value

    def _upstream(self, slot: Upstream) -> str | None:
        """The placeholder of another step's output (an unknown name is reported at the slot)."""
        if slot.name not in (self.board.stills if slot.kind == "still" else self._scene_ids):
            self._asset_failed = True
            return None
        edge = edge_of(slot, self.board)
        self._edges.setdefault(edge.placeholder, edge)
        return edge.placeholder

    def _element(self, character: Character) -> dict[str, Any]:
        element: dict[str, Any]
        if character.video is not None:
            element = {"video_url": self._asset(character.video, "video")}
        else:
            assert character.frontal is not None
            element = {
                "frontal_image_url": self._asset(character.frontal, "image"),
                "reference_image_urls": [self._asset(r, "image") for r in character.references],
            }
        if character.voice:
            element["voice_id"] = character.voice
        return element

    def _check_endpoint_schema(self, resolved: ResolvedScene, endpoint: Endpoint, arguments: dict[str, Any]) -> bool:
        scene = resolved.rendered.scene
        errors = endpoint.input_errors(arguments)
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "request"
            schema = f"{endpoint.id}'s" if scene.profile is None else "its endpoint's"  # the same words in each profile
            self.diags.error(
                REQUEST_SCHEMA,
                self.doc.loc((*scene.path, "id")),
                f"scene '{scene.id}': the request fails {schema} input schema at {where}: {error.message}",
                profile=scene.profile,
            )
        return not errors

    def _view(self, resolved: ResolvedScene) -> SceneView:
        """What people see of a scene (animatic cards, storyboard sheet, diff) and where its fields are."""
        scene = resolved.rendered.scene
        texts: list[tuple[int, ResolvedText]]
        if resolved.prompt is not None:
            texts = [(scene.seconds, resolved.prompt)]
        else:
            texts = [(s.duration, t) for s, t in zip(scene.shots, resolved.shots, strict=True)]
        refs: dict[str, RefView] = {}
        named: tuple[Character | Style, ...] = (*resolved.elements, *resolved.images)
        for ref in named:
            refs[ref.name] = RefView(kind=ref.kind, asset=self._shown(ref.slots[0]), description=ref.description)
        return SceneView(
            aspect_ratio=scene.aspect_ratio,
            shots=tuple(ShotView(seconds, text.segments) for seconds, text in texts),
            refs=refs,
            start_frame=self._shown(scene.start_frame) if scene.start_frame else None,
            end_frame=self._shown(scene.end_frame) if scene.end_frame else None,
            locations=self._locations(resolved),
        )

    def _shown(self, slot: ImageRef) -> str:
        """How people see an image slot: a file normalized, a URL as written, an upstream's placeholder."""
        if isinstance(slot, Upstream):
            return edge_of(slot, self.board).placeholder
        return _normal(slot.value)

    def _locations(self, resolved: ResolvedScene) -> dict[str, tuple[int, int]]:
        """Where each request field comes from in the YAML, so fal's errors can point at a line."""
        scene = resolved.rendered.scene
        at: dict[str, tuple[int, int]] = {"scene": self._at((*scene.path, "id"))}
        if resolved.rendered.prompt is not None:
            at["prompt"] = self._at(resolved.rendered.prompt.origin)
        for i, shot in enumerate(resolved.rendered.shots):
            at[f"multi_prompt.{i}"] = self._at(shot.origin)
        for name in (*REQUEST_SETTINGS, "shots"):
            if name in scene.raw:
                at["multi_prompt" if name == "shots" else name] = self._at((*scene.path, name))
        for name, field_name in (("start_frame", "start_image_url"), ("end_frame", "end_image_url")):
            if name in scene.raw:
                at[field_name] = self._at((*scene.path, name))
        return at

    def _at(self, path: tuple[Any, ...]) -> tuple[int, int]:
        loc = self.doc.loc(path)
        return (loc.line, loc.col)


def _normal(value: str) -> str:
    from storyc.compile.assets import normalize

    return value if is_url(value) else normalize(value)


def _asset_values(arguments: dict[str, Any]) -> list[str]:
    found: list[str] = []
    map_assets(arguments, lambda v: found.append(v) or v)  # type: ignore[func-returns-value]
    return found
