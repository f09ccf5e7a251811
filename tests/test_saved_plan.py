"""A saved plan binds the price reviewed to the price paid: `plan --out PLAN.json`, then `render --plan PLAN.json`.

fal is the fake fal server, fal_client the real one; what is paid is counted as the jobs the fake
accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_BOARD, BASIC_IMAGES, make_image, make_project

from storyc.cli import cli
from storyc.lock.lockfile import Lock, dumps


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("STORYC_STORE", "none")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def saved_plan() -> dict[str, object]:
    code, _, err = run("plan", "board.yaml", "--out", "plan.json")
    assert code == 0, err
    assert "saved to plan.json: `storyc render board.yaml --plan plan.json` pays this plan" in err
    data: dict[str, object] = json.loads(Path("plan.json").read_text("utf-8"))
    return data


def test_render_pays_exactly_the_saved_plan(board: Path, fake_fal: FakeFal) -> None:
    plan = saved_plan()
    assert plan["format"] == "storyc-plan/1" and plan["cost_usd"] == "6.30"  # (8 + 7) s x $0.42, exactly
    assert [p["scene"] for p in plan["pay"]] == ["meet", "play"]  # type: ignore[attr-defined]
    code, out, err = run("render", "board.yaml", "--plan", "plan.json", "--yes", "--json")
    assert code == 0, err
    assert fake_fal.accepted_count() == 2
    assert [s["state"] for s in json.loads(out)["scenes"]] == ["done", "done"]
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--yes")  # all done since: nothing paid
    assert code == 0 and "done since the plan was made, not paid again: meet, play" in err
    assert fake_fal.accepted_count() == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda board: board.write_text(board.read_text("utf-8").replace("@ellie follows", "@ellie chases")),
        lambda board: make_image(board.parent / "refs/rex-front.png", color="navy"),  # a repainted asset
    ],
    ids=["prompt", "asset"],
)
def test_a_board_changed_since_the_plan_is_refused(board: Path, fake_fal: FakeFal, change: object) -> None:
    saved_plan()
    change(board)  # type: ignore[operator]
    code, out, err = run("render", "board.yaml", "--plan", "plan.json", "--yes", "--json")
    assert code == 1
    assert "plan.json: board.yaml changed since this plan was made" in err
    assert json.loads(out)["ok"] is False
    assert fake_fal.accepted_count() == 0


def test_a_lock_that_would_pay_more_is_refused_and_what_was_done_is_skipped(board: Path, fake_fal: FakeFal) -> None:
    assert run("render", "board.yaml", "--scene", "meet", "--yes")[0] == 0
    plan = saved_plan()
    assert [p["scene"] for p in plan["pay"]] == ["play"]  # type: ignore[attr-defined]
    # meet's paid render forgotten (a hand edit, a bad merge): rendering now would pay for it again
    Path("board.lock").write_text(dumps(Lock()), "utf-8")
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--yes")
    assert code == 1
    assert "the lock changed since this plan was made: rendering now would also pay for meet ($3.36)" in err
    assert fake_fal.accepted_count() == 1


def test_consent_and_max_cost_are_about_the_plans_total(board: Path, fake_fal: FakeFal) -> None:
    saved_plan()
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--max-cost", "5")
    assert code == 1 and "the plan costs $6.30, above --max-cost $5.00; nothing was sent" in err
    code, _, err = run("render", "board.yaml", "--plan", "plan.json")  # no terminal, no --yes
    assert code == 1 and "rendering would spend $6.30" in err
    assert fake_fal.accepted_count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scene", "meet"], "--plan renders the scenes the plan names"),
        (["--backend", "animatic"], "--plan renders the scenes the plan names"),
        (["--resend-unknown"], "--resend-unknown: plan.json was planned without it"),
    ],
)
def test_plan_files_and_conflicting_options(board: Path, fake_fal: FakeFal, args: list[str], message: str) -> None:
    saved_plan()
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--yes", *args)
    assert code == 2 and message in err
    assert fake_fal.accepted_count() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "plan.json: not a plan written by `storyc plan --out` (not JSON"),
        ('{"format": "storyc-plan/1"}', "plan.json: not a plan written by `storyc plan --out` (missing 'pay')"),
        ('{"format": "other"}', "format is not 'storyc-plan/1'"),
    ],
)
def test_a_damaged_plan_file_is_a_clear_error(board: Path, fake_fal: FakeFal, text: str, message: str) -> None:
    Path("plan.json").write_text(text, "utf-8")
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--yes")
    assert code == 1 and message in err and "Traceback" not in err
    assert fake_fal.accepted_count() == 0


def test_an_animatic_plan_is_not_saved(board: Path) -> None:
    code, _, err = run("plan", "board.yaml", "--backend", "animatic", "--out", "plan.json")
    assert code == 2 and "an animatic is free" in err and not Path("plan.json").exists()


def test_a_still_changed_since_the_plan_is_refused_as_a_changed_board(board: Path, fake_fal: FakeFal) -> None:
    """A still nobody uses changes no scene's key, yet it is paid for: it is part of what the plan binds."""
    text = board.read_text("utf-8")
    board.write_text(text.replace("scenes:", 'stills:\n  spare:\n    prompt: "a red ball"\nscenes:', 1), "utf-8")
    saved_plan()
    board.write_text(board.read_text("utf-8").replace("a red ball", "a blue ball"), "utf-8")
    code, _, err = run("render", "board.yaml", "--plan", "plan.json", "--yes")
    assert code == 1 and "plan.json: board.yaml changed since this plan was made" in err
    assert fake_fal.accepted_count() == 0
