"""The final cut: every scene's render joined in storyboard order, and an OpenTimelineIO timeline.

The cut uses one backend's renders: fal's (the lock's `done` videos) or the
animatics.  It refuses, listing them, when a scene has no render yet, rather
than cutting a film with a hole in it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyc.compile.compiler import CompiledBoard, Job
from storyc.diagnostics import StorycError


class CutError(StorycError):
    """The cut can't be made (scenes without renders); the message lists what is missing."""


@dataclass(frozen=True)
class Clip:
    job: Job
    path: Path  # absolute
    seconds: float  # as probed from the file


def rendered_files(board: CompiledBoard, backend: str) -> list[tuple[Job, Path | None]]:
    """Each scene with its rendered file for `backend`, or None when it has none (on disk)."""
    board_dir = board.path.parent
    if backend == "animatic":
        from storyc.render.backends.animatic import AnimaticBackend

        animatic = AnimaticBackend(board_dir, board.title)
        return [(job, _existing(board_dir / animatic.output_path(job))) for job in board.jobs]
    from storyc.lock.lockfile import lock_path, read

    lock = read(lock_path(board.path))
    found: list[tuple[Job, Path | None]] = []
    for job in board.jobs:
        render = lock.done(job.key)
        path = render.video.path if render is not None and render.video is not None else None
        found.append((job, _existing(board_dir / path) if path else None))
    return found


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _what_to_run(board: CompiledBoard, backend: str) -> str:
    """The command that makes the missing renders; after a free preview, also the cut that works today."""
    if backend == "animatic":
        return "`storyc render --backend animatic` first"
    named = f" --profile {board.profile}" if board.profile is not None and not board.is_default_profile else ""
    hint = f"`storyc render{named}` (or `storyc pull{named}`) first"
    if all(path is not None for _, path in rendered_files(board, "animatic")):
        hint += f", or cut the animatics: `storyc cut{named} --backend animatic`"
    return hint


def clips(board: CompiledBoard, backend: str) -> list[Clip]:
    """The clips of the cut, probed; CutError naming every scene without a render."""
    from storyc.media.video import probe

    found = rendered_files(board, backend)
    missing = [job.scene for job, path in found if path is None]
    if missing:
        count = f"{len(missing)} of {len(found)} scenes"
        run = _what_to_run(board, backend)
        raise CutError(f"{count} have no {backend} render yet: {', '.join(missing)}; run {run}")
    return [Clip(job, path, probe(path).seconds) for job, path in found if path is not None]


def cut(board: CompiledBoard, backend: str, out: Path) -> tuple[list[Clip], str]:
    """Join the scenes into `out`; returns the clips and "copy" or "reencode"."""
    from storyc.media.video import join

    parts = clips(board, backend)
    mode = join([c.path for c in parts], out)
    return parts, mode


def write_otio(board: CompiledBoard, parts: Sequence[Clip], out: Path, fps: float = 24.0) -> None:
    """An OpenTimelineIO timeline: one clip per scene, named by its id, with its prompt as metadata.

    Media are URLs relative to `out`'s folder (OpenTimelineIO's convention: a posix path, no scheme), so
    the timeline still finds them when the folder is moved or copied to an editor's machine.
    """
    import opentimelineio as otio

    from storyc.fsutil import atomic_write_bytes

    timeline = otio.schema.Timeline(name=board.title or board.storyboard)
    track = otio.schema.Track(name="storyc", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for part in parts:
        duration = otio.opentime.RationalTime(round(part.seconds * fps), fps)
        available = otio.opentime.TimeRange(otio.opentime.RationalTime(0, fps), duration)
        reference = otio.schema.ExternalReference(target_url=_media_url(part.path, out), available_range=available)
        clip = otio.schema.Clip(name=part.job.scene, media_reference=reference, source_range=available)
        clip.metadata["storyc"] = _clip_metadata(part.job)
        track.append(clip)
    timeline.metadata["storyc"] = {"storyboard": board.storyboard}
    atomic_write_bytes(out, otio.adapters.write_to_string(timeline, "otio_json").encode("utf-8"))


def _media_url(media: Path, timeline: Path) -> str:
    """`media` relative to the timeline's folder, as OpenTimelineIO writes relative paths (its own
    url_utils.url_from_filepath, as its otiod bundles do); an absolute file:// URL only when no relative
    path exists (another drive on Windows)."""
    from opentimelineio.url_utils import url_from_filepath

    try:
        relative = os.path.relpath(media.resolve(), timeline.resolve().parent)
    except ValueError:
        return media.resolve().as_uri()
    return str(url_from_filepath(Path(relative).as_posix()))


def _clip_metadata(job: Job) -> dict[str, Any]:
    args = job.arguments
    prompt = args.get("prompt") or "\n".join(s["prompt"] for s in args.get("multi_prompt", []))
    return {
        "scene": job.scene,
        "key": job.key,
        "seconds": job.seconds,
        "prompt": prompt,
        "references": {position: f"@{name}" for position, name in job.references.items()},
    }
