"""`storyc check`: every problem of each board, located; optionally, whether its lock is up to date."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compile_board, read_lock
from storyc.compile.compiler import price_text, stills_text
from storyc.diagnostics import once_per_problem, summary_line
from storyc.report import Output, plural

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, CompileResult
    from storyc.diagnostics import Diagnostic


@dataclass(frozen=True)
class Checked:
    """One board, compiled as each profile checked (one compile for a board without profiles)."""

    path: Path
    results: tuple[CompileResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every profile's problems, each once: a problem found in several profiles names them."""
        return once_per_problem(d for r in self.results for d in r.diagnostics)

    @property
    def default_board(self) -> CompiledBoard | None:
        return next((r.board for r in self.results if r.board is not None and r.board.is_default_profile), None)


def check(
    boards: Sequence[Path], *, out: Output, locked: bool = False, no_cache: bool = False, profile: str | None = None
) -> int:
    checked = [_check_board(b, no_cache, profile) for b in boards]
    every = [d for c in checked for d in c.diagnostics]
    stale = [stale_lock(c) for c in checked if locked and c.ok]
    stale_locks = [s for s in stale if s is not None]
    ok = all(c.ok for c in checked) and not stale_locks
    if out.json:
        out.data(
            {
                "ok": ok,
                "files": [
                    {
                        "path": c.diagnostics[0].path if c.diagnostics else str(c.path),
                        "ok": c.ok,
                        "diagnostics": [d.to_json() for d in c.diagnostics],
                        **({"profiles": _profiles_json(c)} if _has_profiles(c) else {}),
                    }
                    for c in checked
                ],
                **({"stale_locks": stale_locks} if locked else {}),
            }
        )
    else:
        out.diagnostics(every, err=False)
        for c in checked:
            for result in c.results:
                if result.board is not None:
                    out.echo(_totals_line(result.board))
        for message in stale_locks:
            out.echo(message, err=True)
        out.echo(summary_line(every, len(boards)) + _stale_summary(stale_locks, locked))
    if out.json:
        for message in stale_locks:
            out.echo(message, err=True)
    return EXIT_OK if ok else EXIT_PROBLEMS


def _stale_summary(stale_locks: Sequence[str], locked: bool) -> str:
    """The summary's last words, so that it agrees with the exit status: `, 1 lock out of date`."""
    if not locked:
        return ""
    return f", {plural(len(stale_locks), 'lock')} out of date" if stale_locks else ", locks up to date"


def _check_board(board: Path, no_cache: bool, profile: str | None) -> Checked:
    return Checked(board, each_profile(lambda name: compile_board(board, no_cache=no_cache, profile=name), profile))


def each_profile(
    compile_as: Callable[[str | None], CompileResult], profile: str | None = None
) -> tuple[CompileResult, ...]:
    """The board as `profile`, or, without one, as every profile it declares (each has its own limits).

    `compile_as(name)` compiles the board as profile `name` (None: its default): from the disk for
    `storyc check`, from the editor's buffers for the language server.
    """
    first = compile_as(profile)
    results = [first]
    if profile is None:
        chosen = first.board.profile if first.board is not None else None
        for name in first.profiles:
            if first.board is None or name != chosen:
                results.append(compile_as(name))
    return tuple(results)


def _has_profiles(checked: Checked) -> bool:
    return any(r.profiles for r in checked.results)


def _profiles_json(checked: Checked) -> dict[str, Any]:
    return {
        r.board.profile: {
            "scenes": len(r.board.jobs),
            "seconds": r.board.total_seconds,
            "cost_usd": r.board.total_cost,  # Decimals: storyc.jsontext writes amounts exactly
            "uncertain_usd": r.board.total_uncertain,
            **({"stills": len(r.board.stills), "stills_usd": r.board.stills_cost} if r.board.stills else {}),
        }
        for r in checked.results
        if r.board is not None and r.board.profile is not None
    }


def _totals_line(compiled: CompiledBoard) -> str:
    named = f" [{compiled.profile}]" if compiled.profile is not None else ""
    stills = f"; {stills_text(compiled.stills)}" if compiled.stills else ""
    return (
        f"{compiled.storyboard}{named}: {plural(len(compiled.jobs), 'scene')}, {compiled.total_seconds} s, "
        f"{price_text(compiled.total_cost, compiled.total_uncertain)} to render{stills}"
    )


def stale_lock(checked: Checked) -> str | None:
    """None when the lock's `scenes:` map says what the board's scenes are now; else what differs.

    A board with no lock file is up to date: nothing was rendered, so there is nothing to record (a
    board `storyc init` just wrote is committable).  The map records the board's default profile:
    check that one, whichever profiles were checked.
    """
    from storyc.lock.lockfile import lock_path

    if not lock_path(checked.path).exists():
        return None
    compiled = checked.default_board
    if compiled is None:
        compiled = compile_board(checked.path).board
        if compiled is None:
            return None  # the default profile does not compile: `storyc check` says why
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
        f"{lock_path(checked.path)}: out of date with {checked.path} ({'; '.join(parts)}); "
        f"`storyc lock sync {checked.path}` records the board's current scene keys (it renders nothing)"
    )
