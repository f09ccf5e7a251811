"""Golden compiled JSON for every example, compared exactly.

Regenerate after an intended change with:  STORYC_UPDATE_GOLDENS=1 pytest tests/test_examples.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from storyc.cli import cli
from storyc.compile.pipeline import compile_file
from storyc.jsontext import dumps_indented

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/board.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"


def declared_profiles(name: str) -> list[str]:
    from ruamel.yaml import YAML

    board = YAML(typ="safe").load((ROOT / "examples" / name / "board.yaml").read_text("utf-8"))
    return list(board.get("profiles") or {})


def test_there_are_at_least_three_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    display = f"examples/{name}/board.yaml"
    result = compile_file(ROOT / display, display, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    assert [d.format() for d in result.diagnostics] == []  # examples are clean: no warnings either
    actual = dumps_indented(result.board.to_json()) + "\n"  # as `storyc compile --json` writes it
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("STORYC_UPDATE_GOLDENS"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(actual, "utf-8")
    assert actual == golden.read_text("utf-8")


PROFILED = [(name, profile) for name in EXAMPLES for profile in declared_profiles(name)]


@pytest.mark.parametrize(("name", "profile"), PROFILED)
def test_example_matches_golden_in_every_profile(name: str, profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same board per profile: another endpoint (and settings), so other keys and prices."""
    monkeypatch.chdir(ROOT)
    display = f"examples/{name}/board.yaml"
    result = compile_file(ROOT / display, display, use_cache=False, profile=profile)
    assert result.board is not None and result.board.profile == profile
    assert [d.format() for d in result.diagnostics] == []
    actual = dumps_indented(result.board.to_json()) + "\n"  # as `storyc compile --json` writes it
    golden = GOLDEN / f"{name}-{profile}.json"
    if os.environ.get("STORYC_UPDATE_GOLDENS"):
        golden.write_text(actual, "utf-8")
    assert actual == golden.read_text("utf-8")


def test_an_example_shows_profiles() -> None:
    assert PROFILED, "the tour's example declares draft and final profiles"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_through_the_cli(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["compile", "--no-cache", "--json", f"examples/{name}/board.yaml"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / f"{name}.json").read_text("utf-8")


def test_elephant_covers_the_four_usage_patterns() -> None:
    data = json.loads((GOLDEN / "elephant.json").read_text("utf-8"))
    meet, play = data["jobs"]
    assert meet["arguments"]["start_image_url"] == "refs/open.png"
    assert "end_image_url" in meet["arguments"]
    assert {"video_url": "refs/ball.mp4"} in meet["arguments"]["elements"]
    assert meet["arguments"]["image_urls"] == ["refs/dawn-palette.jpg"]
    assert len(play["arguments"]["multi_prompt"]) == 3
    assert play["arguments"]["image_urls"] == ["https://example.org/noir.jpg"]


def test_init_scaffolds_a_clean_board(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", str(tmp_path / "film")])
    assert result.exit_code == 0, result.output
    board = tmp_path / "film" / "board.yaml"
    (tmp_path / "film" / ".git").mkdir()
    compiled = compile_file(board, "board.yaml", use_cache=False)
    assert compiled.board is not None and compiled.diagnostics == []
    assert [j.scene for j in compiled.board.jobs] == ["arrive", "turn"]
    assert compiled.board.profile == "draft" and compiled.board.profiles == ("draft", "final")
    assert "storyc plan" in result.output and "--compare" in result.output
    again = runner.invoke(cli, ["init", str(tmp_path / "film")])
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_the_scaffold_prices_a_second_at_its_default_profile(tmp_path: Path) -> None:
    """The comment beside `duration` tells a new user what a second costs in plain `storyc render`."""
    import re
    from decimal import Decimal

    from storyc.compile.endpoints import registry

    assert CliRunner().invoke(cli, ["init", str(tmp_path / "film")]).exit_code == 0
    board = tmp_path / "film" / "board.yaml"
    (tmp_path / "film" / ".git").mkdir()
    compiled = compile_file(board, "board.yaml", use_cache=False).board
    assert compiled is not None and compiled.is_default_profile
    endpoints = {registry()[job.endpoint].price_per_second for job in compiled.jobs}
    said = re.findall(r"\(\$(\d+\.\d+) a second", board.read_text("utf-8"))
    assert said and {Decimal(p) for p in said} == endpoints == {Decimal("0.084")}
