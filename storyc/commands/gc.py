"""`storyc gc`: forget renders no current scene uses (their files stay unless asked)."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs
from storyc.report import Output, plural


def gc(
    board: Path, *, out: Output, dry_run: bool = False, delete_videos: bool = False, animatics: bool = False
) -> int:
    from storyc.inventory import gc as collect
    from storyc.inventory import stale_animatics, unused_renders
    from storyc.lock import open_store

    loaded = compiled_jobs(board, (), out)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    with open_store(board) as store:
        dropped = (
            unused_renders(jobs, store.lock)
            if dry_run
            else collect(jobs, store, compiled.path.parent, delete_videos=delete_videos)
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
                "dropped": [
                    {
                        "key": d.key,
                        "scene": d.render.scene,
                        "state": d.render.state,
                        "cost_usd": float(d.render.cost_usd),
                        "path": d.render.video.path if d.render.video else None,
                    }
                    for d in dropped
                ],
                "animatics": [str(p) for p in old_animatics],
            }
        )
        return EXIT_OK
    for d in dropped:
        video = d.render.video.path if d.render.video and d.render.video.path else "no local file"
        out.echo(f"  {d.render.scene:<12} {d.render.state:<9} ${d.render.cost_usd}  {d.key[:19]}  {video}")
    verb = "would drop" if dry_run else "dropped"
    out.echo(f"{verb} {plural(len(dropped), 'render')} no scene uses")
    if animatics:
        for path in old_animatics:
            out.echo(f"  {path.relative_to(compiled.path.parent)}")
        out.echo(f"{'would delete' if dry_run else 'deleted'} {plural(freed, 'old animatic file')}")
    return EXIT_OK
