"""`storyc plan`: what `render` would do and cost, scene by scene; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, read_lock
from storyc.report import Output


def plan(board: Path, scenes: Sequence[str], *, out: Output, backend: str = "fal", size: str = "preview") -> int:
    loaded = compiled_jobs(board, scenes, out)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    if backend == "animatic":
        from storyc.session import animatic_session

        the_plan = animatic_session(compiled, jobs, size).plan
    else:
        from storyc.plan import plan_with_lock

        the_plan = plan_with_lock(compiled.storyboard, jobs, read_lock(board))
    if out.json:
        out.data(the_plan.to_json())
    else:
        out.plan(the_plan, err=False)
    return EXIT_OK
