"""`storyc diff`: the board at two git revisions, scene by scene, with the cost of the change."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.report import Output


def diff(board: Path, *, out: Output, fmt: str = "text", base: str = "HEAD", head: str | None = None) -> int:
    from storyc.review import review
    from storyc.review_render import render

    result = review(board, base=base, head=head)
    out.echo(render(result, fmt), nl=False)
    return EXIT_OK if result.ok else EXIT_PROBLEMS
