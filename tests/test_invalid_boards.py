"""The invalid-board corpus: every mistake gets a located diagnostic, exit 1, no traceback.

Each `tests/invalid/<case>.yaml` has a `<case>.expected` with the exact
diagnostic lines. A board whose first line is `# exit: 0` has warnings only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import make_image

from storyc.cli import cli

CORPUS = Path(__file__).resolve().parent / "invalid"
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml"))


def expected_exit(board: Path) -> int:
    match = re.match(r"# exit: (\d+)", board.read_text("utf-8"))
    return int(match.group(1)) if match else 1


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_invalid_board(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    result = CliRunner().invoke(cli, ["check", "--no-cache", f"{case}.yaml"])
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exit_code == expected_exit(CORPUS / f"{case}.yaml"), output
    pattern = re.compile(rf"^{re.escape(case)}\.yaml:\d+:\d+: (error|warning): ")
    diagnostics = [line for line in result.stdout.splitlines() if pattern.match(line)]
    # {ROOT}: the project root, which is wherever this checkout lives
    root = str(CORPUS.parent.parent.resolve())
    expected = (CORPUS / f"{case}.expected").read_text("utf-8").replace("{ROOT}", root).splitlines()
    assert expected, "every case expects at least one diagnostic"
    assert diagnostics == expected
    assert re.fullmatch(r"\d+ errors?, \d+ warnings? in 1 file", result.stdout.splitlines()[-1])


def test_symlink_escaping_the_project_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = make_image(tmp_path / "outside" / "secret.png")
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    make_image(project / "refs" / "front.png")
    make_image(project / "refs" / "side.png")
    (project / "refs" / "dawn.png").symlink_to(outside)
    (project / "board.yaml").write_text(
        "version: 1\n"
        "characters:\n  ellie: {frontal: refs/front.png, references: [refs/side.png]}\n"
        "styles:\n  dawn: refs/dawn.png\n"
        "scenes:\n  - {id: a, prompt: '@ellie at @dawn', duration: 5}\n"
    )
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["check", "--no-cache", "board.yaml"])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"board.yaml:5:9: error: 'refs/dawn.png' resolves outside the project root ({project.resolve()}); "
        "assets must live inside it"
    )
