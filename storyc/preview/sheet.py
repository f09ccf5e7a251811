"""The storyboard sheet: one self-contained static HTML page to review a board.

Title, total duration and cost; per scene its shots (duration, prompt with
references as named chips and thumbnails), its render state, and the rendered
video (fal's when done, else the animatic) playable inline.  A board with
profiles shows each scene's videos side by side instead, in lanes: its
animatic, then its render in each profile (draft, final...), each labelled with
its state, price and tier.  Thumbnails are embedded as data: URIs and the CSS
is inline, so the page works from file:// with no server and no network;
videos are linked relatively (they are large).

A board with stills shows them first, as the storyboard's frames: each with
its prompt (references as chips), its price, and every candidate side by
side (`renders/stills/<still>-<key12>-<n>.png` when there, else a card with
its price), the pick outlined; a scene's start or end frame taken from a
still shows the picked candidate, one taken from another scene says which
frame.  On the page `storyc sheet --serve` serves, candidates are buttons
that write the pick into the board (`storyc.preview.live`); from disk they
are plain images.  A board without stills gives the page it always did.
"""

from __future__ import annotations

import base64
import io
import os
import urllib.parse
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from storyc.compile.compiler import VIDEO_INPUT_CAVEAT, CompiledBoard, Edge, Job, StillJob
from storyc.compile.endpoints import tier_name
from storyc.compile.model import is_url
from storyc.compile.view import RefView, ShotView
from storyc.lock.lockfile import Lock, still_path
from storyc.render.inventory import SceneStatus, scene_status

if TYPE_CHECKING:
    from PIL import Image

K = TypeVar("K", bound=Hashable)

THUMB_PX = 160  # reference and frame thumbnails, at most this many pixels a side
POSTER_PX = 480  # a video's first frame, shown before it plays
CANDIDATE_PX = 320  # a still's candidate, shown as a storyboard frame


@dataclass(frozen=True)
class SceneVideo:
    path: Path  # absolute
    source: str  # "fal" or "animatic"


def find_videos(board: CompiledBoard, statuses: Sequence[SceneStatus]) -> dict[str, SceneVideo]:
    """Each scene's video to show: the fal render when done, else its animatic if one exists."""
    from storyc.render.backends.animatic import AnimaticBackend

    board_dir = board.path.parent
    animatic = AnimaticBackend(board_dir, board.title)
    by_scene = {s.scene: s for s in statuses}
    found: dict[str, SceneVideo] = {}
    for job in board.jobs:
        status = by_scene.get(job.scene)
        if status is not None and status.status == "done" and status.path:
            found[job.scene] = SceneVideo(board_dir / status.path, "fal")
            continue
        path = board_dir / animatic.output_path(job)
        if path.is_file():
            found[job.scene] = SceneVideo(path, "animatic")
    return found


# --- lanes: a board with profiles shows each scene's animatic and every profile's render side by side ----

ANIMATIC = "animatic"
LaneState = Literal[
    "done", "missing", "altered", "submitted", "unknown", "failed", "lost", "stale", "new", "outdated", "invalid"
]
# States in which `storyc render` would pay for the scene again in that profile: the lane says how much.
TO_PAY = frozenset({"new", "stale", "failed", "lost"})


@dataclass(frozen=True)
class Lane:
    """One of a scene's videos side by side: its animatic, or its render in one profile."""

    name: str  # "animatic" or the profile's name
    kind: Literal["animatic", "profile"]  # a profile may be named "animatic" too
    job: Job | None  # the scene's request in this lane's profile; None when the profile does not compile
    state: LaneState
    detail: str
    video: Path | None = None  # absolute; only a file that is there (and, for fal's, the one rendered)


@dataclass(frozen=True)
class ProfileLanes:
    """What the sheet shows of a board with profiles."""

    boards: dict[str, CompiledBoard | None]  # every declared profile, in order; None: it does not compile
    scenes: dict[str, list[Lane]]  # each scene's lanes: its animatic, then one per profile


def find_lanes(shown: CompiledBoard, boards: Mapping[str, CompiledBoard | None], lock: Lock) -> ProfileLanes:
    """Each scene of `shown` (the profile whose text the sheet shows) in every lane, in `boards`' order."""
    board_dir = shown.path.parent
    jobs = {name: {j.scene: j for j in b.jobs} if b else None for name, b in boards.items()}
    current = current_keys(boards)
    states = {name: _states(board_dir, b, lock, current) for name, b in boards.items() if b}
    # The shown profile's animatic first; else another profile's (a free preview of the same scene).
    animatics = [_Animatics.of(b) for b in [shown, *(b for b in boards.values() if b and b is not shown)]]
    scenes = {}
    for job in shown.jobs:
        animatic = _animatic_lane(job, animatics)
        profiles = [_profile_lane(name, jobs[name], states.get(name, {}), job.scene) for name in boards]
        scenes[job.scene] = [animatic, *profiles]
    return ProfileLanes(dict(boards), scenes)


def current_keys(boards: Mapping[str, CompiledBoard | None]) -> set[str]:
    """Every profile's request keys: a render under one of them is no earlier version of another profile's."""
    return {job.key for board in boards.values() if board for job in board.jobs}


def _states(
    board_dir: Path, board: CompiledBoard, lock: Lock, current: set[str]
) -> dict[str, tuple[SceneStatus, Path | None]]:
    """Each scene's render state in `board`'s profile, with its video when done (as `storyc status` says)."""
    found = {}
    for status in scene_status(board_dir, board.jobs, lock, current):
        video = board_dir / status.path if status.status == "done" and status.path else None
        found[status.scene] = (status, video)
    return found


@dataclass(frozen=True)
class _Animatics:
    """Where each scene's animatic is in one profile: its key follows the request, so each profile has its own."""

    profile: str | None
    files: dict[str, tuple[Job, Path]]  # by scene: the request and its animatic's file (there or not)

    @classmethod
    def of(cls, board: CompiledBoard) -> _Animatics:
        from storyc.render.backends.animatic import AnimaticBackend

        board_dir = board.path.parent
        animatic = AnimaticBackend(board_dir, board.title)
        return cls(board.profile, {job.scene: (job, board_dir / animatic.output_path(job)) for job in board.jobs})


def _animatic_lane(job: Job, animatics: Sequence[_Animatics]) -> Lane:
    """The scene's animatic in the first of `animatics` (profiles in order of preference) that has one."""
    for profile in animatics:
        found = profile.files.get(job.scene)
        if found is not None and found[1].is_file():
            profile_job, path = found
            return Lane(ANIMATIC, "animatic", profile_job, "done", f"animatic of profile '{profile.profile}'", path)
    detail = "free: `storyc render --backend animatic` draws it"
    return Lane(ANIMATIC, "animatic", job, "new", detail)


def _profile_lane(
    name: str, jobs: dict[str, Job] | None, states: dict[str, tuple[SceneStatus, Path | None]], scene: str
) -> Lane:
    job = jobs.get(scene) if jobs is not None else None
    found = states.get(scene)
    if job is None or found is None:  # only a profile that does not compile lacks a scene
        return Lane(name, "profile", None, "invalid", f"does not compile: `storyc check --profile {name}` says why")
    status, video = found
    return Lane(name, "profile", job, status.status, status.detail, video)


# --- the page ----------------------------------------------------------------------------------------


def render_sheet(
    board: CompiledBoard,
    statuses: Sequence[SceneStatus],
    videos: dict[str, SceneVideo],
    out: Path,
    lanes: ProfileLanes | None = None,
    *,
    pickable: bool = False,
) -> str:
    """The page's HTML; video links are relative to where `out` will be written.

    With `lanes` (a board with profiles) each scene shows its lanes instead of its one video.
    `pickable` (the page `storyc sheet --serve` serves, whose script can write a pick into the
    board): a still's candidates are buttons that pick it.
    """
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)  # user text is escaped
    thumbs = _Thumbnails(board.path.parent, board.stills)
    by_scene = {s.scene: s for s in statuses}
    posters = _posters({scene: video.path for scene, video in videos.items()})
    lane_views = _lane_views(lanes, board.profile, out.parent) if lanes else {}
    kinds = _reference_kinds(board) if board.stills else {}
    scenes = [
        {
            **_scene_view(job, by_scene.get(job.scene), videos.get(job.scene), thumbs, out.parent),
            "screen": _screen(posters.get(job.scene), job.view.aspect_ratio),
            "lanes": lane_views.get(job.scene, []),
        }
        for job in board.jobs
    ]
    template = (Path(__file__).parent / "sheet.html").read_text("utf-8")
    return env.from_string(template).render(
        title=board.title or board.storyboard,
        storyboard=board.storyboard,
        seconds=board.total_seconds,
        **_cost_view(board.total_cost, board.total_uncertain),
        shown=board.profile,
        totals=[_total_view(name, b, board.profile) for name, b in lanes.boards.items()] if lanes else [],
        scenes=scenes,
        stills=[_still_view(still, kinds, thumbs) for still in board.stills],
        stills_cost=f"{board.stills_cost:.2f}",
        pickable=pickable and bool(board.stills),
    )


def _cost_view(cost: Decimal, uncertain: Decimal) -> dict[str, Any]:
    """A total price and how much of it is an estimate (video input)."""
    return {
        "cost": f"{cost:.2f}",
        "uncertain": f"{uncertain:.2f}" if uncertain else None,
        "all_uncertain": uncertain >= cost,
    }


def _total_view(name: str, board: CompiledBoard | None, shown: str | None) -> dict[str, Any]:
    """A profile's price for the whole board, for the page's header."""
    priced = _cost_view(board.total_cost, board.total_uncertain) if board else {}
    return {"name": name, "shown": name == shown, "compiles": board is not None, **priced}


def _lane_views(lanes: ProfileLanes, shown: str | None, html_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every scene's lanes as the template shows them, with each video's poster (made in one batch)."""
    videos = {(scene, i): lane.video for scene, row in lanes.scenes.items() for i, lane in enumerate(row) if lane.video}
    posters = _posters(videos)
    return {
        scene: [_lane_view(lane, shown, html_dir, posters.get((scene, i))) for i, lane in enumerate(row)]
        for scene, row in lanes.scenes.items()
    }


def _lane_view(lane: Lane, shown: str | None, html_dir: Path, poster: Poster | None) -> dict[str, Any]:
    job = lane.job
    src = video_src(lane.video, html_dir) if lane.video else None
    view: dict[str, Any] = {
        "name": lane.name,
        "kind": lane.kind,
        "shown": lane.kind == "profile" and lane.name == shown,
        "state": lane.state,
        "detail": lane.detail,
        "video": src,
        "video_label": urllib.parse.unquote(src) if src else None,  # as people read paths
        "screen": _screen(poster, job.view.aspect_ratio if job else None),
        "cost": None,  # the animatic is free; a profile that does not compile has no price
        "price_caveat": None,
        "to_pay": False,
        "tier": None,
        "endpoint": None,
    }
    if lane.kind == "profile" and job is not None:
        view |= {
            "cost": f"{job.cost_usd:.2f}",
            "price_caveat": None if job.price_certain else VIDEO_INPUT_CAVEAT,
            "to_pay": lane.state in TO_PAY,
            "tier": tier_name(job.endpoint),
            "endpoint": job.endpoint,
        }
    return view


def _screen(poster: Poster | None, aspect_ratio: str | None) -> dict[str, Any]:
    """The box a video plays in: its first frame as the poster, and the video's shape (else the request's
    aspect ratio, "9:16"), so a vertical video is not squeezed into a landscape box."""
    if poster is not None:
        return {"poster": poster.uri, "width": poster.width, "height": poster.height}
    width, _, height = (aspect_ratio or "16:9").partition(":")
    return {"poster": None, "width": int(width), "height": int(height)}


def _scene_view(
    job: Job, status: SceneStatus | None, video: SceneVideo | None, thumbs: _Thumbnails, html_dir: Path
) -> dict[str, Any]:
    view = job.view
    refs = view.refs
    shots = [_shot_view(number, shot, refs, thumbs) for number, shot in enumerate(view.shots, 1)]
    mentioned = {ref["name"] for shot in shots for ref in shot["refs"]}
    src = video_src(video.path, html_dir) if video else None
    return {
        "id": job.scene,
        "seconds": job.seconds,
        "cost": f"{job.cost_usd:.2f}",
        "price_caveat": None if job.price_certain else VIDEO_INPUT_CAVEAT,
        "aspect": view.aspect_ratio,
        "state": status.status if status else "new",
        "state_detail": status.detail if status else "never rendered",
        "shots": shots,
        "extra_refs": [_ref_view(name, refs[name], thumbs) for name in refs if name not in mentioned],
        **_frame_view("start", job, view.start_frame, thumbs),
        **_frame_view("end", job, view.end_frame, thumbs),
        "video": src,
        "video_label": urllib.parse.unquote(src) if src else None,  # as people read paths
        "video_source": video.source if video else None,
    }


def _frame_view(which: str, job: Job, slot: str | None, thumbs: _Thumbnails) -> dict[str, Any]:
    """A scene's start or end frame: a file's thumbnail (`start_frame`), or one another step makes
    (`start_from`: a still's pick, a frame of another scene), said what it is, with its image if made."""
    edge = next((e for e in job.depends_on if e.placeholder == slot), None)
    if edge is None:
        return {f"{which}_frame": thumbs.data_uri(slot), f"{which}_from": None}
    return {f"{which}_frame": None, f"{which}_from": {"label": _edge_words(edge), "image": thumbs.data_uri(slot)}}


# --- stills: the storyboard's frames, every candidate side by side -------------------------------------


def _reference_kinds(board: CompiledBoard) -> dict[str, str]:
    """Each reference's kind (character, style): a still's chips take its colour, as a scene's do.

    The scenes know the references they use; one only a still names is read from the board itself
    (parsed again, without its assets: only when a still names such a reference).
    """
    kinds: dict[str, str] = {name: ref.kind for job in board.jobs for name, ref in job.view.refs.items()}
    if all(name in kinds for still in board.stills for name in still.references.values()):
        return kinds
    from storyc.compile.source import load
    from storyc.compile.validate import validate
    from storyc.diagnostics import Diagnostics

    diags = Diagnostics(board.storyboard)
    doc = load(board.path, diags)
    model = validate(doc, diags, board.profile) if doc is not None else None
    if model is not None:
        kinds |= dict.fromkeys(model.characters, "character") | dict.fromkeys(model.styles, "style")
    return kinds


def _still_view(still: StillJob, kinds: Mapping[str, str], thumbs: _Thumbnails) -> dict[str, Any]:
    each = still.cost_usd / still.variants
    candidates = [_candidate_view(still, n, thumbs) for n in range(1, still.variants + 1)]
    return {
        "name": still.still,
        "cost": f"{still.cost_usd:.2f}",
        "each": f"{each:.2f}",
        "price_notes": list(still.price_notes),
        "resolution": still.resolution,
        "aspect": still.arguments.get("aspect_ratio"),
        "endpoint": still.endpoint,
        "variants": still.variants,
        "pick": still.pick,
        "segments": [
            {"text": text, "ref": name, "kind": kinds.get(name, "reference") if name else None}
            for text, name in still.segments
        ],
        "uses": [_edge_words(e) for e in still.depends_on],
        "candidates": candidates,
    }


def _candidate_view(still: StillJob, number: int, thumbs: _Thumbnails) -> dict[str, Any]:
    path = still_path(still.still, still.key, number)
    image = thumbs.candidate(still, number)
    return {
        "number": number,
        "picked": number == still.pick,
        "image": image,
        "path": path,
        "unreadable": image is None and (thumbs.board_dir / path).is_file(),  # there, but not an image we can read
    }


def _edge_words(edge: Edge) -> str:
    if edge.kind == "still":
        return f"still {edge.name}, candidate {edge.pick}"
    return f"{edge.kind.split('_')[0]} frame of {edge.name}"


def _shot_view(number: int, shot: ShotView, refs: Mapping[str, RefView], thumbs: _Thumbnails) -> dict[str, Any]:
    names = [name for name in shot.names if name in refs]
    return {
        "number": number,
        "seconds": shot.seconds,
        "segments": [_segment_view(text, refs.get(name) if name else None, name) for text, name in shot.segments],
        "refs": [_ref_view(name, refs[name], thumbs) for name in names],
    }


def _segment_view(text: str, ref: RefView | None, name: str | None) -> dict[str, Any]:
    return {"text": text, "ref": name if ref else None, "kind": ref.kind if ref else None}


def _ref_view(name: str, ref: RefView, thumbs: _Thumbnails) -> dict[str, Any]:
    asset = ref.asset
    upstream = _upstream_words(asset)
    return {
        "name": name,
        "kind": ref.kind,
        "asset": asset,
        "remote": is_url(asset) and upstream is None,
        "upstream": upstream,
        "thumb": thumbs.data_uri(asset),
    }


def _upstream_words(asset: str) -> str | None:
    """'still ellie-sheet, candidate 1' for a still's placeholder (`still://ellie-sheet/1`), else None."""
    slot = _still_slot(asset)
    return _edge_words(Edge("still", *slot)) if slot else None


def _still_slot(asset: str) -> tuple[str, int] | None:
    """(still, pick) of a still's placeholder in a request (`still://NAME/PICK`, `storyc.compile.compiler.Edge`)."""
    name, _, pick = asset.removeprefix("still://").rpartition("/")
    return (name, int(pick)) if asset.startswith("still://") and pick.isdigit() else None


def video_src(video: Path, html_dir: Path) -> str:
    """The video's address relative to the HTML file's folder, percent-encoded (a `#` or space in a folder name)."""
    try:
        relative = os.path.relpath(video.absolute(), html_dir.absolute())
    except ValueError:  # another drive (Windows): no relative path exists
        return video.absolute().as_uri()
    return urllib.parse.quote(Path(relative).as_posix())


@dataclass(frozen=True)
class Poster:
    """A video's first frame, shown before it plays, and the video's size: its box on the page takes that shape."""

    uri: str  # a JPEG data URI, at most POSTER_PX a side
    width: int
    height: int


def _posters(videos: Mapping[K, Path]) -> dict[K, Poster | None]:
    """Each video's first frame as a poster, a few ffmpeg processes at a time (about 0.1 s each)."""
    from concurrent.futures import ThreadPoolExecutor

    if not videos:
        return {}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1, len(videos))) as pool:
        made = pool.map(_poster, videos.values())
        return dict(zip(videos, made, strict=True))


def _poster(video: Path) -> Poster | None:
    from storyc.media.animatic import first_frame_image

    image = first_frame_image(video, POSTER_PX) if video.is_file() else None
    if image is None:
        return None
    width, height = image.size
    return Poster(_jpeg_uri(image, POSTER_PX), width, height)


class _Thumbnails:
    """Small JPEG data URIs of local images (a video's first frame), each made once.

    A still's placeholder (`still://NAME/PICK`) stands for that candidate's image when it is on disk.
    """

    def __init__(self, board_dir: Path, stills: Sequence[StillJob] = ()) -> None:
        self.board_dir = board_dir
        self._stills = {s.still: s for s in stills}
        self._made: dict[tuple[str, int], str | None] = {}

    def data_uri(self, asset: str | None) -> str | None:
        if not asset:
            return None
        if asset.startswith(("still://", "frame://")):  # another step's output: its image if it is made
            slot = _still_slot(asset)
            still = self._stills.get(slot[0]) if slot else None
            return self.candidate(still, slot[1]) if still is not None and slot else None
        return None if is_url(asset) else self._image(asset, THUMB_PX)

    def candidate(self, still: StillJob, number: int) -> str | None:
        return self._image(still_path(still.still, still.key, number), CANDIDATE_PX)

    def _image(self, relative: str, px: int) -> str | None:
        if (relative, px) not in self._made:
            self._made[relative, px] = _data_uri(self.board_dir / relative, px)
        return self._made[relative, px]


def _data_uri(path: Path, px: int) -> str | None:
    """A JPEG data URI of an image (or a representative frame of a video) at most `px` a side; None if unreadable."""
    from storyc.media.animatic import thumbnail

    image = thumbnail(path) if path.is_file() else None
    if image is None:
        return None
    return _jpeg_uri(image.convert("RGB"), px)  # a copy: the cached thumbnail is shared


def _jpeg_uri(image: Image.Image, px: int) -> str:
    """`image` (which this shrinks in place) as a JPEG data URI at most `px` a side."""
    image.thumbnail((px, px))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
