"""The `storyc` command line: parse arguments, call the core, print.

Exit status: 0 clean (warnings allowed), 1 problems found or renders failed,
2 wrong command-line usage, 3 a bug in storyc, 130 interrupted.

Only click is imported at start-up; each command imports what it needs, so
`storyc --version` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from storyc import __version__

if TYPE_CHECKING:
    from storyc.compiler import CompiledBoard, CompileResult, Job
    from storyc.diagnostics import Diagnostic

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="storyc")
def cli() -> None:
    """storyc compiles storyboards (YAML, in git) into video requests for fal's
    Kling O3 4K reference-to-video API, and renders them.

    \b
    A typical session:
      storyc init film/              # a small working board to start from
      storyc check film/board.yaml   # every problem, at file:line:col
      storyc compile film/board.yaml # the requests, with cost and content keys

    Exit status: 0 ok (warnings allowed), 1 problems found, 2 usage error.
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
@no_cache_option
def check(boards: tuple[Path, ...], fmt: str, no_cache: bool) -> None:
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
    sys.exit(EXIT_PROBLEMS if failed else EXIT_OK)


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

    Writes board.yaml and refs/ with real reference images; refuses to
    overwrite an existing board.yaml.
    """
    import shutil

    from storyc.resources import scaffold_dir

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
    click.echo(f"Created {target} and {directory / 'refs'}/")
    click.echo(f"Next: storyc check {target}   then   storyc compile {target}")


# --- entry point and error boundary -----------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: the one place that decides exit codes."""
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
