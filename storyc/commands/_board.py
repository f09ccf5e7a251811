"""What most commands start with: a compiled board, its selected scenes, its lock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.diagnostics import StorycError, did_you_mean, summary_line
from storyc.report import Output

if TYPE_CHECKING:
    from storyc.compiler import CompiledBoard, CompileResult, Job
    from storyc.lock import Lock


class UsageError(StorycError):
    """The command line asks for something that is not there (exit status 2, like click's own)."""

    exit_code = 2


def compile_board(board: Path, *, no_cache: bool = False) -> CompileResult:
    from storyc.pipeline import compile_file

    return compile_file(board, use_cache=not no_cache)


def compiled_jobs(
    board: Path, scenes: Sequence[str], out: Output, *, no_cache: bool = False
) -> tuple[CompiledBoard, list[Job]] | None:
    """The board's jobs for --scene IDs (all when none); None when it does not compile (diagnostics shown)."""
    result = compile_board(board, no_cache=no_cache)
    out.diagnostics(result.diagnostics, err=True)
    if result.board is None:
        out.echo(summary_line(result.diagnostics, 1), err=True)
        return None
    return result.board, select(result.board, scenes)


def select(compiled: CompiledBoard, scenes: Sequence[str]) -> list[Job]:
    known = [j.scene for j in compiled.jobs]
    for sid in scenes:
        if sid not in known:
            raise UsageError(
                f"--scene: no scene '{sid}' in {compiled.storyboard}{did_you_mean(sid, known)}; "
                f"scenes: {', '.join(known)}"
            )
    wanted = set(scenes)
    return [j for j in compiled.jobs if not wanted or j.scene in wanted]


def read_lock(board: Path) -> Lock:
    from storyc.lock import lock_path, read

    return read(lock_path(board))
