"""`storyc cut`: every scene's render joined in board order, and an OpenTimelineIO timeline."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK, EXIT_PROBLEMS
from storyc.commands._board import compiled_jobs
from storyc.diagnostics import StorycError
from storyc.report import Output, plural


def cut(
    board: Path,
    *,
    out: Output,
    backend: str = "fal",
    output: Path | None = None,
    otio: Path | bool = False,
    profile: str | None = None,
) -> int:
    """`otio`: a timeline's path, True for one beside the MP4 (OUT.otio), or False for none."""
    from storyc.fsutil import contained
    from storyc.preview.cut import cut as join
    from storyc.preview.cut import write_otio

    loaded = compiled_jobs(board, (), out, profile=profile)
    if loaded is None:
        return EXIT_PROBLEMS
    compiled, _ = loaded
    default = "renders/animatic/cut.mp4" if backend == "animatic" else _default_cut(compiled.profile)
    # an --output is the user's to choose; the default must not go through a link out of the board's folder
    target = output or contained(compiled.path.parent, default)
    timeline = _timeline_path(otio, target)
    if timeline is not None and timeline.resolve() == target.resolve():
        raise StorycError(f"{timeline}: the timeline and the cut would be the same file; name the cut .mp4")
    parts, mode = join(compiled, backend, target)
    if timeline is not None:
        write_otio(compiled, parts, timeline)
    seconds = sum(p.seconds for p in parts)
    if out.json:
        out.data(
            {
                "output": str(target),
                "scenes": len(parts),
                "seconds": round(seconds, 3),
                "mode": mode,
                "otio": str(timeline) if timeline is not None else None,
            }
        )
        return EXIT_OK
    how = "stream copy" if mode == "copy" else "re-encoded (scenes differ in size or frame rate)"
    out.echo(f"{target}: {plural(len(parts), 'scene')}, {seconds:.2f} s, {how}")
    if timeline is not None:
        out.echo(f"{timeline}: OpenTimelineIO timeline, {plural(len(parts), 'clip')}")
    return EXIT_OK


def _default_cut(profile: str | None) -> str:
    """Each profile's cut has its own file: the draft's must not overwrite the final's."""
    return "renders/cut.mp4" if profile is None else f"renders/cut-{profile}.mp4"


def _timeline_path(otio: Path | bool, cut: Path) -> Path | None:
    """Where --otio / --otio-path put the timeline: beside the cut with its name (cut.otio), or as given."""
    if isinstance(otio, Path):
        return otio
    return cut.with_suffix(".otio") if otio else None
