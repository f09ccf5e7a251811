"""What most commands start with: a compiled board, its selected scenes, its lock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.diagnostics import StorycError, did_you_mean, summary_line
from storyc.report import Output

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, CompileResult, Job
    from storyc.lock.lockfile import Lock
    from storyc.team.layer import TeamLayer


class UsageError(StorycError):
    """The command line asks for something that is not there (exit status 2, like click's own)."""

    exit_code = 2


def compile_board(board: Path, *, no_cache: bool = False, profile: str | None = None) -> CompileResult:
    """The board compiled as `profile` (None: its default); UnknownProfile for a name it lacks."""
    from storyc.compile.pipeline import compile_file

    return compile_file(board, use_cache=not no_cache, profile=profile)


def compiled_jobs(
    board: Path, scenes: Sequence[str], out: Output, *, no_cache: bool = False, profile: str | None = None
) -> tuple[CompiledBoard, list[Job]] | None:
    """The board's jobs for --scene IDs (all when none); None when it does not compile (diagnostics shown)."""
    result = compile_board(board, no_cache=no_cache, profile=profile)
    out.diagnostics(result.diagnostics, err=True)
    if result.board is None:
        out.echo(summary_line(result.diagnostics, 1), err=True)
        return None
    return result.board, select(result.board, scenes)


def compile_profiles(compiled: CompiledBoard, names: Sequence[str]) -> dict[str, CompiledBoard | None]:
    """The board compiled as each of `names` (`compiled` itself for its own); None for one that does not compile."""
    return {
        name: compiled if name == compiled.profile else compile_board(compiled.path, profile=name).board
        for name in dict.fromkeys(names)
    }


def every_profile(compiled: CompiledBoard, out: Output) -> dict[str, CompiledBoard | None]:
    """Each declared profile (in order) and the board compiled as it; None for one that does not compile.

    A profile that does not compile gets a note saying how to see why: the command at hand is
    about the profile it was given, which did compile.
    """
    boards = compile_profiles(compiled, compiled.profiles)
    for name, board in boards.items():
        if board is None:
            out.echo(f"profile '{name}' does not compile (see `storyc check --profile {name}`)", err=True)
    return boards


def done_in_profile(
    compiled: CompiledBoard, jobs: Sequence[Job], profile: str, out: Output, team: TeamLayer | None
) -> list[Job]:
    """`--only-done-in PROFILE`: the jobs whose scene's request in `profile` has a done render, in
    the lock or, with a team store, by any clone; the others are named, then left out.

    For `--only-done-in draft`: pay for a final only where its draft was rendered (and reviewed).
    """
    if profile == compiled.profile:
        raise UsageError(f"--only-done-in {profile}: that is the profile being rendered; name the draft profile")
    result = compile_board(compiled.path, profile=profile)
    if result.board is None:
        raise StorycError(
            f"--only-done-in {profile}: profile '{profile}' does not compile (`storyc check --profile {profile}`)"
        )
    lock = read_lock(compiled.path)
    other = {job.scene: job.key for job in result.board.jobs}
    in_store = team.done_keys([k for k in other.values() if lock.done(k) is None]) if team is not None else set()
    done = {scene for scene, key in other.items() if lock.done(key) is not None or key in in_store}
    left_out = [job.scene for job in jobs if job.scene not in done]
    if left_out:
        out.echo(f"left out, not done in profile '{profile}' ({len(left_out)}): {', '.join(left_out)}", err=True)
    return [job for job in jobs if job.scene in done]


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
    from storyc.lock.lockfile import lock_path, read

    return read(lock_path(board))
