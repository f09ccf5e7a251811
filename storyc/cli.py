"""The `storyc` command line: declare the options, call the command, exit with its status.

Each command is a plain function in `storyc/commands/` (typed arguments in, an
exit status out); this module only declares the command line, with shared
options declared once, and is the error boundary.

Exit status: 0 clean (warnings allowed), 1 problems found or renders failed,
2 wrong command-line usage, 3 a bug in storyc, 130 interrupted.

Only click is imported at start-up; each command imports what it needs, so
`storyc --version` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from storyc import __version__
from storyc.commands import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS

if TYPE_CHECKING:
    from storyc.diagnostics import Diagnostic, StorycError
    from storyc.report import Output

F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.FloatRange):
    """A number >= 0 that is a real amount: `nan` and `inf` pass a plain range check, and mean nothing here."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


# --- options, declared once ---------------------------------------------------------------


def find_board(given: Path | None) -> Path:
    """BOARD.yaml as given; none: ./board.yaml; a folder: its board.yaml, or its one YAML file."""
    folder = Path() if given is None else given
    if given is not None and not given.is_dir():
        return given
    named = folder / "board.yaml"
    if named.exists() or given is None:
        return named
    boards = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if len(boards) == 1:
        return boards[0]
    found = ", ".join(b.name for b in boards) or "no .yaml file"
    raise click.BadParameter(f"{folder} has no board.yaml and {len(boards) or 'no'} other boards ({found}): name one")


def _board_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    return find_board(value)


def _boards_callback(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(find_board(v) for v in value) or (find_board(None),)


board_argument = click.argument(
    "board", type=click.Path(path_type=Path), metavar="[BOARD.yaml]", required=False, callback=_board_callback
)
scene_option = click.option(
    "--scene",
    "scenes",
    multiple=True,
    metavar="ID",
    help="Only this scene (repeat for several). Default: every scene.",
)
no_store_option = click.option(
    "--no-store",
    is_flag=True,
    help="Work without the team store even when one is configured (STORYC_STORE or storyc.toml).",
)
resend_unknown_option = click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again the submits whose outcome is unknown (no answer came back; fal may have accepted them, "
    "so this may pay twice). Without it they are shown and left alone.",
)


def _complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the profiles ./board.yaml declares (or the board named, when click has parsed it:
    while an option waits for its value, click's completion parses no positional arguments)."""
    from storyc.compile.profiles import declared

    given = ctx.params.get("board") or next(iter(ctx.params.get("boards") or ()), None)
    try:
        from ruamel.yaml import YAML

        data = YAML(typ="safe").load(find_board(given).read_text("utf-8"))
    except Exception:  # completion must never fail loudly: no board, bad YAML, ... offer nothing
        return []
    return [name for name in declared(data) if name.startswith(incomplete)]


profile_option = click.option(
    "--profile",
    "-p",
    metavar="NAME",
    default=None,
    shell_complete=_complete_profiles,
    help="The board's profile (fidelity tier: its endpoint and settings) to use, e.g. draft or final. "
    "Default: the board's default_profile, else the first profile it declares.",
)
only_done_in_option = click.option(
    "--only-done-in",
    metavar="PROFILE",
    default=None,
    help="Only the scenes whose request in PROFILE has a done render, in the lock or the team store (e.g. "
    "--profile final --only-done-in draft: pay for a 4K final only where the draft was rendered and could be "
    "reviewed). The others are listed, not sent.",
)
no_cache_option = click.option("--no-cache", is_flag=True, help="Compile from scratch, ignoring .storyc/compile/.")
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


def format_option(*formats: str, help: str = "text for people, json for programs.") -> Callable[[F], F]:
    """`--format text|json` (plus any other formats), and `--json` as its short form."""

    def decorate(command: F) -> F:
        command = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(command)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", *formats, "json"]),
            default="text",
            show_default=True,
            help=help,
        )(command)

    return decorate


def _output(fmt: str, as_json: bool) -> Output:
    from storyc.report import Output

    out = Output("json" if as_json else fmt)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_OUTPUT] = out  # for the error boundary: a failed JSON command still writes JSON
    return out


_OUTPUT = "storyc.output"


def _exit(code: int) -> NoReturn:
    click.get_current_context().exit(code)
    raise AssertionError("unreachable")  # pragma: no cover


# --- the group and its error boundary --------------------------------------------------------


class StorycGroup(click.Group):
    """The error boundary for every command: a StorycError is printed as diagnostics and exits 1,
    and so is a write the disk refused (full, over quota, read-only: `fsutil.DISK_REFUSALS`).

    Here rather than only in `main`, so the same holds through click's test runner and any caller
    of `cli`.  `main` adds what only a process can do: Ctrl-C -> 130 and bugs -> 3.
    """

    WORKFLOW = ("init", "check", "compile", "plan", "render", "status", "pull", "push", "gc", "cut", "sheet", "diff")

    def list_commands(self, ctx: click.Context) -> list[str]:
        """In the order of a day's work (click would sort them), then the rest."""
        names = list(self.commands)
        return [n for n in self.WORKFLOW if n in names] + sorted(n for n in names if n not in self.WORKFLOW)

    def invoke(self, ctx: click.Context) -> Any:
        from storyc.diagnostics import StorycError

        if os.environ.get("NO_COLOR"):
            ctx.color = False  # https://no-color.org: subcommands inherit it
        try:
            return self._invoke_command(ctx)
        except StorycError as exc:
            _echo_failure(exc)
            _json_failure(ctx, exc.diagnostics)
            ctx.exit(getattr(exc, "exit_code", EXIT_PROBLEMS))
        except click.exceptions.Exit as exc:
            if exc.exit_code not in (EXIT_OK, EXIT_INTERRUPTED):
                _json_failure(ctx)
            raise
        except Exception:
            _json_failure(ctx)  # a bug: `main` reports it (exit 3); stdout still parses
            raise

    def _invoke_command(self, ctx: click.Context) -> Any:
        """The command, with a write the disk refused (full, over quota, read-only: whichever write met it)
        raised as the StorycError it is to a user: theirs to fix, not a bug."""
        try:
            return super().invoke(ctx)
        except OSError as exc:
            from storyc.fsutil import DISK_REFUSALS, write_failure

            if exc.errno not in DISK_REFUSALS:
                raise
            raise write_failure(exc) from exc


def _json_failure(ctx: click.Context, diagnostics: Sequence[Diagnostic] = ()) -> None:
    out = ctx.meta.get(_OUTPUT)
    if out is not None:
        out.failed(diagnostics)


@click.group(cls=StorycGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="storyc")
def cli() -> None:
    """storyc compiles storyboards (YAML, in git) into video requests for fal's
    Kling O3 reference-to-video API (4K, or a cheaper tier for drafts), and
    renders them.

    \b
    A typical session:
      storyc init film/                                # a small working board to start from
      storyc check film/board.yaml                     # every problem, at file:line:col
      storyc render film/board.yaml --backend animatic # a free local preview
      storyc cut film/board.yaml --backend animatic    # ... joined into one film
      storyc plan film/board.yaml --compare            # each profile's price (draft, final)
      storyc render film/board.yaml                    # the drafts, on fal (asks first; needs FAL_KEY)
      storyc render film/board.yaml --profile final --only-done-in draft   # 4K, drafted scenes only
      storyc status film/board.yaml                    # what is rendered, locally and in the lock
      storyc diff film/board.yaml                      # what your change does, scene by scene, and costs

    BOARD.yaml defaults to ./board.yaml; a folder stands for its board.yaml.
    --profile NAME picks one of the board's profiles (fidelity tiers); the
    default is the board's default_profile (`storyc init` makes it draft).
    Every command that reports takes --format text|json (or --json).
    Exit status: 0 ok (warnings allowed), 1 problems found or a render failed,
    2 usage error, 3 a bug in storyc (please report it), 130 interrupted.
    """


# --- compiling ------------------------------------------------------------------------------


@cli.command()
@click.argument(
    "boards", nargs=-1, type=click.Path(path_type=Path), metavar="[BOARD.yaml]...", callback=_boards_callback
)
@format_option(
    "github",
    help="text for people (each problem with its source line and how to fix it), github for GitHub "
    "Actions annotations (one ::error or ::warning line each), json for programs.",
)
@click.option(
    "--locked",
    is_flag=True,
    help="Also fail when BOARD.lock's scene keys are out of date with the board (for teams that commit locks); "
    "a board without a lock file passes. `storyc lock sync` updates the keys without rendering.",
)
@no_cache_option
@profile_option
def check(boards: tuple[Path, ...], fmt: str, as_json: bool, locked: bool, no_cache: bool, profile: str | None) -> None:
    """Check storyboards: schema, names, templates, assets, limits.

    Prints every problem as PATH:LINE:COL: error|warning: MESSAGE, with the
    source line it is about, its rule code (SC001...) and how to fix it, then
    a summary. A board with profiles is checked in each of them (a scene may
    be fine in 4K and over a cheaper tier's limits); --profile checks one.
    Nothing is sent anywhere.

    \b
    Example:
      storyc check examples/*/board.yaml
    """
    from storyc.commands.check import check as run

    _exit(run(boards, out=_output(fmt, as_json), locked=locked, no_cache=no_cache, profile=profile))


@cli.command("compile")
@board_argument
@scene_option
@format_option()
@no_cache_option
@profile_option
def compile_command(
    board: Path, scenes: tuple[str, ...], fmt: str, as_json: bool, no_cache: bool, profile: str | None
) -> None:
    """Compile a storyboard into its fal requests (one per scene).

    Shows each scene's request: prompt with positional references (@Element1,
    @Image1), the references table, seconds, cost and content key. With
    --json, prints the compiled form: {"storyboard", "jobs": [...]} (and
    "profile" for a board with profiles). Nothing is sent anywhere.

    \b
    Examples:
      storyc compile examples/elephant/board.yaml
      storyc compile examples/elephant/board.yaml --scene meet --json
      storyc compile examples/elephant/board.yaml --profile draft
    """
    from storyc.commands.compile import compile_board

    _exit(compile_board(board, scenes, out=_output(fmt, as_json), no_cache=no_cache, profile=profile))


# --- rendering: plan, render, status, pull, gc -------------------------------------------


@cli.command()
@board_argument
@scene_option
@backend_option
@size_option
@no_store_option
@resend_unknown_option
@profile_option
@only_done_in_option
@click.option(
    "--compare",
    is_flag=True,
    help="Show what each scene would cost in every profile of the board (without profiles: on every fidelity "
    "tier of its endpoint, standard, pro and 4k) and as a free animatic, less what the lock already has.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when rendering would pay for something, 0 when it would not (1 on problems), as terraform plan.",
)
@click.option(
    "--out",
    "save_to",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PLAN.json",
    help="Also save the plan, for `storyc render --plan PLAN.json` to pay exactly it (as terraform plan -out).",
)
@format_option()
def plan(
    board: Path,
    scenes: tuple[str, ...],
    backend: str,
    size: str,
    no_store: bool,
    resend_unknown: bool,
    profile: str | None,
    only_done_in: str | None,
    compare: bool,
    detailed_exitcode: bool,
    save_to: Path | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Show what `render` would do and cost, scene by scene. Sends nothing.

    Each scene is cached (its request was rendered before, also if the scene
    was reverted to it), resume (fal accepted it earlier; picked up by its
    request id at no new cost), render (new or changed: paid) or unknown (a
    submit got no answer, so fal may have it: not sent again unless
    `render --resend-unknown`), or store: done in the team store by another
    clone, fetched from there at no cost (the store is asked, nothing else).

    \b
    Examples:
      storyc plan examples/elephant/board.yaml
      storyc plan examples/elephant/board.yaml --compare     # every profile's price
      storyc plan board.yaml --profile final --only-done-in draft
      storyc plan board.yaml --profile final --out final.plan.json   # then: render --plan final.plan.json
    """
    from storyc.commands.plan import plan as run

    out = _output(fmt, as_json)
    code = run(
        board,
        scenes,
        out=out,
        backend=backend,
        size=size,
        use_store=not no_store,
        resend_unknown=resend_unknown,
        detailed_exitcode=detailed_exitcode,
        compare=compare,
        profile=profile,
        only_done_in=only_done_in,
        save_to=save_to,
    )
    _exit(code)


@cli.command()
@board_argument
@scene_option
@profile_option
@only_done_in_option
@backend_option
@size_option
@click.option("--yes", "-y", is_flag=True, help="Spend without asking (for scripts and CI).")
@click.option(
    "--max-cost",
    type=FiniteFloat(min=0),
    metavar="USD",
    help=(
        "Refuse a plan that would spend more than this. Compared with the full estimate: the certain price "
        "plus the uncertain part (scenes with a video input, which fal may price differently)."
    ),
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
@resend_unknown_option
@no_store_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="PLAN.json",
    help="Pay exactly a plan saved by `storyc plan --out`: refused if the board changed since, or if the lock "
    "changed so that more would be paid; what was done meanwhile is skipped. --yes/--max-cost apply to its total.",
)
@format_option()
def render(
    board: Path,
    scenes: tuple[str, ...],
    profile: str | None,
    only_done_in: str | None,
    backend: str,
    size: str,
    yes: bool,
    max_cost: float | None,
    concurrency: int,
    upload_ttl: float,
    cancel_on_interrupt: bool,
    resend_unknown: bool,
    no_store: bool,
    plan_file: Path | None,
    fmt: str,
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
      storyc render board.yaml --profile final --only-done-in draft
      storyc render board.yaml --plan final.plan.json       # pays what `plan --out` saved, no more
      FAL_KEY=... storyc render board.yaml --yes --json
    Exit status: 0 all rendered, 1 a scene failed or spending refused, 130 interrupted.
    """
    from storyc.commands.render import Spending
    from storyc.commands.render import render as run

    code = run(
        board,
        scenes,
        out=_output(fmt, as_json),
        backend=backend,
        size=size,
        spending=Spending(yes=yes, max_cost=max_cost),
        concurrency=concurrency,
        upload_ttl_hours=upload_ttl,
        cancel_on_interrupt=cancel_on_interrupt,
        resend_unknown=resend_unknown,
        use_store=not no_store,
        profile=profile,
        only_done_in=only_done_in,
        plan_file=plan_file,
    )
    _exit(code)


@cli.command()
@board_argument
@scene_option
@profile_option
@backend_option
@size_option
@format_option()
def status(
    board: Path, scenes: tuple[str, ...], profile: str | None, backend: str, size: str, fmt: str, as_json: bool
) -> None:
    """Show each scene's render: done (with its file), stale, submitted, failed, lost, or new.

    Also checks each downloaded video against the sha256 in the lock:
    missing or altered files are listed (`storyc pull` restores them).
    Sends nothing. Exit status 1 when a scene is not done.
    """
    from storyc.commands.status import status as run

    _exit(run(board, scenes, out=_output(fmt, as_json), backend=backend, size=size, profile=profile))


@cli.command()
@board_argument
@scene_option
@profile_option
@no_store_option
@format_option()
def pull(board: Path, scenes: tuple[str, ...], profile: str | None, no_store: bool, fmt: str, as_json: bool) -> None:
    """Download rendered videos that are missing (or altered) locally: from the team store, else fal's URL.

    For a fresh clone of a repository that commits its lock: every done
    render is fetched and checked against its sha256, from the team store
    when one is configured (it keeps every paid video; fal's URLs expire),
    else from the URL in the lock. Never renders, never pays, needs no API key.
    """
    from storyc.commands.pull import pull as run

    _exit(run(board, scenes, out=_output(fmt, as_json), use_store=not no_store, profile=profile))


@cli.command()
@board_argument
@format_option()
def push(board: Path, fmt: str, as_json: bool) -> None:
    """Put the done renders the team store lacks into it (for a team that adds a store later).

    Each video is checked against the sha256 in the lock, uploaded to the
    store, then its record written (create-only: what is there stays). Then
    `storyc render` on any clone takes those scenes from the store for $0,
    and `storyc pull` fetches them even after fal's URLs expire.
    The store is STORYC_STORE, else `store = "..."` in storyc.toml beside the board.

    \b
    Example:
      STORYC_STORE=s3://film-renders/ad-spot storyc push board.yaml
    """
    from storyc.commands.push import push as run

    _exit(run(board, out=_output(fmt, as_json)))


@cli.command()
@board_argument
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be dropped.")
@click.option("--delete-videos", is_flag=True, help="Also delete the dropped renders' local video files.")
@click.option(
    "--animatics",
    is_flag=True,
    help="Also delete animatics no current scene has (in renders/animatic/ and .storyc/animatic/).",
)
@click.option(
    "--profile",
    "-p",
    "profiles",
    multiple=True,
    metavar="NAME",
    shell_complete=_complete_profiles,
    help="Keep only the renders current in this profile (repeat for several), e.g. --profile final once the "
    "drafts are no longer wanted. Default: keep what any profile of the board uses.",
)
@format_option()
def gc(
    board: Path,
    dry_run: bool,
    delete_videos: bool,
    animatics: bool,
    profiles: tuple[str, ...],
    fmt: str,
    as_json: bool,
) -> None:
    """Forget renders that no current scene uses.

    The lock keeps every paid render by default, so reverting a scene to an
    earlier version costs nothing. gc drops the ones no scene of the board
    uses now, in any of its profiles (and upload records no scene needs);
    their video files stay on disk unless --delete-videos.
    """
    from storyc.commands.gc import gc as run

    _exit(
        run(
            board,
            out=_output(fmt, as_json),
            dry_run=dry_run,
            delete_videos=delete_videos,
            animatics=animatics,
            profiles=profiles,
        )
    )


# --- reviewing: cut, sheet, diff ----------------------------------------------------------


@cli.command("cut")
@board_argument
@profile_option
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
    help="The MP4 to write. Default: renders/cut.mp4 (renders/cut-PROFILE.mp4 for a board with profiles; "
    "renders/animatic/cut.mp4 for animatics), beside the board.",
)
@click.option(
    "--otio",
    is_flag=True,
    help="Also write an OpenTimelineIO timeline (one clip per scene) for Resolve, Premiere, ... beside the "
    "MP4, with its name: cut.otio (cut-PROFILE.otio; OUT.otio for -o OUT.mp4). Media paths in it are relative "
    "to it, so the folder can be moved or sent whole.",
)
@click.option(
    "--otio-path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the timeline here instead (implies --otio).",
)
@format_option()
def cut_command(
    board: Path,
    profile: str | None,
    backend: str,
    output: Path | None,
    otio: bool,
    otio_path: Path | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Join every scene's render, in storyboard order, into one MP4.

    Scenes that agree in codec, size and frame rate are joined by stream copy
    (lossless, fast); otherwise they are re-encoded to the first scene's size.
    Refuses, listing them, when a scene has no render yet.

    \b
    Examples:
      storyc render board.yaml --backend animatic && storyc cut board.yaml --backend animatic
      storyc cut board.yaml -o film.mp4 --otio          # and film.otio beside it
      storyc cut board.yaml --profile draft --otio-path edit/draft.otio
    """
    from storyc.commands.cut import cut

    timeline = otio_path or otio  # --otio-path wins; --otio alone: beside the MP4
    _exit(cut(board, out=_output(fmt, as_json), backend=backend, output=output, otio=timeline, profile=profile))


@cli.command()
@board_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML file to write. Default: BOARD.html beside the board.",
)
@profile_option
@click.option(
    "--watch",
    is_flag=True,
    help="Keep the sheet up to date: rewrite it at every save of the board, its templates or its assets; "
    "an open page reloads itself. Ctrl-C stops.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Like --watch, and serve the sheet on 127.0.0.1 (for browsers that block file:// reloads); "
    "clicking a still's candidate there writes its pick: into the board.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The port for --serve (default: any free one).")
@format_option()
def sheet(
    board: Path,
    output: Path | None,
    profile: str | None,
    watch: bool,
    serve: bool,
    port: int,
    fmt: str,
    as_json: bool,
) -> None:
    """Write a storyboard sheet: one static HTML page to review the board.

    Title, total duration and cost; per scene its shots (duration, prompt
    with references as named chips and thumbnails), start and end frames,
    its render state (as `storyc status` says it), and its video playable
    inline: the fal render when done, else the animatic when one exists.
    A board with profiles shows each scene's videos side by side instead:
    its animatic, then its render in every profile (draft, final...), each
    labelled with its state, price and tier; --profile picks whose request
    is the scene's text and price (all lanes are shown). Opens from disk
    (file://): thumbnails and CSS are embedded, no server, no network.
    Videos are linked by paths relative to the HTML file, so keep it where
    it was written relative to the board's renders/.

    \b
    Examples:
      storyc render board.yaml --backend animatic && storyc sheet board.yaml
      xdg-open board.html
      storyc sheet film/board.yaml -o review/film.html
      storyc sheet board.yaml --watch      # open board.html: it follows every save
      storyc sheet board.yaml --serve      # the same, served; pick a still's candidate by clicking it
    """
    from storyc.commands.sheet import sheet as run

    code = run(board, out=_output(fmt, as_json), output=output, profile=profile, watch=watch, serve=serve, port=port)
    _exit(code)


@cli.command("diff")
@board_argument
@click.option("--base", default="HEAD", show_default=True, metavar="REV", help="The revision to compare from.")
@click.option("--head", default=None, metavar="REV", help="The revision to compare to. Default: the working tree.")
@profile_option
@format_option("markdown", help="text for terminals, markdown for a pull request comment, json for CI.")
def diff_command(board: Path, base: str, head: str | None, profile: str | None, fmt: str, as_json: bool) -> None:
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
    from storyc.commands.diff import diff

    fmt = "json" if as_json else fmt
    _exit(diff(board, out=_output(fmt, as_json), fmt=fmt, base=base, head=head, profile=profile))


# --- starting a project: schema and init ----------------------------------------------------


@cli.command()
@format_option(help="The schema is JSON whatever the format; accepted so every command takes --format.")
def schema(fmt: str, as_json: bool) -> None:
    """Print the storyboard JSON Schema (draft 2020-12).

    Save it beside your boards so editors complete and explain every key:

    \b
      storyc schema > storyboard.schema.json
    and start each board with the line
      # yaml-language-server: $schema=storyboard.schema.json
    """
    from storyc.commands.project import schema as run

    _exit(run(out=_output(fmt, as_json)))


@cli.command()
@click.argument("directory", default=".", type=click.Path(path_type=Path, file_okay=False))
@format_option()
def init(directory: Path, fmt: str, as_json: bool) -> None:
    """Create a small working storyboard in DIRECTORY (default: here).

    Writes board.yaml and refs/ with real reference images,
    storyboard.schema.json, which the board's first line points editors at
    (completion and hover help), and a .gitattributes line that merges
    board.lock with `storyc lock merge` (see its --help); refuses to overwrite
    an existing board.yaml.
    """
    from storyc.commands.project import init as run

    _exit(run(directory, out=_output(fmt, as_json)))


# --- lock: merging two branches' lock files --------------------------------------------


@cli.group("lock")
def lock_group() -> None:
    """The lock file: merge it across git branches, repair conflict markers, adopt a request fal took, sync.

    Merging (two branches that each rendered scenes):

    \b
    Set up: the .gitattributes line is committed (`storyc init` writes it),
    the git config line is needed once per clone:
      echo 'board.lock merge=storyc-lock' >> .gitattributes
      git config merge.storyc-lock.driver "storyc lock merge %O %A %B"
    Then `git merge` merges lock files itself. Where git could not run the
    driver (GitHub's conflict editor, a clone without the config line), fix
    the conflict markers with `storyc lock repair BOARD.yaml`.

    A scene whose submit got no answer (`unknown`): `storyc lock adopt
    --scene ID --request-id REQUEST` records the request fal's dashboard
    shows, so `render` resumes it instead of paying again.

    After editing a board without rendering it, `storyc lock sync BOARD.yaml`
    records its scenes' keys, for `storyc check --locked`.
    """


@lock_group.command("merge")
@click.argument("base", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("ours", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("theirs", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("name", required=False, metavar="[PATH]")
def lock_merge(base: Path, ours: Path, theirs: Path, name: str | None) -> None:
    """git's merge driver for lock files: merge BASE, OURS and THEIRS into OURS.

    \b
    Set up once per clone (git config is not committed; add --global for all):
      git config merge.storyc-lock.driver "storyc lock merge %O %A %B"
    and commit this line in .gitattributes (`storyc init` writes it):
      board.lock merge=storyc-lock

    The pattern is `board.lock`, not `*.lock`: `*.lock` would also route
    uv.lock, poetry.lock, Cargo.lock, yarn.lock... to this driver, which
    refuses them (so git would report conflicts its line merge avoids). A
    board with another name needs its own line, e.g. `intro.lock
    merge=storyc-lock`. Append %P to the driver line to name the file in
    error messages.

    \b
    Rules: renders are the union of both sides; for one key the more advanced
    state wins, done > submitted > unknown > intent > lost > failed (never drop
    a request id or a paid video; an uncertain submit stays visible), then the
    entry with more information (verified video, video URL, request id).
    Two request ids for one key (two clones each paid for it) are both kept:
    the entry keeps one, the other is listed under `also_paid`; `storyc
    render` resumes it and fetches its video at no cost, never re-submits.
    Uploads: the newer wins. Scenes: the side that changed a scene since BASE,
    else ours (the next `storyc render` or `storyc gc` rewrites them anyway).
    The result is written atomically and sorted; its renders and uploads are
    the same whichever side is ours.

    Exit status: 0 merged, 1 a version is not a valid lock (the message says
    where); git then reports a conflict and leaves OURS as it was.
    """
    from storyc.commands.lock import merge

    _exit(merge(base, ours, theirs, name, out=_output("text", False)))


@lock_group.command("repair")
@board_argument
@format_option()
def lock_repair(board: Path, fmt: str, as_json: bool) -> None:
    """Resolve git conflict markers in BOARD.lock by merging its two sides.

    For a lock that git (or GitHub) left with <<<<<<< ======= >>>>>>> markers,
    because the merge driver was not configured or could not run: both sides
    are read, merged with the rules of `storyc lock merge`, and written back
    atomically; then `git add` it. A lock without markers is left untouched.

    \b
    To let `git merge` do this itself next time:
      git config merge.storyc-lock.driver "storyc lock merge %O %A %B"
    with `board.lock merge=storyc-lock` in .gitattributes (see `storyc lock merge --help`).

    \b
    Example:
      storyc lock repair film/board.yaml && git add film/board.lock
    """
    from storyc.commands.lock import repair

    _exit(repair(board, out=_output(fmt, as_json)))


@lock_group.command("sync")
@board_argument
@format_option()
def lock_sync(board: Path, fmt: str, as_json: bool) -> None:
    """Record the board's current scene keys in BOARD.lock, so `check --locked` passes.

    The lock's `scenes:` map says which request each scene of the board is
    (its default profile's); `storyc check --locked` (and the `storyc-lock`
    pre-commit hook) fails when the map and the board differ. `render`
    updates the map as it goes; this updates it without rendering: nothing
    is sent, paid or forgotten (every render the lock has stays, so
    reverting a change is still free).

    \b
    Example:
      storyc lock sync film/board.yaml && git add film/board.lock
    """
    from storyc.commands.lock import sync

    _exit(sync(board, out=_output(fmt, as_json)))


def _request_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """fal's request ids are UUIDs; this one goes into a URL path, so nothing else gets through."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}", value):
        raise click.BadParameter(f"{value!r} is not a fal request id (letters, digits and '-', like a UUID)")
    return value


@lock_group.command("adopt")
@board_argument
@click.option("--scene", metavar="ID", help="The scene whose submit got no answer.")
@click.option("--still", metavar="NAME", help="The still whose submit got no answer (instead of --scene).")
@click.option(
    "--request-id",
    required=True,
    metavar="ID",
    callback=_request_id,
    help="The request fal shows for it at https://fal.ai/dashboard/requests.",
)
@profile_option
@no_store_option
@format_option()
def lock_adopt(
    board: Path,
    scene: str | None,
    still: str | None,
    request_id: str,
    profile: str | None,
    no_store: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Record a request fal accepted as a scene's (or a still's) submit, so render resumes it instead of paying again.

    For a scene (`--scene`) or a still (`--still`) whose submit got no answer (`unknown` in plan, status and
    render: a dropped connection, a kill): if fal's dashboard shows the
    request (same endpoint, same prompt), adopt it. fal is asked first that
    it knows the request on the scene's endpoint; then the lock (and the
    team store, when there is one) records it as submitted, and the next
    `storyc render` waits for it and downloads it at no new cost. Needs
    FAL_KEY. The alternative, `render --resend-unknown`, may pay twice.

    \b
    Example:
      storyc lock adopt film/board.yaml --scene meet --request-id 764cabcf-b745-4b3e-ae38-1200304cf45b
    """
    from storyc.commands.lock import adopt

    code = adopt(
        board, scene, request_id, out=_output(fmt, as_json), profile=profile, use_store=not no_store, still=still
    )
    _exit(code)


@cli.command()
def lsp() -> None:
    """Run the language server for boards, on stdin/stdout (an editor starts it).

    Diagnostics as `storyc check` gives them (in each profile) while you type,
    completion of @names, keys, profiles, scenes and asset paths, hover
    (a reference's position in its scene, a scene's price and lock state), go
    to definition, rename, the board's outline and each scene's price inline.
    Needs nothing else; it never renders or sends anything.

    \b
    Example (Neovim, Helix, VS Code: see the README):
      storyc lsp
    """
    from storyc.lsp.server import serve

    serve()


# --- entry point -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: the one place that decides exit codes.

    StorycError (bad input, a lock it can't read, a render that can't start...) -> 1, with its
    diagnostics (in the group above); usage errors -> 2 (click's); Ctrl-C -> 130; anything else
    is a bug -> 3.
    """
    try:
        code = cli.main(args=argv, prog_name="storyc", standalone_mode=False)  # a command's ctx.exit(N) returns N
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
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _echo_failure(exc: StorycError) -> None:
    from storyc.report import Output

    out = Output()
    for line, diagnostic in zip(exc.lines(), exc.diagnostics, strict=True):
        out.echo(line if line.startswith("storyc: ") else out.diagnostic_line(diagnostic), err=True)


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
