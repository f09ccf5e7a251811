"""The animatic backend: each scene as cards held for its shots' durations, rendered locally for free.

Animatics never enter the lock file.  They are cached by their own key (the
request's key plus what the cards draw that the request does not hold: the
scene's id and the board's title; and the backend, card size and card layout
version) under `.storyc/animatic/`, and linked to
`renders/animatic/<scene>-<key12>.mp4`.  A renamed scene is redrawn (free, a
few seconds); an unchanged board is not.

A board's graph runs here too, for $0 and offline: a still is drawn as
`variants` candidate cards (its prompt and reference thumbnails), cached as
`.storyc/animatic/<key>-<n>.png` and placed as
`renders/animatic/stills/<name>-<key12>-<n>.png`; an image slot taking a still
shows its picked card, and one taking a frame of another scene shows that
frame of the scene's animatic (`storyc.media.video.stored_frame`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeGuard, get_args

from storyc.compile.compiler import Edge, Job, StillJob
from storyc.compile.graph import Step, StepId, step_id, step_label, upstream_of
from storyc.compile.model import is_url
from storyc.fsutil import atomic_path, contained, why_not_written
from storyc.lock.lockfile import still_path, video_path
from storyc.render.plan import Plan, PlanItem, Steps, with_waiting
from storyc.render.run import RunContext, SceneResult, SceneState

if TYPE_CHECKING:
    from storyc.media.animatic import AnimaticScene, AspectRatio, CardSize

CARD_VERSION = "2"  # bump when cards change, so cached animatics are redrawn (2: labelled frames, captions)
SIZES = ("preview", "4k")
CACHE_FOLDER = ".storyc/animatic"  # encoded here, by key
PLACED_FOLDER = "renders/animatic"  # linked here, by scene
FRAMES_FOLDER = ".storyc/frames"  # frames taken from animatics, by the video's sha256


class AnimaticBackend:
    name = "animatic"
    paid = False

    def __init__(self, board_dir: Path, title: str, size: str = "preview", fps: int = 24) -> None:
        self.board_dir = board_dir
        self.title = title
        self.size = size
        self.fps = fps
        self.cache = board_dir / CACHE_FOLDER
        self._steps: dict[StepId, Step] = {}  # the plan's steps, for the outputs their downstreams show

    def key(self, job: Step) -> str:
        # The id and title are drawn on every card but are not part of the request (job.key): without them
        # a renamed scene would keep showing its old id.
        name = job.still if isinstance(job, StillJob) else job.scene
        parts: tuple[str, ...] = (job.key, name, self.title, self.name, self.size, str(self.fps), CARD_VERSION)
        if isinstance(job, StillJob):
            parts = (*parts, "still")  # a still's cards are not a scene's video, even of the same name
        return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def output_path(self, job: Job) -> str:
        """Where the scene's animatic is written, relative to the board."""
        return video_path(job.scene, self.key(job), PLACED_FOLDER)

    def cached_file(self, job: Job) -> Path:
        return self.cache / f"{self.key(job).removeprefix('sha256:')}.mp4"

    def card_paths(self, still: StillJob) -> tuple[str, ...]:
        """Where a still's candidate cards are placed, relative to the board."""
        return tuple(still_path(still.still, self.key(still), n, PLACED_FOLDER) for n in range(1, still.variants + 1))

    def cached_cards(self, still: StillJob) -> tuple[Path, ...]:
        hex_key = self.key(still).removeprefix("sha256:")
        return tuple(self.cache / f"{hex_key}-{n}.png" for n in range(1, still.variants + 1))

    def is_cached(self, job: Step) -> bool:
        if isinstance(job, StillJob):
            return all(card.is_file() for card in self.cached_cards(job))
        return self.cached_file(job).is_file()

    def plan(self, storyboard: str, steps: Steps) -> Plan:
        self._steps = {step_id(s): s for s in steps.steps}
        items = []
        for job in steps.steps:
            if self.is_cached(job):
                items.append(PlanItem(job, "cached", "animatic up to date"))
            else:
                items.append(PlanItem(job, "render", "new or changed (free, local)"))
        return Plan(storyboard, self.name, tuple(with_waiting(items, steps.needed_by)))

    def prepare(self, plan: Plan) -> None:
        """No key, no network: only where the files go, inside the board's folder (else `OutsideTheBoard`)."""
        for folder in (CACHE_FOLDER, PLACED_FOLDER, FRAMES_FOLDER):
            contained(self.board_dir, folder)

    def run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        job = item.job
        if isinstance(job, StillJob):
            return self._run_still(item, job, ctx)
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

    def _run_still(self, item: PlanItem, still: StillJob, ctx: RunContext) -> SceneResult:
        """A still as `variants` candidate cards: its prompt and reference thumbnails."""
        label = step_label(still)
        try:
            if not self.is_cached(still):
                ctx.progress.update(label, "drawing")
                self._draw_cards(still)
            ctx.check()
            for cached, placed in zip(self.cached_cards(still), self.card_paths(still), strict=True):
                _place(cached, self.board_dir / placed)
        except OSError as exc:  # a full disk, a read-only .storyc/: this still fails, with the path
            return self._failed(still, ctx, exc)
        state: SceneState = "cached" if item.action == "cached" else "done"
        images = self.card_paths(still)
        ctx.progress.update(label, state, ", ".join(images))
        return SceneResult(label, still.key, state, images=images)

    def _draw_cards(self, still: StillJob) -> None:
        from storyc.media.animatic import AnimaticScene, CardRef, CardShot, draw_card

        refs = tuple(
            CardRef(name, self._kind(name), self._local(asset, still))
            for asset, name in zip(still.arguments.get("image_urls", []), still.references.values(), strict=False)
        )
        shots = tuple(CardShot(n, 1, still.segments, refs) for n in range(1, still.variants + 1))
        scene = AnimaticScene(still.still, self.title, _card_shape(still), shots, candidates=True)
        for shot, cached in zip(shots, self.cached_cards(still), strict=True):
            with atomic_path(cached) as tmp:
                draw_card(scene, shot, _card_size(self.size)).save(tmp, "PNG")

    def _kind(self, name: str) -> Literal["character", "style"]:
        """Whether a reference a still names is a character or a style, as the scenes that use it say."""
        for step in self._steps.values():
            if isinstance(step, Job) and name in step.view.refs:
                return step.view.refs[name].kind
        return "character"

    def _failed(self, job: Step, ctx: RunContext, exc: OSError) -> SceneResult:
        error = f"could not write the animatic ({why_not_written(exc)})"
        ctx.progress.update(step_label(job), "failed", error)
        return SceneResult(step_label(job), job.key, "failed", error=error)

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
            shot_refs = tuple(CardRef(n, refs[n].kind, self._local(refs[n].asset, job)) for n in named)
            shots.append(CardShot(number, shot.seconds, shot.segments, shot_refs))
        aspect_ratio = view.aspect_ratio
        if not _is_aspect_ratio(aspect_ratio):
            raise ValueError(f"scene {job.scene!r}: an animatic can't be drawn at aspect ratio {aspect_ratio!r}")
        return AnimaticScene(
            scene_id=job.scene,
            title=self.title,
            aspect_ratio=aspect_ratio,
            shots=tuple(shots),
            start_frame=self._local(view.start_frame, job),
            end_frame=self._local(view.end_frame, job),
        )

    def _local(self, asset: str | None, step: Step) -> Path | None:
        """The local file an image slot shows: a board's asset, or an upstream step's animatic output."""
        edge = next((e for e in step.depends_on if e.placeholder == asset), None)
        if edge is not None:  # before is_url: a placeholder (still://, frame://) looks like one
            return self._output(edge)
        if not asset or is_url(asset):
            return None
        return self.board_dir / asset

    def _output(self, edge: Edge) -> Path | None:
        """An upstream's output in the animatic: the picked candidate card, or a frame of the scene's animatic."""
        from storyc.media.video import FramePosition, VideoError, stored_frame

        upstream = self._steps.get(upstream_of(edge))
        if isinstance(upstream, StillJob):
            cards = self.cached_cards(upstream)
            pick = edge.pick or 1
            return cards[pick - 1] if pick <= len(cards) and cards[pick - 1].is_file() else None
        if not isinstance(upstream, Job) or not self.cached_file(upstream).is_file():
            return None  # not drawn: the card shows the slot empty
        position: FramePosition = "last" if edge.kind == "last_frame_of" else "first"
        try:
            return stored_frame(self.cached_file(upstream), position, self.board_dir / FRAMES_FOLDER)
        except (VideoError, OSError):
            return None


def _card_shape(still: StillJob) -> AspectRatio:
    """The card shape nearest the still's aspect ratio (cards come in three shapes; `auto` is wide)."""
    ratio = str(still.arguments.get("aspect_ratio", "16:9"))
    if _is_aspect_ratio(ratio):
        return ratio
    width, _, height = ratio.partition(":")
    if not (width.isdigit() and height.isdigit()) or int(width) == int(height):
        return "16:9" if ratio == "auto" else "1:1"
    return "16:9" if int(width) > int(height) else "9:16"


def _card_size(size: str) -> CardSize:
    if not _is_card_size(size):
        raise ValueError(f"unknown animatic frame size {size!r}")
    return size


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
