"""`storyc lock merge` (git's merge driver for lock files) and `storyc lock repair` (conflict markers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK
from storyc.commands._board import UsageError
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, StillJob


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


def _still(compiled: CompiledBoard, name: str) -> StillJob:
    """The board's still `name`; a usage error (with a did-you-mean) when it has none of that name."""
    from storyc.diagnostics import did_you_mean

    known = {s.still: s for s in compiled.stills}
    if name not in known:
        names = ", ".join(known) or "none"
        suggestion = did_you_mean(name, list(known))
        raise UsageError(f"--still: no still '{name}' in {compiled.storyboard}{suggestion}; stills: {names}")
    return known[name]


def adopt(
    board: Path,
    scene: str | None,
    request_id: str,
    *,
    out: Output,
    profile: str | None = None,
    use_store: bool = True,
    still: str | None = None,
) -> int:
    """Record a request fal shows on its dashboard as a scene's (or a still's) submit, to be resumed, not re-sent."""
    from storyc.commands import EXIT_PROBLEMS
    from storyc.commands._board import compiled_jobs
    from storyc.compile.graph import Step, step_label
    from storyc.lock.lockfile import open_store
    from storyc.render.backends.fal import FalService
    from storyc.render.ledger import adopt as adopt_request
    from storyc.team.layer import open_team

    if (scene is None) == (still is None):
        raise UsageError("name the step whose submit got no answer: --scene ID or --still NAME (one of them)")
    loaded = compiled_jobs(board, [scene] if scene is not None else [], out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    job: Step = jobs[0] if scene is not None else _still(compiled, still or "")
    team = open_team(compiled.path, use_store=use_store)
    service = FalService()
    try:
        with open_store(board) as store:
            status = adopt_request(store, service, team, job, request_id)
    finally:
        service.close()
    if out.json:
        name = {"scene": scene} if scene is not None else {"still": still}
        out.data({**name, "key": job.key, "request_id": request_id, "state": "submitted", "fal": status})
    else:
        out.echo(
            f"{step_label(job)}: request {request_id} ({status} on fal) recorded as submitted; "
            "`storyc render` picks it up at no new cost"
        )
    return EXIT_OK
