"""Prices carry their certainty: a request with a video element is priced as an estimate, wherever a price is shown.

fal's page prices "4K mode, without video input" and says video-based elements "may be priced
under a separate tier": storyc's $0.42/s applied to such a request is only an estimate.  `compile`,
`check`, `plan` (text and JSON), `render`'s consent, `diff` (text, markdown, JSON) and the sheet say
so, per scene and in totals ("$5.88 ($1.26 of it uncertain: video input)"); `--max-cost` compares
the full estimate.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, commit_all, git_init, make_image, make_project
from test_render_fal import BOARD

from storyc.cli import cli
from storyc.commands.render import Spending, consent
from storyc.compile.pipeline import compile_file
from storyc.diagnostics import StorycError
from storyc.lock.lockfile import Lock
from storyc.preview.sheet import render_sheet
from storyc.render.plan import plan_with_lock
from storyc.report import Output
from storyc.review.changes import review
from storyc.review.formats import render_markdown, render_text, review_json

STANDARD = "fal-ai/kling-video/o3/standard/reference-to-video"
CAVEAT = "video input: fal may price it differently"
# BOARD's three scenes ($4.62) plus one with a video element ($1.26).
VIDEO_BOARD = (
    BOARD.replace("styles:\n", "  ball:\n    video: https://example.org/ball.mp4\nstyles:\n", 1)
    + '  - id: toss\n    prompt: "@ball rolls to @ellie."\n    duration: 3\n'
)


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", VIDEO_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_jobs_know_their_price_is_an_estimate(board: Path) -> None:
    result = compile_file(board, "board.yaml", use_cache=False)
    assert result.board is not None
    jobs = {j.scene: j for j in result.board.jobs}
    assert jobs["toss"].price_certain is False and jobs["toss"].uncertain_usd == Decimal("1.26")
    assert jobs["toss"].price_text == f"$1.26, {CAVEAT}"
    assert jobs["meet"].price_certain and jobs["meet"].uncertain_usd == 0 and jobs["meet"].price_text == "$1.26"
    assert result.board.total_cost == Decimal("5.88") and result.board.total_uncertain == Decimal("1.26")
    compiled = {j["scene"]: j for j in result.board.to_json()["jobs"]}
    assert compiled["toss"]["price_certain"] is False and compiled["toss"]["price_note"] == CAVEAT
    assert "price_certain" not in compiled["meet"]  # absent: the price list's own price


def test_compile_and_check_say_which_part_is_uncertain(board: Path) -> None:
    code, out, _ = run("compile", "--no-cache", "board.yaml")
    assert code == 0
    assert f"  price     $1.26, {CAVEAT}" in out.splitlines()
    assert out.splitlines()[-1] == "4 scenes, 14 s, $5.88 ($1.26 of it uncertain: video input) to render"
    code, out, _ = run("compile", "--no-cache", "board.yaml", "--scene", "toss")
    assert out.splitlines()[-1] == "1 scene, 3 s, $1.26 (all of it uncertain: video input) to render"
    code, out, _ = run("check", "--no-cache", "board.yaml")
    assert "board.yaml: 4 scenes, 14 s, $5.88 ($1.26 of it uncertain: video input) to render" in out


def test_plan_text_and_json(board: Path) -> None:
    code, out, _ = run("plan", "board.yaml")
    assert code == 0
    assert f"  toss  render    3 s  $   1.26  new scene; {CAVEAT}" in out.splitlines()
    assert "  meet  render    3 s  $   1.26  new scene" in out.splitlines()
    assert out.splitlines()[-1] == (
        "fal: 4 scenes to render (14 s), $5.88 ($1.26 of it uncertain: video input); 0 cached, "
        "0 to resume at no new cost"
    )
    code, out, _ = run("plan", "board.yaml", "--json")
    data = json.loads(out)
    assert {s["scene"]: s["price_certain"] for s in data["scenes"]} == {
        "meet": True,
        "play": True,
        "rest": True,
        "toss": False,
    }
    assert data["cost_usd"] == 5.88 and data["uncertain_usd"] == 1.26


def test_render_without_a_terminal_names_the_uncertain_part(fake_fal: FakeFal, board: Path) -> None:
    code, _, err = run("render", "board.yaml")
    assert code == 1
    assert "rendering would spend $5.88 ($1.26 of it uncertain: video input); no terminal to ask" in err
    assert fake_fal.requests == []


def test_max_cost_compares_the_full_estimate(fake_fal: FakeFal, board: Path) -> None:
    # $4.62 certain + $1.26 uncertain: a cap of $5 is below the full estimate, though above the certain part.
    code, _, err = run("render", "board.yaml", "--yes", "--max-cost", "5")
    assert code == 1
    assert "the plan costs $5.88 ($1.26 of it uncertain: video input), above --max-cost $5.00; nothing was sent" in err
    assert fake_fal.requests == []
    code, out, _ = run("render", "--help")
    assert "full estimate" in " ".join(out.split())


def test_the_consent_question_names_the_uncertain_part(board: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = compile_file(board, "board.yaml", use_cache=False)
    assert result.board is not None
    the_plan = plan_with_lock("board.yaml", result.board.jobs, Lock())
    asked: list[str] = []

    def confirm(text: str, **_: object) -> bool:
        asked.append(text)
        return False

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(click, "confirm", confirm)
    monkeypatch.setattr("sys.stdin", Terminal())
    with pytest.raises(StorycError):
        consent(the_plan, Spending(), Output("text"))
    assert asked == ["Spend $5.88 on fal? ($1.26 of it uncertain: video input)"]


def test_diff_text_markdown_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = git_init(tmp_path / "film")
    for name, color in BASIC_IMAGES.items():
        make_image(root / name, color=color)
    (root / "board.yaml").write_text(BOARD.lstrip(), "utf-8")
    commit_all(root, "base")
    (root / "board.yaml").write_text(VIDEO_BOARD.lstrip(), "utf-8")
    monkeypatch.chdir(root)
    result = review(root / "board.yaml")
    text = render_text(result)
    assert f"  added      toss    3 s  $1.26, {CAVEAT}" in text.splitlines()
    assert (
        text.splitlines()[-1]
        == "1 added, 3 unchanged; to render: $1.26 (all of it uncertain: video input) for 1 scene (3 s)"
    )
    markdown = render_markdown(result)
    assert f"| `toss` | added | 3 s | $1.26, {CAVEAT} |  |" in markdown
    assert "(all of it uncertain: video input)" in markdown
    data = review_json(result)
    assert data["cost_usd"] == Decimal("1.26") and data["uncertain_usd"] == Decimal("1.26")
    assert {s["scene"]: s["price_certain"] for s in data["scenes"]}["toss"] is False


def test_sheet_marks_estimates(board: Path) -> None:
    result = compile_file(board, "board.yaml", use_cache=False)
    assert result.board is not None
    html = render_sheet(result.board, [], {}, board.with_suffix(".html"))
    assert html.count(CAVEAT) == 1  # the toss scene
    assert '$5.88 <span class="estimate">($1.26 of it uncertain: video input)</span> to render on fal' in html


def test_a_plan_wholly_of_estimates_says_all(fake_fal: FakeFal, board: Path) -> None:
    code, _, err = run("render", "board.yaml", "--scene", "toss")
    assert code == 1
    assert "rendering would spend $1.26 (all of it uncertain: video input); no terminal to ask" in err


# --- exact amounts in JSON: the product of price and seconds, not rounded to cents -----------------------

# Drafted on O3 standard ($0.084 a second): 4 s $0.336, 5 s $0.42, 7 s $0.588; $1.344 in all (cents: $1.34).
PROFILES = f"profiles:\n  draft:\n    endpoint: {STANDARD}\n  final: {{}}\ndefault_profile: draft\n"
DRAFTED = (
    BOARD.replace("characters:", PROFILES + "characters:", 1)
    .replace("sleeps.\"\n    duration: 3", "sleeps.\"\n    duration: 7")
    .replace("light of @dawn.\"\n    duration: 3", "light of @dawn.\"\n    duration: 4")
)
EXACT = {"meet": Decimal("0.336"), "play": Decimal("0.42"), "rest": Decimal("0.588")}


def exact_json(text: str) -> Any:
    """JSON with every number read as the decimal written: 0.588 stays 0.588, 0.59 would fail the test."""
    return json.loads(text, parse_float=Decimal)


def test_every_amount_in_json_is_the_exact_product_of_price_and_seconds(
    fake_fal: FakeFal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = git_init(tmp_path / "film")
    for name, color in BASIC_IMAGES.items():
        make_image(root / name, color=color)
    base = DRAFTED.split("  - id: rest")[0].replace("in the light of @dawn", "under @dawn")
    (root / "board.yaml").write_text(base, "utf-8")  # no rest; meet's prompt differs
    commit_all(root, "base")
    (root / "board.yaml").write_text(DRAFTED, "utf-8")
    monkeypatch.chdir(root)

    code, out, err = run("compile", "--no-cache", "--json")
    assert code == 0, err
    assert {j["scene"]: j["cost_usd"] for j in exact_json(out)["jobs"]} == EXACT
    assert '"cost_usd": 0.588' in out  # as written, no float digits
    code, out, _ = run("plan", "--json")
    plan = exact_json(out)
    assert {s["scene"]: s["cost_usd"] for s in plan["scenes"]} == EXACT and plan["cost_usd"] == Decimal("1.344")
    code, out, _ = run("plan", "--compare", "--json")
    assert exact_json(out)["totals"] == {"animatic": 0, "draft": Decimal("1.344"), "final": Decimal("6.72")}
    code, out, _ = run("check", "--no-cache", "--json")
    profiles = exact_json(out)["files"][0]["profiles"]
    assert (profiles["draft"]["cost_usd"], profiles["final"]["cost_usd"]) == (Decimal("1.344"), Decimal("6.72"))
    code, out, _ = run("diff", "--format", "json")
    assert exact_json(out)["cost_usd"] == Decimal("0.924")  # meet changed (4 s), rest added (7 s)
    code, out, err = run("render", "--yes", "--json")
    assert code == 0, err
    summary = exact_json(out)
    assert {s["scene"]: s["cost_usd"] for s in summary["scenes"]} == EXACT
    assert summary["spent_usd"] == Decimal("1.344")

    code, out, _ = run("compile", "--no-cache")  # text keeps cents
    assert "$0.59" in out and "0.588" not in out
    assert out.splitlines()[-1].endswith("$1.34 to render in profile 'draft'")
