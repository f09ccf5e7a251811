"""The storyboard sheet: one self-contained static HTML page to review a board.

Title, total duration and cost; per scene its shots (duration, prompt with
references as named chips and thumbnails), its render state, and the rendered
video (fal's when done, else the animatic) playable inline.  Thumbnails are
embedded as data: URIs and the CSS is inline, so the page works from file://
with no server and no network; videos are linked relatively (they are large).
"""

from __future__ import annotations

import base64
import io
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyc.compiler import VIDEO_INPUT_CAVEAT, CompiledBoard, Job
from storyc.inventory import SceneStatus
from storyc.model import is_url
from storyc.view import RefView, ShotView

THUMB_PX = 160  # reference and frame thumbnails, at most this many pixels a side
POSTER_PX = 480  # a video's first frame, shown before it plays


@dataclass(frozen=True)
class SceneVideo:
    path: Path  # absolute
    source: str  # "fal" or "animatic"


def find_videos(board: CompiledBoard, statuses: Sequence[SceneStatus]) -> dict[str, SceneVideo]:
    """Each scene's video to show: the fal render when done, else its animatic if one exists."""
    from storyc.backends.animatic import AnimaticBackend

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


def render_sheet(
    board: CompiledBoard, statuses: Sequence[SceneStatus], videos: dict[str, SceneVideo], out: Path
) -> str:
    """The page's HTML; video links are relative to where `out` will be written."""
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)  # user text is escaped
    thumbs = _Thumbnails(board.path.parent)
    by_scene = {s.scene: s for s in statuses}
    posters = _posters(videos)
    scenes = [
        {
            **_scene_view(job, by_scene.get(job.scene), videos.get(job.scene), thumbs, out.parent),
            "poster": posters.get(job.scene),
        }
        for job in board.jobs
    ]
    template = (Path(__file__).parent / "sheet.html").read_text("utf-8")
    return env.from_string(template).render(
        title=board.title or board.storyboard,
        storyboard=board.storyboard,
        seconds=board.total_seconds,
        cost=f"{board.total_cost:.2f}",
        uncertain=f"{board.total_uncertain:.2f}" if board.total_uncertain else None,
        all_uncertain=board.total_uncertain >= board.total_cost,
        scenes=scenes,
    )


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
        "start_frame": thumbs.data_uri(view.start_frame),
        "end_frame": thumbs.data_uri(view.end_frame),
        "video": src,
        "video_label": urllib.parse.unquote(src) if src else None,  # as people read paths
        "video_source": video.source if video else None,
    }


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
    return {
        "name": name,
        "kind": ref.kind,
        "asset": asset,
        "remote": is_url(asset),
        "thumb": thumbs.data_uri(asset),
    }


def video_src(video: Path, html_dir: Path) -> str:
    """The video's address relative to the HTML file's folder, percent-encoded (a `#` or space in a folder name)."""
    try:
        relative = os.path.relpath(video.absolute(), html_dir.absolute())
    except ValueError:  # another drive (Windows): no relative path exists
        return video.absolute().as_uri()
    return urllib.parse.quote(Path(relative).as_posix())


def _posters(videos: dict[str, SceneVideo]) -> dict[str, str | None]:
    """Each video's first frame as a data URI, a few ffmpeg processes at a time (about 0.1 s each)."""
    from concurrent.futures import ThreadPoolExecutor

    if not videos:
        return {}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1, len(videos))) as pool:
        made = pool.map(lambda v: _data_uri(v.path, POSTER_PX), videos.values())
        return dict(zip(videos, made, strict=True))


class _Thumbnails:
    """Small JPEG data URIs of local images (a video's first frame), each made once."""

    def __init__(self, board_dir: Path) -> None:
        self.board_dir = board_dir
        self._made: dict[str, str | None] = {}

    def data_uri(self, asset: str | None) -> str | None:
        if not asset or is_url(asset):
            return None
        if asset not in self._made:
            self._made[asset] = _data_uri(self.board_dir / asset, THUMB_PX)
        return self._made[asset]


def _data_uri(path: Path, px: int) -> str | None:
    """A JPEG data URI of an image (or a video's first frame) at most `px` a side; None if unreadable."""
    from storyc.animatic import thumbnail

    image = thumbnail(path) if path.is_file() else None
    if image is None:
        return None
    image = image.convert("RGB")  # a copy: the cached thumbnail is shared
    image.thumbnail((px, px))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
