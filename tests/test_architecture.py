"""The stages of storyc import only down the pipeline (ARCHITECTURE.md), read from the source with `ast`.

The order of the stages is written once, here.  A module may import its own
stage, any stage before it, and the shared modules at the bottom; the top
(the command line, `commands/`, `report.py`) may import anything.  Imports
under `TYPE_CHECKING` and inside functions count too: a type is a tie.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "storyc"

# Bottom to top.  "shared" is the loose modules every stage may use; "top" is what drives the stages.
STAGES = ("shared", "compile", "media", "lock", "team", "render", "preview", "review", "top")
SHARED = {"diagnostics", "ffmpeg", "files", "fsutil", "jsontext", "progress", "resources"}
TOP = {"cli", "commands", "lsp", "report", "__main__"}


def stage_of(module: str) -> str:
    """The stage of a dotted module name under storyc (`storyc.render.ledger` -> `render`)."""
    parts = module.split(".")
    assert parts[0] == "storyc", module
    first = parts[1] if len(parts) > 1 else "__init__"
    if first in STAGES:
        return first
    if first in SHARED or first in {"__init__", "__version__"}:
        return "shared"
    if first in TOP:
        return "top"
    raise AssertionError(f"storyc.{first} belongs to no stage: add it to a stage folder or to SHARED/TOP here")


def module_name(path: Path, package: Path) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every storyc module a file imports, with its line: `from storyc.x import y` may name a module y."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("storyc")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base.startswith("storyc"):
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def upward_imports(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        here = stage_of(module_name(path, root))
        for line, target in imported_modules(path, root):
            there = stage_of(target)
            if STAGES.index(there) > STAGES.index(here):
                problems.append(f"{path.relative_to(root.parent)}:{line}: {here} imports {target} ({there})")
    return problems


def test_every_stage_imports_only_down_the_pipeline() -> None:
    assert upward_imports(PACKAGE) == []


def test_every_stage_folder_is_a_known_stage_with_a_docstring() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders - {"commands", "lsp"} == set(STAGES) - {"shared", "top"}  # commands and lsp are top
    for path in PACKAGE.rglob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text("utf-8"))), f"{path} has no docstring"


def test_few_loose_modules() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "cli"}
    assert len(loose) <= 12, sorted(loose)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from storyc.render.run import RunContext\n", ["storyc/team/layer.py:1: team imports storyc.render.run"]),
        ("if TYPE_CHECKING:\n    from storyc.preview import sheet\n", ["storyc/team/layer.py:2: team imports"]),
        ("def f() -> None:\n    import storyc.review.gitfs\n", ["storyc/team/layer.py:2: team imports"]),
        ("from ..render import ledger\n", ["storyc/team/layer.py:1: team imports storyc.render.ledger"]),
        ("from storyc.lock.lockfile import Lock\nfrom storyc.compile import model\nfrom . import store\n", []),
    ],
)
def test_the_check_sees_an_upward_import(tmp_path: Path, source: str, expected: list[str]) -> None:
    """The check itself: a team module that reaches up to render, preview or review is reported at its line."""
    package = tmp_path / "storyc"
    (package / "team").mkdir(parents=True)
    (package / "team" / "__init__.py").write_text('"""Team."""\n')
    (package / "team" / "layer.py").write_text(source)
    found = upward_imports(package)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), problem
