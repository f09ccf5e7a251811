"""`storyc sheet`: one self-contained HTML page to review the board."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, read_lock
from storyc.diagnostics import StorycError
from storyc.report import Output, plural


def sheet(board: Path, *, out: Output, output: Path | None = None, profile: str | None = None) -> int:
    from storyc.fsutil import atomic_write_bytes
    from storyc.inventory import scene_status
    from storyc.sheet import find_videos, render_sheet

    loaded = compiled_jobs(board, (), out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    target = output or board.with_suffix(".html")
    statuses = scene_status(compiled.path.parent, jobs, read_lock(board))
    html = render_sheet(compiled, statuses, find_videos(compiled, statuses), target)
    try:
        atomic_write_bytes(target, html.encode("utf-8"))
    except OSError as exc:
        raise StorycError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if out.json:
        out.data({"output": str(target), "scenes": len(jobs)})
    else:
        out.echo(f"{target}: {plural(len(jobs), 'scene')}; open it in a browser")
    return EXIT_OK
