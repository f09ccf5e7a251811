"""`storyc sheet`: one self-contained HTML page to review the board."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, every_profile, read_lock
from storyc.diagnostics import StorycError
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, Job
    from storyc.lock.lockfile import Lock


def sheet(board: Path, *, out: Output, output: Path | None = None, profile: str | None = None) -> int:
    from storyc.fsutil import atomic_write_bytes, in_words

    loaded = compiled_jobs(board, (), out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    target = output or board.with_suffix(".html")
    html = _page(compiled, jobs, read_lock(board), target, out)
    try:
        atomic_write_bytes(target, html.encode("utf-8"))
    except OSError as exc:
        raise StorycError(f"cannot write {target}: {in_words(exc)}") from exc
    if out.json:
        head = {} if compiled.profile is None else {"profile": compiled.profile, "profiles": list(compiled.profiles)}
        out.data({"output": str(target), "scenes": len(jobs), **head})
    else:
        out.echo(f"{target}: {plural(len(jobs), 'scene')}; open it in a browser")
    return EXIT_OK


def _page(compiled: CompiledBoard, jobs: list[Job], lock: Lock, target: Path, out: Output) -> str:
    """The sheet's HTML: one video per scene, or for a board with profiles each scene's lanes side by side."""
    from storyc.preview.sheet import current_keys, find_lanes, find_videos, render_sheet
    from storyc.render.inventory import scene_status

    if not compiled.profiles:
        statuses = scene_status(compiled.path.parent, jobs, lock)
        return render_sheet(compiled, statuses, find_videos(compiled, statuses), target)
    boards = every_profile(compiled, out)
    statuses = scene_status(compiled.path.parent, jobs, lock, current_keys(boards))
    return render_sheet(compiled, statuses, {}, target, find_lanes(compiled, boards, lock))
