"""`storyc init` and `storyc schema`: starting a project."""

from __future__ import annotations

from pathlib import Path

from storyc.commands import EXIT_OK
from storyc.diagnostics import StorycError
from storyc.report import Output


def schema(*, out: Output) -> int:
    from storyc.resources import storyboard_schema_path

    out.echo(storyboard_schema_path().read_text("utf-8"), nl=False)  # JSON already, whatever the format
    return EXIT_OK


def init(directory: Path, *, out: Output) -> int:
    import shutil

    from storyc.lock.merge import GIT_CONFIG_LINE, ensure_gitattributes
    from storyc.resources import scaffold_dir, storyboard_schema_path

    target = directory / "board.yaml"
    if target.exists():
        raise StorycError(f"{target} already exists; not overwriting it")
    written: list[Path] = []
    source = scaffold_dir()
    for item in sorted(source.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts:
            dest = directory / item.relative_to(source)
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest)
            written.append(dest)
    schema_copy = directory / "storyboard.schema.json"
    if not schema_copy.exists():  # the board's `# yaml-language-server: $schema=` line names it
        shutil.copyfile(storyboard_schema_path(), schema_copy)
        written.append(schema_copy)
    if ensure_gitattributes(directory):
        written.append(directory / ".gitattributes")
    if _ensure_gitignore(directory):
        written.append(directory / ".gitignore")
    if out.json:
        out.data({"board": str(target), "written": [str(p) for p in written]})
        return EXIT_OK
    out.echo(f"Created {target}, {directory / 'refs'}/ and {schema_copy} (for editors)")
    out.echo(f"{directory / '.gitattributes'} merges board.lock across branches once you run: {GIT_CONFIG_LINE}")
    out.echo(
        f"Next: storyc check {target}   then a free preview: storyc render {target} --backend animatic"
        f"   then what each profile would cost on fal (draft, final): storyc plan {target} --compare"
    )
    return EXIT_OK


# What storyc generates beside a board: never committed (board.lock and storyc.toml are).
GITIGNORE_LINES = ("renders/", ".storyc/", "*.html")


def _ensure_gitignore(directory: Path) -> bool:
    """Add storyc's generated paths to DIRECTORY/.gitignore; False when every line is there already."""
    from storyc.fsutil import ensure_lines

    comment = "storyc: renders, caches and sheets are generated (commit board.yaml, refs/ and board.lock)"
    return ensure_lines(directory / ".gitignore", GITIGNORE_LINES, comment)
