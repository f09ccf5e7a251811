"""`storyc pull`: download done renders missing (or altered) locally; never renders, never pays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs
from storyc.report import Output, plural


def pull(board: Path, scenes: Sequence[str], *, out: Output, use_store: bool = True, profile: str | None = None) -> int:
    from storyc.lock.lockfile import open_store
    from storyc.render.inventory import pull as pull_videos
    from storyc.render.plan import with_upstreams
    from storyc.team.layer import open_team

    loaded = compiled_jobs(board, scenes, out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    team = open_team(compiled.path, use_store=use_store)
    steps = with_upstreams(compiled, jobs).steps  # a graph board: its stills' candidates too
    with open_store(board) as store:
        pulled = pull_videos(
            compiled.path.parent, steps, store, team=team, on_scene=lambda s, what: out.echo(f"{s}: {what}", err=True)
        )
    failed = sum(1 for p in pulled if not p.ok)
    if out.json:
        out.data(
            {
                "scenes": [
                    {"scene": p.scene, "state": "done" if p.ok else "failed", "path": p.path, "detail": p.detail}
                    for p in pulled
                ],
                "downloaded": len(pulled) - failed,
                "failed": failed,
            }
        )
    else:
        for p in pulled:
            out.echo(f"  {p.scene}  {'ok' if p.ok else out.style('failed', 'red')}  {p.path}: {p.detail}")
        what = "file" if compiled.stills else "video"  # a still's candidates are pictures
        out.echo(f"{plural(len(pulled) - failed, what)} downloaded" + (f", {failed} failed" if failed else ""))
    return EXIT_PROBLEMS if failed else EXIT_OK
