"""`storyc push`: put the done renders the team store lacks into it (for a team that adds a store later)."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import read_lock
from storyc.diagnostics import StorycError
from storyc.report import Output, plural


def push(board: Path, *, out: Output) -> int:
    from storyc.compile.assets import sha256_file
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
        row: dict[str, object] = {"key": key, "scene": render.scene}
        video = render.video
        if key in present:
            row.update(state="present", detail="already in the store")
        elif video is None or video.path is None or video.sha256 is None:
            row.update(state="skipped", detail="the lock records no verified local video")
        else:
            try:
                file = video_target(board.parent, video.path)
                if not file.is_file() or sha256_file(file) != video.sha256:
                    row.update(state="skipped", detail=f"{video.path} is missing or altered (`storyc pull` first)")
                elif team.put(key, render, file):
                    row.update(state="pushed", detail=f"{video.path}, {video.bytes:,} bytes")
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
