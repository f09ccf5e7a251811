"""Profiles: one board drafted on a cheap tier, then rendered in 4K, every step priced first.

fal is the fake fal server (it takes the three O3 endpoints and enforces each one's limits);
fal_client is the real one. Prices are checked to the cent against the endpoint files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, make_project

from storyc.cli import cli
from storyc.lock.lockfile import lock_path, read

STANDARD = "fal-ai/kling-video/o3/standard/reference-to-video"
PRO = "fal-ai/kling-video/o3/pro/reference-to-video"
FOUR_K = "fal-ai/kling-video/o3/4k/reference-to-video"

BOARD = """
version: 1
title: Profiles
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
  aspect_ratio: "16:9"
profiles:
  draft:
    endpoint: fal-ai/kling-video/o3/standard/reference-to-video
    aspect_ratio: "1:1"
  review:
    endpoint: fal-ai/kling-video/o3/pro/reference-to-video
  final: {}
default_profile: draft
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
styles:
  dawn: refs/dawn.png
scenes:
  - id: meet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 5
  - id: roar
    prompt: "@rex roars."
    duration: 10
    aspect_ratio: "9:16"
    generate_audio: true
"""


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def compiled(*args: str) -> dict[str, Any]:
    code, out, err = run("compile", "--json", *args)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def jobs_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["scene"]: j for j in data["jobs"]}


# --- compiling: a profile is target with its settings over it; a scene's own settings win ------------


def test_the_default_profile_is_the_named_one_and_each_profile_has_its_endpoint_price_and_keys(board: Path) -> None:
    draft = compiled()
    assert draft["profile"] == "draft"
    meet, roar = jobs_of(draft)["meet"], jobs_of(draft)["roar"]
    assert meet["endpoint"] == STANDARD and meet["cost_usd"] == 0.42  # 5 s x $0.084
    assert meet["arguments"]["aspect_ratio"] == "1:1"  # the profile's setting over target's
    assert roar["arguments"]["aspect_ratio"] == "9:16"  # the scene's own setting wins
    assert roar["cost_usd"] == 1.12  # 10 s x $0.112, audio on
    final = jobs_of(compiled("--profile", "final"))
    assert final["meet"]["endpoint"] == FOUR_K and final["meet"]["cost_usd"] == 2.10
    assert final["meet"]["arguments"]["aspect_ratio"] == "16:9"  # final is target as written
    assert final["roar"]["cost_usd"] == 4.20
    review = jobs_of(compiled("--profile", "review"))
    assert review["meet"]["cost_usd"] == 0.56 and review["roar"]["cost_usd"] == 1.40
    keys = {jobs_of(d)["meet"]["key"] for d in (draft, compiled("-p", "final"), compiled("-p", "review"))}
    assert len(keys) == 3  # each profile's render is its own entry in the lock


def test_without_default_profile_the_first_declared_is_the_default(board: Path) -> None:
    board.write_text(board.read_text().replace("default_profile: draft\n", ""))
    assert compiled()["profile"] == "draft"
    board.write_text(board.read_text().replace("  draft:\n", "  sketch:\n"))
    assert compiled()["profile"] == "sketch"


def test_a_board_without_profiles_compiles_to_the_form_it_always_had(tmp_path: Path) -> None:
    plain = BOARD.split("profiles:")[0] + "characters:" + BOARD.split("characters:")[1]
    path = make_project(tmp_path / "plain", plain, BASIC_IMAGES)
    code, out, _ = run("compile", "--json", str(path))
    assert code == 0 and "profile" not in json.loads(out)
    code, _, err = run("compile", str(path), "--profile", "draft")
    assert code == 2
    assert "--profile draft: board.yaml declares no profiles" in err or "declares no profiles" in err


def test_an_unknown_profile_is_a_usage_error_with_a_suggestion(board: Path) -> None:
    for command in ("compile", "plan", "status", "cut", "sheet", "check"):
        code, _, err = run(command, "--profile", "drfat")
        assert code == 2, (command, err)
        assert "no profile 'drfat' in board.yaml (did you mean 'draft'?); profiles: draft, review, final" in err


def test_an_unknown_default_profile_is_an_error_at_its_line(board: Path) -> None:
    board.write_text(board.read_text().replace("default_profile: draft", "default_profile: fnal"))
    code, out, _ = run("check")
    assert code == 1
    line = next(n for n, text in enumerate(board.read_text().splitlines(), 1) if text.startswith("default_profile"))
    assert f"board.yaml:{line}:18: error: default_profile 'fnal' is not a profile (did you mean 'final'?)" in out


def test_a_scene_with_its_own_endpoint_is_warned_in_a_profile_that_sets_one(board: Path) -> None:
    board.write_text(board.read_text().replace("    duration: 5\n", f"    duration: 5\n    endpoint: {FOUR_K}\n"))
    code, out, _ = run("check", "--profile", "draft")
    assert code == 0
    assert f"scene 'meet' sets its own endpoint, so profile 'draft' renders it on {FOUR_K} too" in out


# --- validation per profile: fine in 4K, over the limit on pro and standard ----------------------


def _six_references_with_a_video(board: Path) -> None:
    text = board.read_text().replace(
        "styles:\n  dawn: refs/dawn.png",
        "  ball:\n    video: refs/ball.mp4\nstyles:\n  dawn: refs/dawn.png\n  dusk: refs/dusk.png\n"
        "  noon: refs/noon.png",
    )
    board.write_text(text.replace("@ellie meets @rex in the light of @dawn.", "@ellie, @rex, @ball: @dawn @dusk @noon"))
    for name, color in (("dusk", "purple"), ("noon", "yellow")):
        from helpers import make_image

        make_image(board.parent / "refs" / f"{name}.png", color=color)
    ball = Path(__file__).parent.parent / "examples/elephant/refs/ball.mp4"
    (board.parent / "refs" / "ball.mp4").write_bytes(ball.read_bytes())


def test_check_reports_each_profile_over_its_limits_at_the_scene_line(board: Path) -> None:
    _six_references_with_a_video(board)
    code, out, _ = run("check")
    assert code == 1
    line = next(n for n, text in enumerate(board.read_text().splitlines(), 1) if "id: meet" in text)
    where = f"board.yaml:{line}:9: error: scene 'meet' uses 6 references with a video character"
    errors = [text for text in out.splitlines() if text.startswith(where)]
    assert len(errors) == 1, out  # one problem, in draft and review, both named; final (4K) only warns
    assert errors[0].endswith("; in profiles 'draft', 'review'"), out
    assert f"= help: profile 'draft' renders on {STANDARD}" in out
    assert f"= help: profile 'review' renders on {PRO}" in out
    assert f"board.yaml:{line}:9: warning: scene 'meet' uses 6 references" in out  # on 4K: a warning
    assert "board.yaml [final]: 2 scenes" in out  # the profile that compiles is priced
    assert run("check", "--profile", "final")[0] == 0
    assert run("compile", "--profile", "draft")[0] == 1


# --- the price of each step: plan --compare, plan/render --only-done-in ------------------------------


def test_plan_compare_prices_every_profile_to_the_cent_less_the_lock(board: Path, fake_fal: FakeFal) -> None:
    code, out, _ = run("plan", "--compare", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["profiles"] == ["animatic", "draft", "review", "final"]
    assert data["totals"] == {"animatic": 0.0, "draft": 1.54, "review": 1.96, "final": 6.30}
    code, _, err = run("render", "--yes", "--scene", "meet")  # the default profile: a draft
    assert code == 0, err
    data = json.loads(run("plan", "--compare", "--json")[1])
    meet = next(s for s in data["scenes"] if s["scene"] == "meet")
    assert meet["prices"] == {"animatic": 0.0, "draft": 0.0, "review": 0.56, "final": 2.10}
    assert meet["notes"] == {"draft": "done"}
    text = run("plan", "--compare")[1]
    assert "  total" in text and "$1.12" in text and "$6.30" in text


def test_draft_then_final_only_where_drafted(board: Path, fake_fal: FakeFal) -> None:
    code, _, err = run("render", "--yes", "--scene", "meet")  # draft (the default profile)
    assert code == 0, err
    assert [(j.endpoint_id, j.payload["aspect_ratio"]) for j in fake_fal.jobs] == [(STANDARD, "1:1")]

    code, out, err = run("plan", "--profile", "final", "--only-done-in", "draft", "--json")
    assert code == 0
    assert "left out, not done in profile 'draft' (1): roar" in err
    plan = json.loads(out)
    assert [(s["scene"], s["state"], s["cost_usd"]) for s in plan["scenes"]] == [("meet", "render", 2.10)]
    assert plan["scenes"][0]["note"] == "not rendered on 4k yet"  # the draft is not an earlier version of it
    code, out, _ = run("plan", "--profile", "final", "--only-done-in", "draft")
    assert out.splitlines()[-1].startswith("fal (profile final): 1 scene to render (5 s), $2.10;")  # which tier

    code, _, err = run("render", "--profile", "final", "--only-done-in", "draft", "--yes")
    assert code == 0, err
    assert [j.endpoint_id for j in fake_fal.jobs] == [STANDARD, FOUR_K]  # roar was never drafted: not paid
    assert fake_fal.jobs[1].payload["aspect_ratio"] == "16:9"
    code, _, err = run("cut", "--profile", "final")
    assert code == 1 and "have no fal render yet: roar; run `storyc render --profile final`" in err

    lock = read(lock_path(board))
    assert sorted(r.endpoint for r in lock.renders.values()) == sorted([STANDARD, FOUR_K])  # side by side
    draft_status = json.loads(run("status", "--json")[1])
    final_status = json.loads(run("status", "--profile", "final", "--json")[1])
    assert [s["state"] for s in draft_status["scenes"]] == ["done", "new"]
    assert [s["state"] for s in final_status["scenes"]] == ["done", "new"]
    assert draft_status["scenes"][0]["path"] != final_status["scenes"][0]["path"]
    assert lock.scenes == {s["scene"]: s["key"] for s in draft_status["scenes"]}  # the default profile's keys

    code, _, err = run("render", "--profile", "final", "--only-done-in", "final")
    assert code == 2 and "that is the profile being rendered" in err


def test_gc_keeps_every_profiles_renders_unless_told_which_to_keep(board: Path, fake_fal: FakeFal) -> None:
    assert run("render", "--yes", "--scene", "meet")[0] == 0
    assert run("render", "--yes", "--scene", "meet", "--profile", "final")[0] == 0
    code, out, _ = run("gc", "--json")
    assert code == 0 and json.loads(out)["dropped"] == []
    assert len(read(lock_path(board)).renders) == 2
    code, out, _ = run("gc", "--profile", "final", "--delete-videos", "--json")
    dropped = json.loads(out)["dropped"]
    assert [(d["scene"], d["endpoint"]) for d in dropped] == [("meet", STANDARD)]
    assert not (board.parent / dropped[0]["path"]).exists()
    assert [r.endpoint for r in read(lock_path(board)).renders.values()] == [FOUR_K]


def test_pull_and_cut_work_per_profile(board: Path, fake_fal: FakeFal) -> None:
    assert run("render", "--yes")[0] == 0
    assert run("render", "--yes", "--profile", "final")[0] == 0
    draft_video = board.parent / json.loads(run("status", "--json")[1])["scenes"][0]["path"]
    draft_video.unlink()
    code, out, _ = run("pull", "--profile", "final", "--json")
    assert code == 0 and json.loads(out)["downloaded"] == 0  # the final's videos are all there
    assert not draft_video.exists()
    code, out, _ = run("pull", "--json")
    assert code == 0 and json.loads(out)["downloaded"] == 1 and draft_video.exists()
    for profile, name in (("draft", "cut-draft.mp4"), ("final", "cut-final.mp4")):
        code, out, err = run("cut", "--profile", profile, "--json")
        assert code == 0, err
        assert json.loads(out)["output"].endswith(f"renders/{name}")
        assert (board.parent / "renders" / name).stat().st_size > 0


# --- diff: the cost of a change in each profile -------------------------------------------------------


def test_diff_prices_the_change_in_every_profile(board: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=board.parent, check=True, capture_output=True)

    (board.parent / ".git").rmdir()
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "board")
    board.write_text(board.read_text().replace("@rex roars.", "@rex roars at @ellie."))
    code, out, _ = run("diff", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["profile"] == "draft" and data["cost_usd"] == 1.12  # roar changed: 10 s, audio on
    assert data["profiles"] == {
        "draft": {"cost_usd": 1.12, "uncertain_usd": 0.0},
        "review": {"cost_usd": 1.40, "uncertain_usd": 0.0},
        "final": {"cost_usd": 4.20, "uncertain_usd": 0.0},
    }
    text = run("diff")[1]
    assert "to render in each profile (shown: draft): draft: $1.12; review: $1.40; final: $4.20" in text
    markdown = run("diff", "--format", "markdown")[1]
    assert "\n\nto render in each profile (shown: draft): draft: $1.12; review: $1.40; final: $4.20\n" in markdown
    final = json.loads(run("diff", "--profile", "final", "--json")[1])
    assert final["profile"] == "final" and final["cost_usd"] == 4.20 and "profiles" not in final


def test_the_locks_scenes_map_is_the_default_profiles_whichever_profile_rendered(
    board: Path, fake_fal: FakeFal
) -> None:
    assert run("render", "--yes", "--profile", "final")[0] == 0
    draft_status = json.loads(run("status", "--json")[1])["scenes"]
    assert [(s["state"], s["detail"]) for s in draft_status] == [("new", "not rendered on standard yet")] * 2
    code, _, err = run("check", "--locked")
    assert code == 1 and "board.lock: out of date with board.yaml (new: meet, roar)" in err
    assert run("gc")[0] == 0  # writes the default profile's keys, drops nothing
    assert run("check", "--locked")[0] == 0
    assert run("check", "--locked", "--profile", "final")[0] == 0  # still the default's map that is compared
    draft = jobs_of(compiled())
    assert read(lock_path(board)).scenes == {scene: job["key"] for scene, job in draft.items()}
    assert len(read(lock_path(board)).renders) == 2  # the finals are kept


def test_only_done_in_counts_a_draft_another_clone_put_in_the_team_store(
    tmp_path: Path, fake_fal: FakeFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_project(tmp_path / "alice", BOARD, BASIC_IMAGES)
    bob = make_project(tmp_path / "bob", BOARD, BASIC_IMAGES)
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("STORYC_STORE", (tmp_path / "store").as_uri())
    monkeypatch.chdir(alice.parent)
    code, _, err = run("render", "--yes", "--scene", "meet")
    assert code == 0, err  # alice drafts meet; the store gets it
    monkeypatch.chdir(bob.parent)
    code, out, err = run("plan", "--profile", "final", "--only-done-in", "draft", "--json")
    assert code == 0, err
    assert [s["scene"] for s in json.loads(out)["scenes"]] == ["meet"]  # bob's lock has no draft; the store has
    code, out, err = run("plan", "--profile", "final", "--only-done-in", "draft", "--no-store", "--json")
    assert code == 0 and json.loads(out)["scenes"] == [] and "(2): meet, roar" in err
