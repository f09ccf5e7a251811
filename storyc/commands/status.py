"""`storyc status`: each scene's (and still's) render, locally and in the lock; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, read_lock
from storyc.report import Output


def status(
    board: Path,
    scenes: Sequence[str],
    *,
    out: Output,
    backend: str = "fal",
    size: str = "preview",
    profile: str | None = None,
) -> int:
    from storyc.render.inventory import animatic_status, scene_status

    loaded = compiled_jobs(board, scenes, out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    from storyc.render.plan import with_upstreams

    steps = with_upstreams(compiled, jobs).steps  # a graph board: its stills too, upstreams first
    if backend == "animatic":
        statuses = animatic_status(compiled, steps, size)
    else:
        statuses = scene_status(compiled.path.parent, steps, read_lock(board))
    out.statuses(statuses)
    return EXIT_OK if all(s.status == "done" for s in statuses) else EXIT_PROBLEMS
