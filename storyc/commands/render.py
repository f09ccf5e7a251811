"""`storyc render`: carry the plan out on fal (paid, with consent) or as a local animatic (free)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs, done_in_profile
from storyc.compile.compiler import VIDEO_INPUT
from storyc.diagnostics import StorycError
from storyc.report import Output

if TYPE_CHECKING:
    from storyc.render.plan import Plan
    from storyc.render.run import Progress
    from storyc.render.saved import SavedPlan
    from storyc.render.session import Session


@dataclass(frozen=True)
class Spending:
    """The user's say on money: --yes, --max-cost, and whether there is a terminal to ask on."""

    yes: bool = False
    max_cost: float | None = None


def render(
    board: Path,
    scenes: Sequence[str],
    *,
    out: Output,
    backend: str = "fal",
    size: str = "preview",
    spending: Spending = Spending(),
    concurrency: int = 4,
    upload_ttl_hours: float = 24.0,
    cancel_on_interrupt: bool = False,
    resend_unknown: bool = False,
    use_store: bool = True,
    profile: str | None = None,
    only_done_in: str | None = None,
    plan_file: Path | None = None,
) -> int:
    from storyc.team.layer import open_team

    saved = None
    if plan_file is not None:
        saved = _saved_plan(plan_file, scenes, backend, profile, only_done_in, resend_unknown)
        profile, resend_unknown = saved.profile, saved.resend_unknown
    loaded = compiled_jobs(board, scenes, out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    if saved is not None:
        from storyc.render.saved import check_unchanged

        check_unchanged(saved, compiled)
        jobs = [job for job in jobs if job.scene in saved.scenes]
    # The team store, opened once: for --only-done-in and for rendering on fal.
    wanted = only_done_in is not None or backend == "fal"
    team = open_team(compiled.path, use_store=use_store) if wanted else None
    if only_done_in is not None:
        jobs = done_in_profile(compiled, jobs, only_done_in, out, team)
    if backend == "animatic":
        from storyc.render.session import animatic_session

        session = animatic_session(compiled, jobs, size)
        out.plan(session.plan, err=True, profile=compiled.profile)
        return _run(session, concurrency, out)
    from storyc.render.ledger import LedgerSettings
    from storyc.render.session import fal_session

    settings = LedgerSettings(
        upload_ttl=timedelta(hours=upload_ttl_hours),
        cancel_on_interrupt=cancel_on_interrupt,
        resend_unknown=resend_unknown,
    )
    if team is not None:
        out.echo(f"team store: {team.store.url}", err=True)
    with fal_session(compiled, jobs, ledger=settings, team=team) as session:
        session.backend.prepare(session.plan)  # no key: say so before asking to spend
        reviewed = None
        if saved is not None:
            _hold_to(saved, session.plan, out)
            reviewed = (saved.cost, f"plan {saved.path}")
        consent(session.plan, spending, out, profile=compiled.profile, reviewed=reviewed)
        return _run(session, concurrency, out)


def _saved_plan(
    path: Path,
    scenes: Sequence[str],
    backend: str,
    profile: str | None,
    only_done_in: str | None,
    resend_unknown: bool,
) -> SavedPlan:
    """The plan file, once the command line asks for nothing it does not already say."""
    from storyc.commands._board import UsageError
    from storyc.render.saved import read

    if scenes or only_done_in is not None or backend != "fal":
        raise UsageError("--plan renders the scenes the plan names, on fal: drop --scene, --only-done-in, --backend")
    saved = read(path)
    if profile is not None and profile != saved.profile:
        raise UsageError(f"--profile {profile}: {path} is a plan for profile {saved.profile or '(none)'}")
    if resend_unknown and not saved.resend_unknown:
        raise UsageError(f"--resend-unknown: {path} was planned without it; plan again with it to review the cost")
    return saved


def _hold_to(saved: SavedPlan, current: Plan, out: Output) -> None:
    """Refuse to pay for anything the saved plan did not include; say what was done since."""
    from storyc.render.saved import done_since, surplus

    extra = surplus(saved, current)
    if extra:
        raise StorycError(
            f"{saved.path}: the lock changed since this plan was made: rendering now would also pay for "
            f"{', '.join(extra)}; nothing was sent. Review the new price: `storyc plan ... --out {saved.path}`"
        )
    since = done_since(saved, current)
    if since:
        out.echo(f"done since the plan was made, not paid again: {', '.join(since)}", err=True)


def consent(
    the_plan: Plan,
    spending: Spending,
    out: Output,
    *,
    profile: str | None = None,
    reviewed: tuple[Decimal, str] | None = None,
) -> None:
    """Spend only with the user's clear yes (or --yes), and never above --max-cost; else StorycError.

    The question names the profile: a draft and a final differ five-fold in price.  With a saved
    plan (`reviewed`: its total and its name), the question and --max-cost are about the plan's
    total, what was reviewed; what is paid is at most that.
    """
    import click

    out.plan(the_plan, err=True, profile=profile)
    cost = the_plan.cost  # the full estimate: the certain price plus the uncertain part
    if cost == 0:
        return
    if reviewed is not None:
        cost = reviewed[0]
        profile = f"{profile}, {reviewed[1]}" if profile is not None else reviewed[1]
    uncertain = the_plan.uncertain
    part = "all" if uncertain >= cost else f"${uncertain:.2f}"
    of_it = f" ({part} of it uncertain: {VIDEO_INPUT})" if uncertain else ""
    if spending.max_cost is not None and cost > Decimal(str(spending.max_cost)):
        raise StorycError(
            f"the plan costs ${cost:.2f}{of_it}, above --max-cost ${spending.max_cost:.2f}; nothing was sent"
        )
    if spending.yes:
        return
    if not sys.stdin.isatty():
        raise StorycError(
            f"rendering would spend ${cost:.2f}{of_it}; no terminal to ask, so nothing was sent (pass --yes to confirm)"
        )
    named = f" (profile {profile})" if profile is not None else ""
    if not click.confirm(f"Spend ${cost:.2f} on fal{named}?{of_it}", default=False, err=True):
        raise StorycError("nothing was sent")


def _run(session: Session, concurrency: int, out: Output) -> int:
    with _progress([i.scene for i in session.plan.items]) as progress:
        summary = session.run(concurrency=concurrency, progress=progress)
    team = getattr(session.backend, "team", None)
    if out.json:
        payload = summary.to_json()
        if team is not None:
            payload["store"] = {"url": team.store.url, "requests": team.store.requests}
        out.data(payload)
    notes = [*getattr(session.backend, "notes", [])]
    if team is not None:
        notes += team.notes
    out.summary(session.board, summary, notes)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.ok else EXIT_PROBLEMS


@contextlib.contextmanager
def _progress(scenes: list[str]) -> Iterator[Progress]:
    import os

    from storyc.progress import LineProgress, LiveProgress

    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        with LiveProgress(scenes) as live:
            yield live
    else:
        yield LineProgress(sys.stderr)
