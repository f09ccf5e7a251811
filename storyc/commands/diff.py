"""`storyc diff`: the board at two git revisions, scene by scene, with the cost of the change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.report import Output

if TYPE_CHECKING:
    from storyc.review.changes import Review


def diff(
    board: Path,
    *,
    out: Output,
    fmt: str = "text",
    base: str = "HEAD",
    head: str | None = None,
    profile: str | None = None,
) -> int:
    from storyc.review.changes import review
    from storyc.review.formats import render

    result = review(board, base=base, head=head, profile=profile)
    if profile is None:
        result = with_profile_costs(result, board, base, head)
    out.echo(render(result, fmt), nl=False)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def with_profile_costs(result: Review, board: Path, base: str, head: str | None) -> Review:
    """The change's cost in every profile of the head board (a draft and a final price differ five-fold)."""
    from storyc.review.changes import review

    head_compile = result.head.result
    names = head_compile.profiles if head_compile is not None else ()
    if len(names) < 2 or not result.ok:
        return result
    costs = []
    for name in names:
        each = result if name == result.profile else review(board, base=base, head=head, profile=name)
        costs.append((name, each.cost_usd, each.uncertain_usd))
    return replace(result, profile_costs=tuple(costs))
