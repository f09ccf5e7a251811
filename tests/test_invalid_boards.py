"""The invalid-board corpus: every mistake gets a located diagnostic, the right exit status, no traceback.

Each `tests/cases/invalid/<case>.yaml` is one storyboard with (ideally) one
mistake; `<case>.expected` holds the exact diagnostic lines `storyc check`
must print for it, in output order, with the path written `<case>.yaml`
(the check runs with that folder as the working directory). `{ROOT}` in an
expectation stands for the project root (the enclosing git work tree), which
depends on where the checkout lives. A board whose first line is `# exit: 0`
has warnings only; every other board must exit 1.

The expectations say what a user deserves, not what storyc happens to print:
a case storyc gets wrong is listed in `KNOWN_BUGS` (strict xfail), so fixing
the bug turns it into a failure until it is taken off the list.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from storyc.cli import cli

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "cases" / "invalid"
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml"))

SUMMARY = re.compile(r"(\d+) errors?, (\d+) warnings? in 1 file")

# case -> what storyc gets wrong. Take a case off once storyc is fixed.
KNOWN_BUGS: dict[str, str] = {}


def project_root(folder: Path) -> Path:
    """The enclosing git work tree, as the format page defines the project root."""
    return next(p for p in (folder, *folder.parents) if (p / ".git").exists())


def expected_exit(board: Path) -> int:
    first = board.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    match = re.fullmatch(r"# exit: (\d+)\s*", first)
    return int(match.group(1)) if match else 1


def check(name: str) -> Result:
    return CliRunner().invoke(cli, ["check", "--no-cache", name])


def assert_no_crash(result: Result) -> None:
    # CliRunner turns an uncaught exception into exit code 1 without printing it.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "a bug in storyc" not in result.output


def diagnostic_lines(result: Result, board: str) -> list[str]:
    pattern = re.compile(rf"^{re.escape(board)}:\d+:\d+: (error|warning): ")
    return [line for line in result.stdout.splitlines() if pattern.match(line)]


def _params() -> list[object]:
    return [
        pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case]))
        if case in KNOWN_BUGS
        else case
        for case in CASES
    ]


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 30


def test_every_case_has_an_expectation() -> None:
    expectations = {p.stem for p in CORPUS.glob("*.expected")}
    assert expectations == set(CASES)
    assert set(KNOWN_BUGS) <= set(CASES)


@pytest.mark.parametrize("case", _params())
def test_invalid_board(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    board = f"{case}.yaml"
    result = check(board)
    assert_no_crash(result)
    expected = (
        (CORPUS / f"{case}.expected").read_text("utf-8").replace("{ROOT}", str(project_root(CORPUS))).splitlines()
    )
    assert expected, "every case expects at least one diagnostic"
    assert diagnostic_lines(result, board) == expected, result.output
    assert result.exit_code == expected_exit(CORPUS / board), result.output
    summary = SUMMARY.fullmatch(result.stdout.splitlines()[-1])
    assert summary, result.output
    errors = sum(" error: " in line for line in expected)
    assert (int(summary[1]), int(summary[2])) == (errors, len(expected) - errors)


@pytest.mark.parametrize(
    ("link", "asset"),
    [("refs/dawn.png", "refs/dawn.png"), ("shared", "shared/secret.png")],
    ids=["file-symlink", "folder-symlink"],
)
def test_symlink_escaping_the_project_is_refused(
    link: str, asset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(CORPUS / "refs" / "dawn.png", outside / "secret.png")  # a valid image: only the root is wrong
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    shutil.copytree(CORPUS / "refs", project / "refs", ignore=shutil.ignore_patterns("dawn.png"))
    target = outside / "secret.png" if link.endswith(".png") else outside
    (project / link).symlink_to(target, target_is_directory=target.is_dir())
    (project / "board.yaml").write_text(
        "version: 1\n"
        "characters:\n  ellie: {frontal: refs/front.png, references: [refs/side.png]}\n"
        f"styles:\n  dawn: {asset}\n"
        "scenes:\n  - {id: meet, prompt: '@ellie at @dawn', duration: 5}\n",
        "utf-8",
    )
    monkeypatch.chdir(project)
    result = check("board.yaml")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    assert diagnostic_lines(result, "board.yaml") == [
        f"board.yaml:5:9: error: '{asset}' resolves outside the project root ({project.resolve()}); "
        "assets must live inside it"
    ]
    assert result.stdout.splitlines()[-1] == "1 error, 0 warnings in 1 file"
