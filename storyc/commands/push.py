"""`storyc push`: put the done renders the team store lacks into it (for a team that adds a store later)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import read_lock
from storyc.diagnostics import StorycError
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.lock.lockfile import Video


def _verified(file: Path, recorded: Video) -> bool:
    from storyc.compile.assets import sha256_file

    return file.is_file() and sha256_file(file) == recorded.sha256


def push(board: Path, *, out: Output) -> int:
    from storyc.lock.lockfile import LockError, video_target
    from storyc.team.layer import open_team
    from storyc.team.store import StoreError

    team = open_team(board)
    if team is None:
        raise StorycError('no team store configured: set STORYC_STORE=URL or `store = "URL"` in storyc.toml')
    lock = read_lock(board)
    done = {key: r for key, r in sorted(lock.renders.items()) if r.state == "done"}
    present = team.done_keys(list(done))
    rows: list[dict[str, object]] = []
    for key, render in done.items():
        row: dict[str, object] = {"key": key, "scene": render.name}
        files = (render.video,) if render.still is None else render.images
        if key in present:
            row.update(state="present", detail="already in the store")
        elif not files or any(f is None or f.path is None or f.sha256 is None for f in files):
            row.update(state="skipped", detail="the lock records no verified local file")
        else:
            try:
                bad = [f.path for f in files if f and f.path and not _verified(video_target(board.parent, f.path), f)]
                if bad:
                    row.update(state="skipped", detail=f"{bad[0]} is missing or altered (`storyc pull` first)")
                elif team.put(key, render, board.parent):
                    sizes = sum(f.bytes or 0 for f in files if f is not None)
                    shown = ", ".join(f.path for f in files if f is not None and f.path)
                    row.update(state="pushed", detail=f"{shown}, {sizes:,} bytes")
                else:
                    row.update(state="skipped", detail="incomplete lock entry (no request id or size)")
            except (StoreError, LockError) as exc:
                row.update(state="failed", detail=str(exc))
        rows.append(row)
    failed = sum(1 for r in rows if r["state"] == "failed")
    pushed = sum(1 for r in rows if r["state"] == "pushed")
    if out.json:
        out.data({"store": team.store.url, "renders": rows, "pushed": pushed, "failed": failed})
    else:
        for r in rows:
            out.echo(f"  {r['scene']!s:<12} {r['state']!s:<8} {r['key']!s:.19}  {r['detail']}")
        out.echo(f"{team.store.url}: {plural(pushed, 'render')} pushed, {len(present)} already there, {failed} failed")
    return EXIT_PROBLEMS if failed else EXIT_OK
