"""The animatic backend: each scene as cards held for its shots' durations, rendered locally for free.

Animatics never enter the lock file.  They are cached by their own key (the
request's key plus what the cards draw that the request does not hold: the
scene's id and the board's title; and the backend, card size and card layout
version) under `.storyc/animatic/`, and linked to
`renders/animatic/<scene>-<key12>.mp4`.  A renamed scene is redrawn (free, a
few seconds); an unchanged board is not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, get_args

from storyc.compile.compiler import Job
from storyc.compile.model import is_url
from storyc.fsutil import atomic_path, contained, why_not_written
from storyc.lock.lockfile import video_path
from storyc.render.plan import Plan, PlanItem
from storyc.render.run import RunContext, SceneResult, SceneState

if TYPE_CHECKING:
    from storyc.media.animatic import AnimaticScene, AspectRatio, CardSize

CARD_VERSION = "2"  # bump when cards change, so cached animatics are redrawn (2: labelled frames, captions)
SIZES = ("preview", "4k")
CACHE_FOLDER = ".storyc/animatic"  # encoded here, by key
PLACED_FOLDER = "renders/animatic"  # linked here, by scene


class AnimaticBackend:
    name = "animatic"
    paid = False

    def __init__(self, board_dir: Path, title: str, size: str = "preview", fps: int = 24) -> None:
        self.board_dir = board_dir
        self.title = title
        self.size = size
        self.fps = fps
        self.cache = board_dir / CACHE_FOLDER

    def key(self, job: Job) -> str:
        # The id and title are drawn on every card but are not part of the request (job.key): without them
        # a renamed scene would keep showing its old id.
        parts = (job.key, job.scene, self.title, self.name, self.size, str(self.fps), CARD_VERSION)
        return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def output_path(self, job: Job) -> str:
        """Where the scene's animatic is written, relative to the board."""
        return video_path(job.scene, self.key(job), PLACED_FOLDER)

    def cached_file(self, job: Job) -> Path:
        return self.cache / f"{self.key(job).removeprefix('sha256:')}.mp4"

    def is_cached(self, job: Job) -> bool:
        return self.cached_file(job).is_file()

    def plan(self, storyboard: str, jobs: Sequence[Job]) -> Plan:
        items = []
        for job in jobs:
            if self.cached_file(job).is_file():
                items.append(PlanItem(job, "cached", "animatic up to date"))
            else:
                items.append(PlanItem(job, "render", "new or changed (free, local)"))
        return Plan(storyboard, self.name, tuple(items))

    def prepare(self, plan: Plan) -> None:
        """No key, no network: only where the files go, inside the board's folder (else `OutsideTheBoard`)."""
        for folder in (CACHE_FOLDER, PLACED_FOLDER):
            contained(self.board_dir, folder)

    def run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        job = item.job
        cached = self.cached_file(job)
        if not cached.is_file():
            ctx.progress.update(job.scene, "drawing")
            from storyc.media.animatic import render_scene
            from storyc.media.video import VideoError

            size = self.size
            if not _is_card_size(size):
                raise ValueError(f"unknown animatic frame size {size!r}")
            try:
                render_scene(self.scene(job), cached, size=size, fps=self.fps)
            except VideoError as exc:
                ctx.check()  # Ctrl-C reaches ffmpeg too: then its failure is the interruption, not an error
                ctx.progress.update(job.scene, "failed", str(exc))
                return SceneResult(job.scene, job.key, "failed", error=str(exc))
            except OSError as exc:  # a full disk, a read-only .storyc/: this scene fails, with the path
                return self._failed(job, ctx, exc)
        ctx.check()
        relative = self.output_path(job)
        try:
            _place(cached, self.board_dir / relative)
        except OSError as exc:
            return self._failed(job, ctx, exc)
        state: SceneState = "cached" if item.action == "cached" else "done"
        ctx.progress.update(job.scene, state, relative)
        return SceneResult(job.scene, job.key, state, path=relative)

    def _failed(self, job: Job, ctx: RunContext, exc: OSError) -> SceneResult:
        error = f"could not write the animatic ({why_not_written(exc)})"
        ctx.progress.update(job.scene, "failed", error)
        return SceneResult(job.scene, job.key, "failed", error=error)

    def finish(self, results: Sequence[SceneResult], interrupted: bool) -> None:
        """Nothing is left open."""

    def scene(self, job: Job) -> AnimaticScene:
        """The scene's cards: its shots with their text, and the references each shot mentions."""
        from storyc.media.animatic import AnimaticScene, CardRef, CardShot

        view = job.view
        refs = view.refs
        shots = []
        for number, shot in enumerate(view.shots, 1):
            named = [n for n in shot.names if n in refs]
            shot_refs = tuple(CardRef(n, refs[n].kind, self._local(refs[n].asset)) for n in named)
            shots.append(CardShot(number, shot.seconds, shot.segments, shot_refs))
        aspect_ratio = view.aspect_ratio
        if not _is_aspect_ratio(aspect_ratio):
            raise ValueError(f"scene {job.scene!r}: an animatic can't be drawn at aspect ratio {aspect_ratio!r}")
        return AnimaticScene(
            scene_id=job.scene,
            title=self.title,
            aspect_ratio=aspect_ratio,
            shots=tuple(shots),
            start_frame=self._local(view.start_frame),
            end_frame=self._local(view.end_frame),
        )

    def _local(self, asset: str | None) -> Path | None:
        if not asset or is_url(asset):
            return None
        return self.board_dir / asset


def _is_card_size(value: str) -> TypeGuard[CardSize]:
    from storyc.media.animatic import CardSize

    return value in get_args(CardSize)


def _is_aspect_ratio(value: str) -> TypeGuard[AspectRatio]:
    from storyc.media.animatic import AspectRatio

    return value in get_args(AspectRatio)


def _place(source: Path, target: Path) -> None:
    """Put a cached animatic at its output path (a hard link when possible), atomically."""
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, tmp)
