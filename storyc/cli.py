"""The `storyc` command line: parse arguments, call the core, print.

Exit status: 0 clean (warnings allowed), 1 problems found or renders failed,
2 wrong command-line usage, 3 a bug in storyc, 130 interrupted.

Only click is imported at start-up; each command imports what it needs, so
`storyc --version` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from storyc import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storyc.compiler import CompiledBoard, CompileResult, Job
    from storyc.diagnostics import Diagnostic, StorycError
    from storyc.lock import Lock, LockStore
    from storyc.plan import Plan
    from storyc.render import Progress, RenderSummary, SceneState
    from storyc.session import Session

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

class FiniteFloat(click.FloatRange):
    """A number >= 0 that is a real amount: `nan` and `inf` pass a plain range check, and mean nothing here."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


board_argument = click.argument("board", type=click.Path(path_type=Path, dir_okay=False), metavar="BOARD.yaml")
scene_option = click.option(
    "--scene",
    "scenes",
    multiple=True,
    metavar="ID",
    help="Only this scene (repeat for several). Default: every scene.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
no_cache_option = click.option("--no-cache", is_flag=True, help="Compile from scratch, ignoring .storyc/compile/.")


class StorycGroup(click.Group):
    """The error boundary for every command: a StorycError is printed as diagnostics and exits 1.

    Here rather than only in `main`, so the same holds through click's test runner and any caller
    of `cli`.  `main` adds what only a process can do: Ctrl-C -> 130 and bugs -> 3.
    """

    def invoke(self, ctx: click.Context) -> Any:
        from storyc.diagnostics import StorycError

        try:
            return super().invoke(ctx)
        except StorycError as exc:
            _echo_failure(exc)
            ctx.exit(EXIT_PROBLEMS)


@click.group(cls=StorycGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="storyc")
def cli() -> None:
    """storyc compiles storyboards (YAML, in git) into video requests for fal's
    Kling O3 4K reference-to-video API, and renders them.

    \b
    A typical session:
      storyc init film/                                # a small working board to start from
      storyc check film/board.yaml                     # every problem, at file:line:col
      storyc render film/board.yaml --backend animatic # a free local preview
      storyc cut film/board.yaml --backend animatic    # ... joined into one film
      storyc plan film/board.yaml                      # what rendering on fal would cost
      storyc render film/board.yaml                    # render on fal (asks first; needs FAL_KEY)
      storyc status film/board.yaml                    # what is rendered, locally and in the lock
      storyc diff film/board.yaml                      # what your change does, scene by scene, and costs

    Exit status: 0 ok (warnings allowed), 1 problems found or a render failed,
    2 usage error, 130 interrupted.
    """


# --- diagnostics ------------------------------------------------------------------


def _echo_diagnostics(diagnostics: Iterable[Diagnostic], *, err: bool) -> None:
    for d in diagnostics:
        color = "red" if d.severity == "error" else "yellow"
        text = d.format()
        label = f"{d.severity}:"
        head, _, tail = text.partition(f" {label} ")
        click.echo(f"{head} {click.style(label, fg=color, bold=True)} {tail}", err=err)


def _compile(board: Path, no_cache: bool) -> CompileResult:
    from storyc.pipeline import compile_file

    return compile_file(board, use_cache=not no_cache)


def _select(compiled: CompiledBoard, scenes: Sequence[str]) -> list[Job]:
    """The jobs for --scene IDs (all when none); an unknown id is a usage error."""
    from storyc.diagnostics import did_you_mean

    known = [j.scene for j in compiled.jobs]
    for sid in scenes:
        if sid not in known:
            raise click.BadParameter(
                f"no scene '{sid}' in {compiled.storyboard}{did_you_mean(sid, known)}; scenes: {', '.join(known)}",
                param_hint="--scene",
            )
    return [j for j in compiled.jobs if not scenes or j.scene in scenes]


# --- check ------------------------------------------------------------------------


@cli.command()
@click.argument(
    "boards", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False), metavar="BOARD.yaml..."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.option(
    "--locked",
    is_flag=True,
    help="Also fail when BOARD.lock's scene keys are out of date with the board (for teams that commit locks).",
)
@no_cache_option
def check(boards: tuple[Path, ...], fmt: str, locked: bool, no_cache: bool) -> None:
    """Check storyboards: schema, names, templates, assets, limits.

    Prints every problem as PATH:LINE:COL: error|warning: MESSAGE, then a
    summary. Nothing is sent anywhere.

    \b
    Example:
      storyc check examples/*/board.yaml
    """
    from storyc.diagnostics import summary_line

    results = [(b, _compile(b, no_cache)) for b in boards]
    every = [d for _, r in results for d in r.diagnostics]
    failed = any(not r.ok for _, r in results)
    if fmt == "json":
        payload = {
            "ok": not failed,
            "files": [
                {
                    "path": r.diagnostics[0].path if r.diagnostics else str(b),
                    "ok": r.ok,
                    "diagnostics": [d.to_json() for d in r.diagnostics],
                }
                for b, r in results
            ],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        _echo_diagnostics(every, err=False)
        for _board, result in results:
            if result.board is not None:
                compiled = result.board
                click.echo(
                    f"{compiled.storyboard}: {_plural(len(compiled.jobs), 'scene')}, {compiled.total_seconds} s, "
                    f"${compiled.total_cost} to render"
                )
        click.echo(summary_line(every, len(boards)))
    if locked:
        failed |= not all(_lock_up_to_date(r.board) for _, r in results if r.board is not None)
    sys.exit(EXIT_PROBLEMS if failed else EXIT_OK)


def _lock_up_to_date(compiled: CompiledBoard) -> bool:
    """Whether the lock's `scenes:` map says what the board's scenes are now (stderr lists what differs)."""
    from storyc.lock import lock_path

    lock = _read_lock(compiled.path)
    current = {job.scene: job.key for job in compiled.jobs}
    if lock.scenes == current:
        return True
    changed = sorted(s for s in current.keys() & lock.scenes.keys() if current[s] != lock.scenes[s])
    added, removed = sorted(current.keys() - lock.scenes.keys()), sorted(lock.scenes.keys() - current.keys())
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("new", added), ("gone", removed))
        if names
    ]
    where = lock_path(compiled.path)
    click.echo(
        f"{where}: out of date with {compiled.storyboard} ({'; '.join(parts)}); "
        "`storyc render` (or `storyc gc`, which renders nothing) updates it",
        err=True,
    )
    return False


# --- compile ----------------------------------------------------------------------


@cli.command("compile")
@board_argument
@scene_option
@json_option
@no_cache_option
def compile_command(board: Path, scenes: tuple[str, ...], as_json: bool, no_cache: bool) -> None:
    """Compile a storyboard into its fal requests (one per scene).

    Shows each scene's request: prompt with positional references (@Element1,
    @Image1), the references table, seconds, cost and content key. With
    --json, prints the compiled form: {"storyboard", "jobs": [...]}.
    Nothing is sent anywhere.

    \b
    Examples:
      storyc compile examples/elephant/board.yaml
      storyc compile examples/elephant/board.yaml --scene meet --json
    """
    result = _compile(board, no_cache)
    _echo_diagnostics(result.diagnostics, err=True)
    if result.board is None:
        _fail_summary(result)
    jobs = _select(result.board, scenes)
    if as_json:
        click.echo(json.dumps(result.board.to_json([j.scene for j in jobs]), indent=2, ensure_ascii=False))
        return
    for job in jobs:
        _echo_job(job)
    total_seconds = sum(j.seconds for j in jobs)
    total_cost = sum(j.cost_usd for j in jobs)
    click.echo(click.style(f"{_plural(len(jobs), 'scene')}, {total_seconds} s, ${total_cost:.2f} to render", bold=True))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fail_summary(result: CompileResult) -> NoReturn:
    from storyc.diagnostics import summary_line

    click.echo(summary_line(result.diagnostics, 1), err=True)
    sys.exit(EXIT_PROBLEMS)


def _echo_job(job: Job) -> None:
    head = f"{job.scene}  {job.seconds} s  ${job.cost_usd}  {job.key[:19]}"
    click.echo(click.style(head, bold=True))
    click.echo(f"  endpoint  {job.endpoint}")
    for position, name in job.references.items():
        click.echo(f"  {position:<10} @{name}")
    args = job.arguments
    settings = ", ".join(
        f"{k}={args[k]}" for k in ("duration", "aspect_ratio", "generate_audio", "shot_type") if k in args
    )
    click.echo(f"  settings  {settings}")
    for key in ("start_image_url", "end_image_url"):
        if key in args:
            click.echo(f"  {key.removesuffix('_url').replace('_image', ' frame'):<9} {args[key]}")
    if "prompt" in args:
        _echo_text("prompt", args["prompt"])
    for i, shot in enumerate(args.get("multi_prompt", []), 1):
        _echo_text(f"shot {i} ({shot['duration']} s)", shot["prompt"])
    click.echo()


def _echo_text(label: str, text: str) -> None:
    click.echo(f"  {label}:")
    for line in text.splitlines() or [""]:
        click.echo(f"    {line}")


# --- rendering: plan, render, status, pull, gc -------------------------------------------

backend_option = click.option(
    "--backend",
    type=click.Choice(["fal", "animatic"]),
    default="fal",
    show_default=True,
    help="fal: real renders, paid, recorded in BOARD.lock. animatic: local cards, free, no key needed.",
)
size_option = click.option(
    "--size",
    type=click.Choice(["preview", "4k"]),
    default="preview",
    show_default=True,
    help="Animatic frame size: preview is 1280x720-class, 4k is 3840x2160 (or 2160x3840, 2160x2160).",
)


def _compiled_jobs(board: Path, scenes: Sequence[str]) -> tuple[CompiledBoard, list[Job]]:
    result = _compile(board, no_cache=False)
    _echo_diagnostics(result.diagnostics, err=True)
    if result.board is None:
        _fail_summary(result)
    return result.board, _select(result.board, scenes)


@contextlib.contextmanager
def _lock_store(board: Path) -> Iterator[LockStore]:
    from storyc.lock import open_store

    with open_store(board) as store:
        yield store


def _die(message: str) -> NoReturn:
    """Stop with a message for the user (exit 1): the error boundary in `main` prints it."""
    from storyc.diagnostics import StorycError

    raise StorycError(message)


def _read_lock(board: Path) -> Lock:
    from storyc.lock import lock_path, read

    return read(lock_path(board))


def _echo_plan(plan: Plan, *, err: bool) -> None:
    colors = {"cached": "green", "resume": "cyan", "render": "yellow", "unknown": "red"}
    paid = plan.backend == "fal"
    width = max((len(i.scene) for i in plan.items), default=5)
    for item in plan.items:
        action = click.style(f"{item.action:<7}", fg=colors[item.action])
        price = f"  ${item.price:>7.2f}" if paid else ""
        click.echo(f"  {item.scene:<{width}}  {action} {item.job.seconds:>3} s{price}  {item.note}", err=err)
    n_render, seconds = len(plan.to_render), sum(i.job.seconds for i in plan.to_render)
    line = f"{plan.backend}: {_plural(n_render, 'scene')} to render ({seconds} s)"
    if paid:
        line += f", ${plan.cost:.2f}; {plan.count('cached')} cached, {plan.count('resume')} to resume at no new cost"
        if plan.count("unknown"):
            line += f"; {plan.count('unknown')} unknown (fal may have them; see above)"
    else:
        line += f", free; {plan.count('cached')} up to date"
    click.echo(click.style(line, bold=True), err=err)


@cli.command()
@board_argument
@scene_option
@backend_option
@size_option
@json_option
def plan(board: Path, scenes: tuple[str, ...], backend: str, size: str, as_json: bool) -> None:
    """Show what `render` would do and cost, scene by scene. Sends nothing.

    Each scene is cached (its request was rendered before, also if the scene
    was reverted to it), resume (fal accepted it earlier; picked up by its
    request id at no new cost), render (new or changed: paid) or unknown (a
    submit got no answer, so fal may have it: not sent again unless
    `render --resend-unknown`).

    \b
    Example:
      storyc plan examples/elephant/board.yaml
    """
    compiled, jobs = _compiled_jobs(board, scenes)
    if backend == "animatic":
        from storyc.session import animatic_session

        the_plan = animatic_session(compiled, jobs, size).plan
    else:
        from storyc.plan import plan_with_lock

        the_plan = plan_with_lock(compiled.storyboard, jobs, _read_lock(board))
    if as_json:
        click.echo(json.dumps(the_plan.to_json(), indent=2))
    else:
        _echo_plan(the_plan, err=False)


@cli.command()
@board_argument
@scene_option
@backend_option
@size_option
@click.option("--yes", "-y", is_flag=True, help="Spend without asking (for scripts and CI).")
@click.option(
    "--max-cost", type=FiniteFloat(min=0), metavar="USD", help="Refuse a plan that would spend more than this."
)
@click.option(
    "--concurrency", "-j", type=click.IntRange(1, 64), default=4, show_default=True, help="Scenes in flight at once."
)
@click.option(
    "--upload-ttl",
    type=FiniteFloat(min=0),
    default=24.0,
    show_default=True,
    metavar="HOURS",
    help="Upload an asset again when its recorded fal URL is older than this.",
)
@click.option("--cancel-on-interrupt", is_flag=True, help="On Ctrl-C, ask fal to cancel the requests sent in this run.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again the submits whose outcome is unknown (no answer came back; fal may have accepted them, "
    "so this may pay twice). Without it they are shown and left alone.",
)
@json_option
def render(
    board: Path,
    scenes: tuple[str, ...],
    backend: str,
    size: str,
    yes: bool,
    max_cost: float | None,
    concurrency: int,
    upload_ttl: float,
    cancel_on_interrupt: bool,
    resend_unknown: bool,
    as_json: bool,
) -> None:
    """Render scenes: on fal (paid, recorded in BOARD.lock) or as a local animatic (free).

    Shows the plan first and asks before spending (--yes to skip the question;
    without a terminal and without --yes, nothing is spent). Only new or
    changed scenes are sent; a scene fal already accepted is resumed by its
    request id, never sent twice, also after a crash. Videos are written to
    renders/ (animatics to renders/animatic/).

    Ctrl-C stops waiting and keeps everything already submitted in the lock
    (fal still finishes those jobs): run render again to pick them up.

    \b
    Examples:
      storyc render examples/elephant/board.yaml --backend animatic
      storyc render examples/elephant/board.yaml --scene meet --max-cost 5
      FAL_KEY=... storyc render board.yaml --yes --json
    Exit status: 0 all rendered, 1 a scene failed or spending refused, 130 interrupted.
    """
    from datetime import timedelta

    compiled, jobs = _compiled_jobs(board, scenes)
    if backend == "animatic":
        from storyc.session import animatic_session

        session = animatic_session(compiled, jobs, size)
        _echo_plan(session.plan, err=True)
        _run_session(session, concurrency, as_json)
    from storyc.ledger import LedgerSettings
    from storyc.session import fal_session

    settings = LedgerSettings(
        upload_ttl=timedelta(hours=upload_ttl), cancel_on_interrupt=cancel_on_interrupt, resend_unknown=resend_unknown
    )
    with fal_session(compiled, jobs, ledger=settings) as session:
        _consent(session.plan, yes=yes, max_cost=max_cost)
        _run_session(session, concurrency, as_json)


def _consent(the_plan: Plan, *, yes: bool, max_cost: float | None) -> None:
    """Spend only with the user's clear yes (or --yes), and never above --max-cost."""
    from decimal import Decimal

    _echo_plan(the_plan, err=True)
    cost = the_plan.cost
    if cost == 0:
        return
    if max_cost is not None and cost > Decimal(str(max_cost)):
        _die(f"the plan costs ${cost:.2f}, above --max-cost ${max_cost:.2f}; nothing was sent")
    if yes:
        return
    if not sys.stdin.isatty():
        _die(f"rendering would spend ${cost:.2f}; no terminal to ask, so nothing was sent (pass --yes to confirm)")
    if not click.confirm(f"Spend ${cost:.2f} on fal?", default=False, err=True):
        _die("nothing was sent")


def _run_session(session: Session, concurrency: int, as_json: bool) -> NoReturn:
    with _progress([i.scene for i in session.plan.items]) as progress:
        summary = session.run(concurrency=concurrency, progress=progress)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    _echo_summary(session.board, summary, getattr(session.backend, "notes", []))
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if summary.ok else EXIT_PROBLEMS)


@contextlib.contextmanager
def _progress(scenes: list[str]) -> Iterator[Progress]:
    from storyc.progress import LineProgress, LiveProgress

    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        with LiveProgress(scenes) as live:
            yield live
    else:
        yield LineProgress(sys.stderr)


def _echo_summary(compiled: CompiledBoard, summary: RenderSummary, notes: list[str]) -> None:
    for result in summary.results:
        if result.error:
            line, col = result.location or (0, 0)
            where = f"{compiled.storyboard}:{line}:{col}" if result.location else compiled.storyboard
            severity = "error" if result.state in ("failed", "lost", "unknown") else "warning"
            click.echo(f"{where}: {severity}: scene '{result.scene}': {result.error}", err=True)
        for note in result.notes:
            click.echo(f"{compiled.storyboard}: warning: scene '{result.scene}': {note}", err=True)
    for note in notes:
        click.echo(f"storyc: {note}", err=True)
    states: tuple[SceneState, ...] = ("done", "cached", "submitted", "unknown", "failed", "lost", "interrupted")
    counts = [f"{summary.count(s)} {s}" for s in states]
    tally = ", ".join(c for c in counts if not c.startswith("0 "))
    tally += f"; spent ${summary.spent:.2f}" if summary.backend == "fal" else "; free (animatic)"
    if summary.interrupted:
        tally += " — interrupted: submitted renders stay in the lock; run render again to pick them up"
    click.echo(click.style(tally, bold=True), err=True)


@cli.command()
@board_argument
@scene_option
@json_option
def status(board: Path, scenes: tuple[str, ...], as_json: bool) -> None:
    """Show each scene's render: done (with its file), stale, submitted, failed, lost, or new.

    Also checks each downloaded video against the sha256 in the lock:
    missing or altered files are listed (`storyc pull` restores them).
    Sends nothing. Exit status 1 when a scene is not done.
    """
    from storyc.inventory import scene_status

    compiled, jobs = _compiled_jobs(board, scenes)
    statuses = scene_status(compiled.path.parent, jobs, _read_lock(board))
    if as_json:
        click.echo(json.dumps({"scenes": [s.to_json() for s in statuses]}, indent=2))
    else:
        colors = {"done": "green", "submitted": "cyan", "stale": "yellow", "new": "yellow"}
        width = max((len(s.scene) for s in statuses), default=5)
        for s in statuses:
            click.echo(
                f"  {s.scene:<{width}}  {click.style(f'{s.status:<9}', fg=colors.get(s.status, 'red'))} {s.detail}"
            )
    sys.exit(EXIT_OK if all(s.status == "done" for s in statuses) else EXIT_PROBLEMS)


@cli.command()
@board_argument
@scene_option
def pull(board: Path, scenes: tuple[str, ...]) -> None:
    """Download rendered videos that are missing (or altered) locally, from the URLs in the lock.

    For a fresh clone of a repository that commits its lock: every done
    render is fetched and checked against its sha256. Never renders, never
    pays, needs no API key.
    """
    from storyc.inventory import pull as pull_videos

    compiled, jobs = _compiled_jobs(board, scenes)
    with _lock_store(board) as store:
        pulled = pull_videos(
            compiled.path.parent, jobs, store, on_scene=lambda s, what: click.echo(f"{s}: {what}", err=True)
        )
    for p in pulled:
        click.echo(f"  {p.scene}  {'ok' if p.ok else click.style('failed', fg='red')}  {p.path}: {p.detail}")
    failed = sum(1 for p in pulled if not p.ok)
    click.echo(f"{_plural(len(pulled) - failed, 'video')} downloaded" + (f", {failed} failed" if failed else ""))
    sys.exit(EXIT_PROBLEMS if failed else EXIT_OK)


@cli.command()
@board_argument
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be dropped.")
@click.option("--delete-videos", is_flag=True, help="Also delete the dropped renders' local video files.")
def gc(board: Path, dry_run: bool, delete_videos: bool) -> None:
    """Forget renders that no current scene uses.

    The lock keeps every paid render by default, so reverting a scene to an
    earlier version costs nothing. gc drops the ones no scene of the board
    uses now (and upload records no scene needs); their video files stay on
    disk unless --delete-videos.
    """
    from storyc.inventory import gc as collect
    from storyc.inventory import unused_renders

    compiled, jobs = _compiled_jobs(board, ())
    with _lock_store(board) as store:
        dropped = (
            unused_renders(jobs, store.lock)
            if dry_run
            else collect(jobs, store, compiled.path.parent, delete_videos=delete_videos)
        )
    for d in dropped:
        video = d.render.video.path if d.render.video and d.render.video.path else "no local file"
        click.echo(f"  {d.render.scene:<12} {d.render.state:<9} ${d.render.cost_usd}  {d.key[:19]}  {video}")
    verb = "would drop" if dry_run else "dropped"
    click.echo(f"{verb} {_plural(len(dropped), 'render')} no scene uses")


# --- cut ----------------------------------------------------------------------------------


@cli.command("cut")
@board_argument
@click.option(
    "--backend",
    type=click.Choice(["fal", "animatic"]),
    default="fal",
    show_default=True,
    help="Whose renders to cut: fal's (from the lock) or the animatics.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The MP4 to write. Default: renders/cut.mp4 (renders/animatic/cut.mp4 for animatics), beside the board.",
)
@click.option(
    "--otio",
    "otio_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write an OpenTimelineIO timeline (one clip per scene) for Resolve, Premiere, ...",
)
def cut_command(board: Path, backend: str, output: Path | None, otio_path: Path | None) -> None:
    """Join every scene's render, in storyboard order, into one MP4.

    Scenes that agree in codec, size and frame rate are joined by stream copy
    (lossless, fast); otherwise they are re-encoded to the first scene's size.
    Refuses, listing them, when a scene has no render yet.

    \b
    Examples:
      storyc render board.yaml --backend animatic && storyc cut board.yaml --backend animatic
      storyc cut board.yaml -o film.mp4 --otio film.otio
    """
    from storyc.cut import cut, write_otio

    compiled, _ = _compiled_jobs(board, ())
    default = "renders/animatic/cut.mp4" if backend == "animatic" else "renders/cut.mp4"
    out = output or compiled.path.parent / default
    parts, mode = cut(compiled, backend, out)
    if otio_path is not None:
        write_otio(compiled, parts, otio_path)
    seconds = sum(p.seconds for p in parts)
    how = "stream copy" if mode == "copy" else "re-encoded (scenes differ in size or frame rate)"
    click.echo(f"{out}: {_plural(len(parts), 'scene')}, {seconds:.2f} s, {how}")
    if otio_path is not None:
        click.echo(f"{otio_path}: OpenTimelineIO timeline, {_plural(len(parts), 'clip')}")


# --- sheet --------------------------------------------------------------------------------


@cli.command()
@board_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML file to write. Default: BOARD.html beside the board.",
)
def sheet(board: Path, output: Path | None) -> None:
    """Write a storyboard sheet: one static HTML page to review the board.

    Title, total duration and cost; per scene its shots (duration, prompt
    with references as named chips and thumbnails), start and end frames,
    its render state (as `storyc status` says it), and its video playable
    inline: the fal render when done, else the animatic when one exists.
    Opens from disk (file://): thumbnails and CSS are embedded, no server,
    no network. Videos are linked by paths relative to the HTML file, so
    keep it where it was written relative to the board's renders/.

    \b
    Examples:
      storyc render board.yaml --backend animatic && storyc sheet board.yaml
      xdg-open board.html
      storyc sheet film/board.yaml -o review/film.html
    """
    from storyc.fsutil import atomic_write_bytes
    from storyc.inventory import scene_status
    from storyc.sheet import find_videos, render_sheet

    compiled, jobs = _compiled_jobs(board, ())
    out = output or board.with_suffix(".html")
    statuses = scene_status(compiled.path.parent, jobs, _read_lock(board))
    html = render_sheet(compiled, statuses, find_videos(compiled, statuses), out)
    try:
        atomic_write_bytes(out, html.encode("utf-8"))
    except OSError as exc:
        _die(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(f"{out}: {_plural(len(jobs), 'scene')}; open it in a browser")


# --- schema and init ----------------------------------------------------------------


@cli.command()
def schema() -> None:
    """Print the storyboard JSON Schema (draft 2020-12).

    Save it beside your boards so editors complete and explain every key:

    \b
      storyc schema > storyboard.schema.json
    and start each board with the line
      # yaml-language-server: $schema=storyboard.schema.json
    """
    from storyc.resources import storyboard_schema_path

    click.echo(storyboard_schema_path().read_text("utf-8"), nl=False)


@cli.command()
@click.argument("directory", default=".", type=click.Path(path_type=Path, file_okay=False))
def init(directory: Path) -> None:
    """Create a small working storyboard in DIRECTORY (default: here).

    Writes board.yaml and refs/ with real reference images, and
    storyboard.schema.json, which the board's first line points editors at
    (completion and hover help); refuses to overwrite an existing board.yaml.
    """
    import shutil

    from storyc.resources import scaffold_dir, storyboard_schema_path

    target = directory / "board.yaml"
    if target.exists():
        click.echo(f"storyc: {target} already exists; not overwriting it", err=True)
        sys.exit(EXIT_PROBLEMS)
    source = scaffold_dir()
    for item in sorted(source.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts:
            dest = directory / item.relative_to(source)
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest)
    schema_copy = directory / "storyboard.schema.json"
    if not schema_copy.exists():  # the board's `# yaml-language-server: $schema=` line names it
        shutil.copyfile(storyboard_schema_path(), schema_copy)
    click.echo(f"Created {target}, {directory / 'refs'}/ and {schema_copy} (for editors)")
    click.echo(f"Next: storyc check {target}   then   storyc compile {target}")


# --- diff --------------------------------------------------------------------------------


@cli.command("diff")
@board_argument
@click.option("--base", default="HEAD", show_default=True, metavar="REV", help="The revision to compare from.")
@click.option("--head", default=None, metavar="REV", help="The revision to compare to. Default: the working tree.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for terminals, markdown for a pull request comment, json for CI.",
)
def diff_command(board: Path, base: str, head: str | None, fmt: str) -> None:
    """Compare a storyboard at two git revisions, scene by scene, with the cost of rendering the change.

    Both revisions are compiled from git's objects (no checkout). Each scene
    is added, removed, changed, unchanged or renamed (same request, new id);
    a changed scene shows the request fields that changed, a word diff of its
    prompts with references by name, repainted or moved assets, and
    references gained or dropped. The cost is what rendering the added and
    changed scenes would spend, less what the lock at head has done already.
    Exit status 1 when a revision does not compile (its diagnostics are shown).

    \b
    Examples:
      storyc diff film/board.yaml                       # HEAD -> working tree
      storyc diff film/board.yaml --base origin/main --head HEAD --format markdown
    """
    from storyc.review import review
    from storyc.review_render import render as render_review

    result = review(board, base=base, head=head)
    click.echo(render_review(result, fmt), nl=False)
    sys.exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


# --- entry point and error boundary -----------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: the one place that decides exit codes.

    StorycError (bad input, a lock it can't read, a render that can't start...) -> 1, with its
    diagnostics; usage errors -> 2 (click's); Ctrl-C -> 130; anything else is a bug -> 3.
    """
    try:
        cli.main(args=argv, prog_name="storyc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("\nstoryc: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the error boundary: a bug, never bad input
        _report_bug(exc)
    sys.exit(EXIT_OK)


def _echo_failure(exc: StorycError) -> None:
    for line, diagnostic in zip(exc.lines(), exc.diagnostics, strict=True):
        if line.startswith("storyc: "):
            click.echo(line, err=True)
        else:
            _echo_diagnostics([diagnostic], err=True)


def _report_bug(exc: BaseException) -> NoReturn:
    if os.environ.get("STORYC_TRACEBACK"):
        import traceback

        traceback.print_exception(exc)
    else:
        click.echo(
            f"storyc: unexpected error (a bug in storyc, please report it): {type(exc).__name__}: {exc}\n"
            "Set STORYC_TRACEBACK=1 to see the traceback.",
            err=True,
        )
    sys.exit(EXIT_BUG)
