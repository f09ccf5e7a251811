"""`storyc check`: every problem of each board, located; optionally, whether its lock is up to date."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compile_board, read_lock
from storyc.compiler import price_text
from storyc.diagnostics import summary_line
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compiler import CompiledBoard


def check(boards: Sequence[Path], *, out: Output, locked: bool = False, no_cache: bool = False) -> int:
    results = [(b, compile_board(b, no_cache=no_cache)) for b in boards]
    every = [d for _, r in results for d in r.diagnostics]
    stale = [stale_lock(r.board) for _, r in results if locked and r.board is not None]
    stale_locks = [s for s in stale if s is not None]
    ok = all(r.ok for _, r in results) and not stale_locks
    if out.json:
        out.data(
            {
                "ok": ok,
                "files": [
                    {
                        "path": r.diagnostics[0].path if r.diagnostics else str(b),
                        "ok": r.ok,
                        "diagnostics": [d.to_json() for d in r.diagnostics],
                    }
                    for b, r in results
                ],
                **({"stale_locks": stale_locks} if locked else {}),
            }
        )
    else:
        out.diagnostics(every, err=False)
        for _board, result in results:
            if result.board is not None:
                compiled = result.board
                out.echo(
                    f"{compiled.storyboard}: {plural(len(compiled.jobs), 'scene')}, {compiled.total_seconds} s, "
                    f"{price_text(compiled.total_cost, compiled.total_uncertain)} to render"
                )
        out.echo(summary_line(every, len(boards)))
    for message in stale_locks:
        out.echo(message, err=True)
    return EXIT_OK if ok else EXIT_PROBLEMS


def stale_lock(compiled: CompiledBoard) -> str | None:
    """None when the lock's `scenes:` map says what the board's scenes are now; else what differs."""
    from storyc.lock import lock_path

    lock = read_lock(compiled.path)
    current = {job.scene: job.key for job in compiled.jobs}
    if lock.scenes == current:
        return None
    changed = sorted(s for s in current.keys() & lock.scenes.keys() if current[s] != lock.scenes[s])
    added, removed = sorted(current.keys() - lock.scenes.keys()), sorted(lock.scenes.keys() - current.keys())
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("new", added), ("gone", removed))
        if names
    ]
    return (
        f"{lock_path(compiled.path)}: out of date with {compiled.storyboard} ({'; '.join(parts)}); "
        "`storyc render` (or `storyc gc`, which renders nothing) updates it"
    )
