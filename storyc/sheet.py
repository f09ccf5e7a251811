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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyc.compiler import CompiledBoard, Job
from storyc.inventory import SceneStatus

THUMB_PX = 160


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
    scenes = [
        _scene_view(job, by_scene.get(job.scene), videos.get(job.scene), thumbs, out.parent) for job in board.jobs
    ]
    template = (Path(__file__).parent / "sheet.html").read_text("utf-8")
    return env.from_string(template).render(
        title=board.title or board.storyboard,
        storyboard=board.storyboard,
        seconds=board.total_seconds,
        cost=f"{board.total_cost:.2f}",
        scenes=scenes,
    )


def _scene_view(
    job: Job, status: SceneStatus | None, video: SceneVideo | None, thumbs: _Thumbnails, html_dir: Path
) -> dict[str, Any]:
    view = job.view
    refs = view.get("refs", {})
    shots = []
    for number, shot in enumerate(view.get("shots", []), 1):
        names = list(dict.fromkeys(name for _, name in shot["segments"] if name and name in refs))
        shots.append(
            {
                "number": number,
                "seconds": shot["seconds"],
                "segments": [
                    {"text": text, "ref": name, "kind": refs.get(name, {}).get("kind")}
                    for text, name in shot["segments"]
                ],
                "refs": [
                    {"name": n, "kind": refs[n]["kind"], "thumb": thumbs.data_uri(refs[n]["asset"])} for n in names
                ],
            }
        )
    return {
        "id": job.scene,
        "seconds": job.seconds,
        "cost": f"{job.cost_usd:.2f}",
        "aspect": view.get("aspect_ratio", "16:9"),
        "state": status.status if status else "new",
        "state_detail": status.detail if status else "",
        "shots": shots,
        "start_frame": thumbs.data_uri(view.get("start_frame")),
        "end_frame": thumbs.data_uri(view.get("end_frame")),
        "video": Path(os.path.relpath(video.path, html_dir)).as_posix() if video else None,
        "video_source": video.source if video else None,
    }


class _Thumbnails:
    """Small JPEG data URIs of local images (a video's first frame), each made once."""

    def __init__(self, board_dir: Path) -> None:
        self.board_dir = board_dir
        self._made: dict[str, str | None] = {}

    def data_uri(self, asset: str | None) -> str | None:
        if not asset or "://" in asset:
            return None
        if asset not in self._made:
            self._made[asset] = self._make(self.board_dir / asset)
        return self._made[asset]

    @staticmethod
    def _make(path: Path) -> str | None:
        from storyc.animatic import thumbnail

        image = thumbnail(path) if path.is_file() else None
        if image is None:
            return None
        image = image.convert("RGB")
        image.thumbnail((THUMB_PX, THUMB_PX))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
