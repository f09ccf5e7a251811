"""`storyc plan`: what `render` would do and cost, scene by scene; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, done_in_profile, every_profile, read_lock
from storyc.report import Output

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, Job
    from storyc.lock.lockfile import Lock
    from storyc.render.plan import Comparison

EXIT_WOULD_PAY = 2  # --detailed-exitcode, as `terraform plan -detailed-exitcode`


def plan(
    board: Path,
    scenes: Sequence[str],
    *,
    out: Output,
    backend: str = "fal",
    size: str = "preview",
    use_store: bool = True,
    resend_unknown: bool = False,
    detailed_exitcode: bool = False,
    compare: bool = False,
    profile: str | None = None,
    only_done_in: str | None = None,
    save_to: Path | None = None,
) -> int:
    from storyc.team.layer import open_team

    loaded = compiled_jobs(board, scenes, out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    # The team store, opened once: for --only-done-in and for the fal plan (--compare reads the lock only).
    wanted = only_done_in is not None or (backend == "fal" and not compare)
    team = open_team(compiled.path, use_store=use_store) if wanted else None
    if only_done_in is not None:
        jobs = done_in_profile(compiled, jobs, only_done_in, out, team)
    if compare:  # every profile's (or tier's) price: reads the lock only
        out.comparison(comparison(compiled, jobs, read_lock(board), out))
        return EXIT_OK
    if save_to is not None and backend != "fal":
        from storyc.commands._board import UsageError

        raise UsageError("--out saves a plan to pay on fal; an animatic is free, there is nothing to bind")
    if backend == "animatic":
        from storyc.render.session import animatic_session

        the_plan = animatic_session(compiled, jobs, size).plan
    else:
        from storyc.render.ledger import plan_paid
        from storyc.render.plan import with_upstreams

        steps = with_upstreams(compiled, jobs)
        the_plan = plan_paid(compiled.storyboard, steps, read_lock(board), team, resend_unknown=resend_unknown)
    if out.json:
        out.data(the_plan.to_json())
    else:
        out.plan(the_plan, err=False, profile=compiled.profile)
    if save_to is not None:
        from storyc.render.saved import write

        write(save_to, compiled, the_plan, resend_unknown=resend_unknown)
        out.text(f"saved to {save_to}: `storyc render {board} --plan {save_to}` pays this plan, no more", err=True)
    if detailed_exitcode and the_plan.cost > 0:
        return EXIT_WOULD_PAY
    return EXIT_OK


def comparison(compiled: CompiledBoard, jobs: list[Job], lock: Lock, out: Output) -> Comparison:
    """The board's profiles side by side; a board without profiles: its endpoint's tiers."""
    from storyc.compile.graph import upstream_stills
    from storyc.render.plan import compare_profiles, compare_tiers

    stills = upstream_stills(compiled, jobs)  # the stills these scenes need (all of them, without --scene)
    if not compiled.profiles:
        return compare_tiers(jobs, lock, stills)
    return compare_profiles(jobs, list(every_profile(compiled, out).items()), lock, stills)
