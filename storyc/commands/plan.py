"""`storyc plan`: what `render` would do and cost, scene by scene; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, read_lock
from storyc.report import Output

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
) -> int:
    loaded = compiled_jobs(board, scenes, out)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    if compare:  # every tier's price: reads the lock only
        from storyc.plan import compare_tiers

        out.comparison(compare_tiers(jobs, read_lock(board)))
        return EXIT_OK
    if backend == "animatic":
        from storyc.session import animatic_session

        the_plan = animatic_session(compiled, jobs, size).plan
    else:
        from storyc.ledger import plan_paid
        from storyc.team import open_team

        team = open_team(compiled.path, use_store=use_store)
        the_plan = plan_paid(compiled.storyboard, jobs, read_lock(board), team, resend_unknown=resend_unknown)
    if out.json:
        out.data(the_plan.to_json())
    else:
        out.plan(the_plan, err=False)
    if detailed_exitcode and the_plan.cost > 0:
        return EXIT_WOULD_PAY
    return EXIT_OK
