"""`storyc gc`: forget renders no current scene uses, in any profile (their files stay unless asked)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compile_profiles, compiled_jobs
from storyc.compile.compiler import money
from storyc.diagnostics import StorycError
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard
    from storyc.compile.graph import Step


def gc(
    board: Path,
    *,
    out: Output,
    dry_run: bool = False,
    delete_videos: bool = False,
    animatics: bool = False,
    profiles: Sequence[str] = (),
) -> int:
    from storyc.lock.lockfile import open_store
    from storyc.render.inventory import gc as collect
    from storyc.render.inventory import stale_animatics, unused_renders

    loaded = compiled_jobs(board, (), out, profile=profiles[0] if profiles else None)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, _ = loaded
    kept = _kept_profiles(compiled, profiles)
    jobs: list[Step] = []  # what any kept profile uses: its stills and its scenes
    for each in kept:
        jobs += [*each.stills, *each.jobs]
    default = next((each for each in kept if each.is_default_profile), None)
    scenes = None if default is None else {job.scene: job.key for job in default.jobs}
    with open_store(board) as store:
        dropped = (
            unused_renders(jobs, store.lock)
            if dry_run
            else collect(jobs, store, compiled.path.parent, delete_videos=delete_videos, scenes=scenes)
        )
    old_animatics = stale_animatics(compiled, jobs) if animatics else []
    if not dry_run:
        for path in old_animatics:
            path.unlink(missing_ok=True)
    freed = len(old_animatics)
    if out.json:
        out.data(
            {
                "dry_run": dry_run,
                "profiles": [each.profile for each in kept if each.profile is not None],
                "dropped": [
                    {
                        "key": d.key,
                        **({"still": d.render.still} if d.render.still is not None else {"scene": d.render.scene}),
                        "state": d.render.state,
                        "endpoint": d.render.endpoint,
                        "cost_usd": d.render.cost_usd,
                        "path": d.render.video.path if d.render.video else None,
                        **({"images": [i.path for i in d.render.images]} if d.render.images else {}),
                    }
                    for d in dropped
                ],
                "animatics": [str(p) for p in old_animatics],
            }
        )
        return EXIT_OK
    for d in dropped:
        files = [f.path for f in (d.render.video, *d.render.images) if f is not None and f.path]
        shown = ", ".join(files) or "no local file"
        out.echo(f"  {d.render.name:<12} {d.render.state:<9} {money(d.render.cost_usd)}  {d.key[:19]}  {shown}")
    verb = "would drop" if dry_run else "dropped"
    kept_names = [each.profile for each in kept if each.profile is not None]
    scope = f" in profile {', '.join(kept_names)}" if profiles else ""
    out.echo(f"{verb} {plural(len(dropped), 'render')} no scene uses{scope}")
    if animatics:
        for path in old_animatics:
            out.echo(f"  {path.relative_to(compiled.path.parent)}")
        out.echo(f"{'would delete' if dry_run else 'deleted'} {plural(freed, 'old animatic file')}")
    return EXIT_OK


def _kept_profiles(compiled: CompiledBoard, asked: Sequence[str]) -> list[CompiledBoard]:
    """The profiles whose current renders gc keeps: those asked for, else every one the board declares.

    Every one must compile: a profile left out would have its renders (paid for) dropped.
    """
    boards = compile_profiles(compiled, asked or compiled.profiles)
    for name, board in boards.items():
        if board is None:
            raise StorycError(
                f"profile '{name}' does not compile, so gc can't tell which of its renders are current; "
                f"fix it (`storyc check --profile {name}`) or keep only other profiles with --profile"
            )
    return [board for board in boards.values() if board is not None] or [compiled]
