"""`storyc sheet`: one self-contained HTML page to review the board."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, every_profile, read_lock
from storyc.diagnostics import StorycError
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, Job
    from storyc.lock.lockfile import Lock
    from storyc.preview.live import LiveState


def sheet(
    board: Path,
    *,
    out: Output,
    output: Path | None = None,
    profile: str | None = None,
    watch: bool = False,
    serve: bool = False,
    port: int = 0,
) -> int:
    if watch or serve:
        return _live(board, out, output, profile, serve, port)
    loaded = compiled_jobs(board, (), out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    target = output or board.with_suffix(".html")
    html = _page(compiled, jobs, read_lock(board), target, out)
    _write(target, html)
    if out.json:
        head = {} if compiled.profile is None else {"profile": compiled.profile, "profiles": list(compiled.profiles)}
        out.data({"output": str(target), "scenes": len(jobs), **head})
    else:
        out.echo(f"{target}: {plural(len(jobs), 'scene')}; open it in a browser")
    return EXIT_OK


def _write(target: Path, html: str) -> None:
    from storyc.fsutil import atomic_write_bytes, in_words

    try:
        atomic_write_bytes(target, html.encode("utf-8"))
    except OSError as exc:
        raise StorycError(f"cannot write {target}: {in_words(exc)}") from exc


def _live(board: Path, out: Output, output: Path | None, profile: str | None, serve: bool, port: int) -> int:
    """Write the sheet, then again at every save of the board, its templates or its assets, until Ctrl-C."""
    from watchfiles import watch

    from storyc.preview import live

    target = output or board.with_suffix(".html")
    state = live.LiveState()
    folder = board.resolve().parent
    server = live.serve(target.resolve().parent, state, partial(_pick, board, out), port) if serve else None
    if server is not None:
        out.echo(f"serving {target.name} at {live.url_of(server, target)} (Ctrl-C stops)", err=True)
    try:
        _rewrite(board, target, profile, state, out, pickable=serve)
        ignored = {target, live.side_file(target)}
        for _changes in watch(folder, watch_filter=live.watched(folder, ignored), debounce=200, step=50):
            _rewrite(board, target, profile, state, out, pickable=serve)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return EXIT_OK


def _rewrite(board: Path, target: Path, profile: str | None, state: LiveState, out: Output, *, pickable: bool) -> None:
    """One pass: a board that does not compile keeps the last page (its problems are printed).

    `pickable`: the page is served, so a click on a still's candidate can write the pick into the board.
    """
    from storyc.preview import live

    loaded = compiled_jobs(board, (), out, profile=profile)
    if loaded is None:
        return
    compiled, jobs = loaded
    html = _page(compiled, jobs, read_lock(board), target, out, pickable=pickable)
    version = live.version_of(html)
    if version == state.version:
        return  # a save that changed nothing on the page (a comment, a file it does not show)
    _write(target, live.with_reload(html, target, state.token, version))
    live.write_side_file(target, version)
    state.version = version
    out.echo(f"{target}: {plural(len(jobs), 'scene')}, written {time.strftime('%H:%M:%S')}", err=True)


def _pick(board: Path, out: Output, still: str, number: int) -> str:
    """A reviewer picked a still's candidate on the served sheet: `pick:` is written into the board."""
    from storyc.compile.edit import set_scalar

    loaded = compiled_jobs(board, (), out)
    known = {s.still: s for s in loaded[0].stills} if loaded is not None else {}
    if still not in known:
        raise ValueError(f"no still '{still}' in {board}")
    if not 1 <= number <= known[still].variants:
        raise ValueError(f"still '{still}' has {known[still].variants} candidates; pick 1 to {known[still].variants}")
    try:
        changed = set_scalar(board, ("stills", still, "pick"), number)
    except StorycError as exc:
        raise ValueError(str(exc)) from exc
    message = f"{board}: still '{still}' pick: {number}" + ("" if changed else " (already)")
    out.echo(message, err=True)
    return message


def _page(
    compiled: CompiledBoard, jobs: list[Job], lock: Lock, target: Path, out: Output, *, pickable: bool = False
) -> str:
    """The sheet's HTML: one video per scene, or for a board with profiles each scene's lanes side by side."""
    from storyc.preview.sheet import current_keys, find_lanes, find_videos, render_sheet
    from storyc.render.inventory import scene_status

    if not compiled.profiles:
        statuses = scene_status(compiled.path.parent, jobs, lock)
        return render_sheet(compiled, statuses, find_videos(compiled, statuses), target, pickable=pickable)
    boards = every_profile(compiled, out)
    statuses = scene_status(compiled.path.parent, jobs, lock, current_keys(boards))
    return render_sheet(compiled, statuses, {}, target, find_lanes(compiled, boards, lock), pickable=pickable)
