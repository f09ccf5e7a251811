"""`storyc lock merge` (git's merge driver for lock files) and `storyc lock repair` (conflict markers)."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK
from storyc.report import Output


def merge(base: Path, ours: Path, theirs: Path, name: str | None, *, out: Output) -> int:
    from storyc.lockmerge import merge_driver

    merge_driver(base, ours, theirs, name=name)  # LockError -> exit 1: git then reports a conflict
    return EXIT_OK


def repair(board: Path, *, out: Output) -> int:
    from storyc.lock import lock_path
    from storyc.lockmerge import repair as repair_lock

    report = repair_lock(lock_path(board))
    if out.json:
        out.data({"lock": str(report.path), "repaired": report.repaired, "summary": report.summary()})
    else:
        out.echo(report.summary())
    return EXIT_OK
