"""`storyc lock merge` (git's merge driver for lock files) and `storyc lock repair` (conflict markers)."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK
from storyc.report import Output, plural


def merge(base: Path, ours: Path, theirs: Path, name: str | None, *, out: Output) -> int:
    from storyc.lock.merge import merge_driver

    merge_driver(base, ours, theirs, name=name)  # LockError -> exit 1: git then reports a conflict
    return EXIT_OK


def repair(board: Path, *, out: Output) -> int:
    from storyc.lock.lockfile import lock_path
    from storyc.lock.merge import repair as repair_lock

    report = repair_lock(lock_path(board))
    if out.json:
        out.data({"lock": str(report.path), "repaired": report.repaired, "summary": report.summary()})
    else:
        out.echo(report.summary())
    return EXIT_OK


def sync(board: Path, *, out: Output) -> int:
    """Record the board's current scene keys (its default profile's) in the lock: renders, pays and drops nothing."""
    from storyc.commands import EXIT_PROBLEMS
    from storyc.commands._board import compiled_jobs
    from storyc.lock.lockfile import lock_path, open_store

    loaded = compiled_jobs(board, [], out)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    scenes = {job.scene: job.key for job in jobs}
    with open_store(board) as store:
        changed = store.lock.scenes != scenes
        store.set_scenes(scenes)
    if out.json:
        out.data({"lock": str(lock_path(board)), "scenes": scenes, "changed": changed})
    else:
        what = "recorded" if changed else "already recorded"
        out.echo(f"{lock_path(board)}: {what} the keys of {plural(len(scenes), 'scene')} of {compiled.storyboard}")
    return EXIT_OK


def adopt(
    board: Path,
    scene: str,
    request_id: str,
    *,
    out: Output,
    profile: str | None = None,
    use_store: bool = True,
) -> int:
    """Record a request fal shows on its dashboard as the scene's submit, to be resumed, not re-sent."""
    from storyc.commands import EXIT_PROBLEMS
    from storyc.commands._board import compiled_jobs
    from storyc.lock.lockfile import open_store
    from storyc.render.backends.fal import FalService
    from storyc.render.ledger import adopt as adopt_request
    from storyc.team.layer import open_team

    loaded = compiled_jobs(board, [scene], out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, (job,) = loaded
    team = open_team(compiled.path, use_store=use_store)
    service = FalService()
    try:
        with open_store(board) as store:
            status = adopt_request(store, service, team, job, request_id)
    finally:
        service.close()
    if out.json:
        out.data({"scene": job.scene, "key": job.key, "request_id": request_id, "state": "submitted", "fal": status})
    else:
        out.echo(
            f"{job.scene}: request {request_id} ({status} on fal) recorded as submitted; "
            "`storyc render` picks it up at no new cost"
        )
    return EXIT_OK
