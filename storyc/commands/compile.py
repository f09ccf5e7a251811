"""`storyc compile`: each scene's request, for people, or the compiled form as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs
from storyc.compile.compiler import price_text, stills_text
from storyc.compile.graph import upstream_stills
from storyc.report import Output, plural


def compile_board(
    board: Path, scenes: Sequence[str], *, out: Output, no_cache: bool = False, profile: str | None = None
) -> int:
    loaded = compiled_jobs(board, scenes, out, no_cache=no_cache, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, jobs = loaded
    if out.json:
        out.data(compiled.to_json([j.scene for j in jobs]))
        return EXIT_OK
    stills = upstream_stills(compiled, jobs) if scenes else compiled.stills
    for still in stills:
        out.still(still)
    for job in jobs:
        out.job(job)
    total_seconds = sum(j.seconds for j in jobs)
    total_cost = sum((j.cost_usd for j in jobs), Decimal("0.00"))
    uncertain = sum((j.uncertain_usd for j in jobs), Decimal("0.00"))
    price = price_text(total_cost, uncertain)
    named = f" in profile '{compiled.profile}'" if compiled.profile is not None else ""
    made = f"; {stills_text(stills)}" if stills else ""
    out.echo(out.style(f"{plural(len(jobs), 'scene')}, {total_seconds} s, {price} to render{named}{made}", bold=True))
    return EXIT_OK
