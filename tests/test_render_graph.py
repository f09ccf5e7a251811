"""Rendering a board that is a graph (stills, frames of other scenes) on the fake fal with the real fal_client.

Each step runs once its inputs are done, through the same ledger as scenes (intent before
submit, unknown never re-sent); an upstream's output reaches its downstream as an uploaded
URL (the picked candidate, the frame taken from the scene's video).  Counted accepted jobs
prove nothing is paid twice.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakefal import FakeFal
from helpers import fast_fal, kill_once_accepted, make_project
from test_render_cli import run
from test_render_fal import edit, render, states

from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, lock_path, read
from storyc.render.run import RenderSummary
from storyc.render.session import fal_session

FAST = fast_fal()
EDIT = "fal-ai/nano-banana-2/edit"
VIDEO = "fal-ai/kling-video/o3/standard/reference-to-video"

CHAIN = """
version: 1
title: Chain
target:
  endpoint: fal-ai/kling-video/o3/standard/reference-to-video
  aspect_ratio: "16:9"
stills:
  meet-open:
    prompt: "@ellie at the edge of a clearing, first light"
    variants: 3
    pick: 2
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    start_frame: {still: meet-open}
    prompt: "@ellie walks into the clearing."
    duration: 3
  - id: play
    start_frame: {last_frame_of: meet}
    prompt: "@ellie plays."
    duration: 3
  - id: rest
    prompt: "@ellie sleeps."
    duration: 3
"""
IMAGES = {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "silver"}


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", CHAIN, IMAGES)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def submitted_to(fake_fal: FakeFal, endpoint: str) -> list[dict[str, Any]]:
    return [j.payload for j in fake_fal.jobs if j.endpoint_id == endpoint]


def lock(board: Path) -> Lock:
    return read(lock_path(board))


def test_a_chain_renders_in_order_and_each_request_carries_its_upstreams_uploaded_output(
    fake_fal: FakeFal, board: Path
) -> None:
    summary = render(board)
    assert states(summary) == {"still meet-open": "done", "meet": "done", "play": "done", "rest": "done"}
    the_lock = lock(board)
    still = next(r for r in the_lock.renders.values() if r.still == "meet-open")
    assert len(still.images) == 3
    for n, image in enumerate(still.images, 1):
        assert image.path == f"renders/stills/meet-open-{still_key(the_lock)[7:19]}-{n}.png"
        data = (board.parent / image.path).read_bytes()
        assert image.sha256 == sha(data) and data == fake_fal.file_bytes(image.url)
    # meet starts from the picked candidate (the 2nd), uploaded: its bytes are that file's
    (meet_payload,) = [p for p in submitted_to(fake_fal, VIDEO) if p["prompt"].startswith("@Element1 walks")]
    assert still.images[1].path is not None
    picked = (board.parent / still.images[1].path).read_bytes()
    assert fake_fal.file_bytes(meet_payload["start_image_url"]) == picked
    # play starts from meet's last frame, taken from meet's video and uploaded
    (play_payload,) = [p for p in submitted_to(fake_fal, VIDEO) if p["prompt"].startswith("@Element1 plays")]
    meet = next(r for r in the_lock.renders.values() if r.scene == "meet")
    assert meet.video is not None and meet.video.path is not None
    from storyc.media.video import last_frame

    expected = board.parent / "expected-last.png"
    last_frame(board.parent / meet.video.path, expected)
    assert fake_fal.file_bytes(play_payload["start_image_url"]) == expected.read_bytes()
    # each downstream records the output it was made from
    assert meet.made_from == {f"still:{still_key(the_lock)}#2": still.images[1].sha256}
    play = next(r for r in the_lock.renders.values() if r.scene == "play")
    assert play.made_from == {f"last_frame_of:{key_of(the_lock, 'meet')}": meet.video.sha256}
    assert fake_fal.accepted_count() == 4


def still_key(the_lock: Lock, name: str = "meet-open") -> str:
    return next(k for k, r in the_lock.renders.items() if r.still == name)


def key_of(the_lock: Lock, scene: str) -> str:
    return next(k for k, r in the_lock.renders.items() if r.scene == scene)


def test_a_failed_still_skips_what_needs_it_and_the_rest_completes(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_jobs_matching("edge of a clearing")  # the still's job fails on fal
    summary = render(board)
    assert states(summary) == {"still meet-open": "failed", "meet": "skipped", "play": "skipped", "rest": "done"}
    errors = {r.scene: r.error for r in summary.results}
    assert errors["meet"] == "skipped: needs still meet-open, which failed; nothing was sent"
    assert errors["play"] == "skipped: needs meet, which was skipped; nothing was sent"
    assert fake_fal.accepted_count(endpoint=EDIT) == 1 and fake_fal.accepted_count(endpoint=VIDEO) == 1
    rest = next(r for r in summary.results if r.scene == "rest")
    assert summary.spent == rest.spent > 0  # rest alone: a failed job is not billed, skipped ones never sent


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_after_an_image_job_was_accepted_leaves_it_unknown_never_resent(
    fake_fal: FakeFal, board: Path, status: int
) -> None:
    fake_fal.fail_next("submit", status, after_processing=True, endpoint=EDIT)
    first = render(board)
    assert states(first) == {"still meet-open": "unknown", "meet": "skipped", "play": "skipped", "rest": "done"}
    assert lock(board).renders[still_key(lock(board))].state == "unknown"
    second = render(board)
    assert states(second) == {"still meet-open": "unknown", "meet": "skipped", "play": "skipped", "rest": "cached"}
    assert fake_fal.accepted_count(endpoint=EDIT) == 1  # fal has it once; storyc never sent it again
    assert fake_fal.accepted_count(endpoint=VIDEO) == 1


def test_scene_brings_in_the_undone_steps_it_needs_and_nothing_else(fake_fal: FakeFal, board: Path) -> None:
    summary = render(board, ["play"])
    assert states(summary) == {"still meet-open": "done", "meet": "done", "play": "done"}
    assert fake_fal.accepted_count(endpoint=EDIT) == 1 and fake_fal.accepted_count(endpoint=VIDEO) == 2
    again = render(board, ["play"])  # done upstreams are made sure of, not paid again
    assert states(again) == {"still meet-open": "cached", "meet": "cached", "play": "cached"}
    assert fake_fal.accepted_count() == 3


def test_another_pick_renders_again_only_what_uses_the_still_at_its_price(fake_fal: FakeFal, board: Path) -> None:
    render(board)
    edit(board, "pick: 2", "pick: 3")
    result = compile_file(board, use_cache=False)
    assert result.board is not None
    with fal_session(result.board, result.board.jobs, FAST) as session:
        plan = {i.scene: (i.action, i.price) for i in session.plan.items}
        cost = {j.scene: j.cost_usd for j in result.board.jobs}
        assert plan == {
            "still meet-open": ("cached", Decimal("0")),
            "meet": ("render", cost["meet"]),
            "play": ("render", cost["play"]),  # its input, meet's last frame, changes with meet
            "rest": ("cached", Decimal("0")),
        }
        summary = session.run()
    assert summary.spent == cost["meet"] + cost["play"] > 0
    assert fake_fal.accepted_count(endpoint=EDIT) == 1  # the still is never paid for again
    assert fake_fal.accepted_count(endpoint=VIDEO) == 3 + 2
    the_lock = lock(board)
    third = the_lock.renders[still_key(the_lock)].images[2]
    assert third.path is not None
    meets = [p for p in submitted_to(fake_fal, VIDEO) if p["prompt"].startswith("@Element1 walks")]
    assert fake_fal.file_bytes(meets[-1]["start_image_url"]) == (board.parent / third.path).read_bytes()


@pytest.mark.parametrize("endpoint", [EDIT, VIDEO])
def test_a_kill_while_a_step_is_being_accepted_and_the_rerun_pay_for_nothing_twice(
    fake_fal: FakeFal, board: Path, endpoint: str
) -> None:
    """Killed when fal has accepted the still (or, after the still, meet) but storyc has no answer yet."""
    fake_fal.delay_next("submit", 30, after_processing=True, endpoint=endpoint)  # accepted, answer not back
    kill_once_accepted(fake_fal, board, ["render", "board.yaml", "--yes", "--scene", "meet"], endpoint)
    fake_fal.clear_faults()
    summary = render(board)
    if endpoint == EDIT:
        assert states(summary) == {"still meet-open": "unknown", "meet": "skipped", "play": "skipped", "rest": "done"}
    else:
        assert states(summary) == {"still meet-open": "cached", "meet": "unknown", "play": "skipped", "rest": "done"}
    again = render(board)
    assert [r.state for r in again.results] == [r.state if r.state != "done" else "cached" for r in summary.results]
    assert fake_fal.accepted_count(endpoint=EDIT) == 1  # the still: once, whatever happened
    assert fake_fal.accepted_count(endpoint=VIDEO) == (1 if endpoint == EDIT else 2)  # rest (and meet) once


# --- the command line: plan, status, pull, gc -------------------------------------------------


@pytest.fixture
def here(board: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(board.parent)
    return board


def test_plan_lists_stills_and_scenes_upstreams_first_with_what_each_waits_for_and_totals_by_kind(
    fake_fal: FakeFal, here: Path
) -> None:
    result = compile_file(here, use_cache=False)
    assert result.board is not None
    (still,) = result.board.stills
    cost = {j.scene: j.cost_usd for j in result.board.jobs}
    code, out, _ = run("plan", "board.yaml")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines[:4]] == [
        ["still", "meet-open", "render"],
        ["meet", "render", "3"],
        ["play", "render", "3"],
        ["rest", "render", "3"],
    ]
    assert lines[1].endswith("after still meet-open; new scene")
    assert lines[2].endswith("after meet; new scene")
    assert lines[4] == f"  stills: 1 to render, ${still.cost_usd:.2f}"
    assert lines[5] == f"  video: 3 scenes to render (9 s), ${sum(cost.values()):.2f}"
    total = still.cost_usd + sum(cost.values())
    assert lines[6] == f"fal: 4 steps to render, ${total:.2f}; 0 cached, 0 to resume at no new cost"
    code, out, _ = run("plan", "board.yaml", "--json")
    data = json.loads(out)
    assert [s["still"] for s in data["stills"]] == ["meet-open"]
    assert data["scenes"][1]["depends_on"] == [{"last_frame_of": "meet", "key": data["scenes"][0]["key"]}]
    assert data["scenes"][1]["waiting_for"] == ["meet"]
    assert data["cost_usd"] == float(total)
    assert fake_fal.requests == []


def test_plan_of_one_scene_names_the_steps_it_brings_in(fake_fal: FakeFal, here: Path) -> None:
    code, out, _ = run("plan", "board.yaml", "--scene", "play")
    assert code == 0
    assert "  also: still meet-open (needed by play)" in out.splitlines()
    assert "  also: meet (needed by play)" in out.splitlines()
    assert "rest" not in out


def test_max_cost_covers_the_whole_graph(fake_fal: FakeFal, here: Path) -> None:
    result = compile_file(here, use_cache=False)
    assert result.board is not None
    scenes_only = sum((j.cost_usd for j in result.board.jobs), Decimal("0"))
    code, _, err = run("render", "board.yaml", "--yes", "--max-cost", str(scenes_only))  # not enough with the still
    assert code == 1 and "above --max-cost" in err
    assert fake_fal.accepted_count() == 0


def test_status_pull_and_gc_know_stills(fake_fal: FakeFal, here: Path) -> None:
    render(here)
    the_lock = lock(here)
    images = the_lock.renders[still_key(the_lock)].images
    code, out, _ = run("status", "board.yaml")
    assert code == 0
    paths = ", ".join(i.path or "" for i in images)
    assert f"  still meet-open  done      {paths} (pick 2)" in out.splitlines()
    assert images[0].path is not None
    (here.parent / images[0].path).unlink()
    code, out, _ = run("status", "board.yaml")
    assert code == 1 and f"{images[0].path} is gone; `storyc pull` fetches it again" in out
    code, out, _ = run("pull", "board.yaml")
    assert code == 0 and out.splitlines()[-1] == "1 file downloaded"
    assert sha((here.parent / images[0].path).read_bytes()) == images[0].sha256
    code, out, _ = run("gc", "board.yaml")
    assert code == 0 and out.splitlines()[-1] == "dropped 0 renders no scene uses"
    assert lock(here).renders == the_lock.renders  # the still's entry is used: kept


def test_status_after_another_pick_says_what_each_scene_was_made_from(fake_fal: FakeFal, here: Path) -> None:
    render(here)
    edit(here, "pick: 2", "pick: 3")
    code, out, _ = run("status", "board.yaml")
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "made from an earlier pick of still 'meet-open' (2; now 3); `storyc render` renders it" in lines["meet"]
    assert "stale" in lines["meet"]
    assert "made from an earlier version of scene 'meet'; `storyc render` renders it" in lines["play"]
    assert "done" in lines["rest"] and "done" in lines["still"]


def test_status_says_when_a_done_scene_was_made_from_an_output_no_longer_on_record(
    fake_fal: FakeFal, here: Path
) -> None:
    """The still's entry now records other candidates (a lock merged from a clone that rendered the
    same request): meet was made from the picked candidate that was on record then."""
    from dataclasses import replace

    from storyc.lock.lockfile import open_store

    render(here)
    with open_store(here) as store:
        key = still_key(store.lock)
        entry = store.lock.renders[key]
        store.set_render(key, replace(entry, images=(entry.images[1], entry.images[2], entry.images[0])))
    code, out, _ = run("status", "board.yaml")
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "outdated" in lines["meet"]
    assert "made from an earlier output of still 'meet-open': the one on record now differs" in lines["meet"]
    assert "done" in lines["play"]  # made from meet's video, which is the one on record


# --- the team store ----------------------------------------------------------------------------


def test_a_second_clone_takes_the_whole_graph_from_the_team_store_for_free(fake_fal: FakeFal, tmp_path: Path) -> None:
    import uuid

    from storyc.team.layer import TeamLayer
    from storyc.team.store import open_team_store

    url = f"memory://team-{uuid.uuid4().hex}"
    alice, bob = make_project(tmp_path / "alice", CHAIN, IMAGES), make_project(tmp_path / "bob", CHAIN, IMAGES)

    def render_with_team(board: Path) -> RenderSummary:
        result = compile_file(board, use_cache=False)
        assert result.board is not None
        team = TeamLayer(open_team_store(url), poll=0.01)
        with fal_session(result.board, result.board.jobs, FAST, team=team) as session:
            return session.run()

    first = render_with_team(alice)
    assert set(states(first).values()) == {"done"} and fake_fal.accepted_count() == 4
    second = render_with_team(bob)
    assert states(second) == {"still meet-open": "cached", "meet": "cached", "play": "cached", "rest": "cached"}
    assert second.spent == 0 and fake_fal.accepted_count() == 4
    the_lock = lock(bob)
    still = the_lock.renders[still_key(the_lock)]
    assert [i.path for i in still.images] == [i.path for i in lock(alice).renders[still_key(the_lock)].images]
    for image in still.images:
        assert image.path is not None and image.url.startswith("memory://") and "/images/" in image.url
        assert (bob.parent / image.path).read_bytes() == (alice.parent / image.path).read_bytes()
    # a candidate lost here comes back from the store (fal's URLs expire)
    assert still.images[2].path is not None
    (bob.parent / still.images[2].path).unlink()
    code, out, _ = run_in(bob, "pull", "board.yaml", env={"STORYC_STORE": url})
    assert code == 0 and "from the team store, sha256 verified" in out


def run_in(board: Path, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from storyc.cli import cli

    result = CliRunner(env=env).invoke(cli, [*args[:1], str(board), *args[2:]], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --- the animatic: the whole graph, offline, for $0 ----------------------------------------------


def test_the_keyframes_example_renders_as_an_animatic_offline_for_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from helpers import EXAMPLES

    from storyc.media.video import probe

    shutil.copytree(EXAMPLES / "keyframes", tmp_path / "film", ignore=shutil.ignore_patterns(".storyc", "renders"))
    monkeypatch.chdir(tmp_path / "film")
    monkeypatch.delenv("FAL_KEY", raising=False)
    code, _, err = run("render", "board.yaml", "--backend", "animatic")
    assert code == 0, err
    assert err.splitlines()[-1] == "4 done; free (animatic)"
    cards = sorted(p.name for p in Path("renders/animatic/stills").iterdir())
    assert [c.rsplit("-", 2)[0] for c in cards] == ["ellie-sheet", "meet-open", "meet-open", "meet-open"]
    assert [c.rsplit("-", 1)[1] for c in cards] == ["1.png", "1.png", "2.png", "3.png"]
    meet, play = sorted(Path("renders/animatic").glob("*.mp4"))
    assert round(probe(meet).seconds) == 5 and round(probe(play).seconds) == 5
    # play starts from meet's last frame: taken from meet's animatic (named by its bytes' sha256)
    assert Path(f".storyc/frames/{sha(meet.read_bytes())[7:]}-last.png").is_file()
    code, _, err = run("render", "board.yaml", "--backend", "animatic")
    assert code == 0 and err.splitlines()[-1] == "4 cached; free (animatic)"


def test_a_frame_is_never_written_through_a_frames_link_that_leads_out(fake_fal: FakeFal, board: Path) -> None:
    render(board, ["meet"])
    outside = board.parent.parent / "outside"
    outside.mkdir()
    (board.parent / ".storyc" / "frames").symlink_to(outside, target_is_directory=True)
    summary = render(board, ["play"])
    (play,) = [r for r in summary.results if r.scene == "play"]
    assert play.state == "failed" and "could not take the output of scene 'meet'" in (play.error or "")
    assert "outside" in (play.error or "") and "nothing was paid" in (play.error or "")
    assert list(outside.iterdir()) == [] and fake_fal.accepted_count(endpoint=VIDEO) == 1


def test_the_keyframes_example_renders_on_fal_each_upstream_as_the_file_it_made(
    fake_fal: FakeFal, tmp_path: Path
) -> None:
    """A generated character sheet is the character's frontal: the still that names it and the scenes
    get that candidate's upload; the text-to-image still is sent to the endpoint without images."""
    import shutil

    from helpers import EXAMPLES

    shutil.copytree(EXAMPLES / "keyframes", tmp_path / "film", ignore=shutil.ignore_patterns(".storyc", "renders"))
    board = tmp_path / "film" / "board.yaml"
    summary = render(board)
    assert set(states(summary).values()) == {"done"} and len(summary.results) == 4
    the_lock = lock(board)
    sheet = the_lock.renders[still_key(the_lock, "ellie-sheet")].images[0]
    assert sheet.path is not None
    sheet_bytes = (board.parent / sheet.path).read_bytes()
    (text_to_image,) = submitted_to(fake_fal, "fal-ai/nano-banana-2")
    assert "image_urls" not in text_to_image
    (edit_payload,) = submitted_to(fake_fal, EDIT)
    assert fake_fal.file_bytes(edit_payload["image_urls"][0]) == sheet_bytes  # "image 1" is @ellie
    for payload in submitted_to(fake_fal, VIDEO):
        frontal = payload["elements"][0]["frontal_image_url"]
        assert fake_fal.file_bytes(frontal) == sheet_bytes


def test_status_and_gc_of_animatics_know_a_stills_cards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from helpers import EXAMPLES

    shutil.copytree(EXAMPLES / "keyframes", tmp_path / "film", ignore=shutil.ignore_patterns(".storyc", "renders"))
    monkeypatch.chdir(tmp_path / "film")
    assert run("render", "board.yaml", "--backend", "animatic")[0] == 0
    before = set(Path("renders/animatic/stills").iterdir())
    edit(Path("board.yaml").resolve(), "first light", "dusk")  # meet-open changes, and so meet and play
    assert run("render", "board.yaml", "--backend", "animatic")[0] == 0
    code, out, _ = run("status", "board.yaml", "--backend", "animatic")
    assert code == 0 and "  still meet-open    done      renders/animatic/stills/meet-open-" in out
    code, out, _ = run("gc", "board.yaml", "--animatics")
    assert code == 0
    now = set(Path("renders/animatic/stills").iterdir())
    assert {p.name.rsplit("-", 2)[0] for p in before - now} == {"meet-open"} and len(before - now) == 3
    assert len(now) == 4  # ellie-sheet's card (unchanged) and the new meet-open's three
    assert all(p.is_file() for p in now)
    code, out, _ = run("status", "board.yaml", "--backend", "animatic")
    assert code == 0  # gc kept every current card and video


def test_an_unknown_still_is_adopted_by_the_request_fal_shows_and_resumed_never_resent(
    fake_fal: FakeFal, here: Path
) -> None:
    fake_fal.fail_next("submit", 502, after_processing=True, endpoint=EDIT)
    code, _, err = run("render", "board.yaml", "--yes", "--scene", "meet")
    assert code == 1 and "`storyc lock adopt --still meet-open --request-id ID` resumes it" in err
    (request_id,) = [j.request_id for j in fake_fal.jobs if j.endpoint_id == EDIT]
    code, out, err = run("lock", "adopt", "board.yaml", "--still", "meet-open", "--request-id", request_id, "--json")
    assert code == 0, err
    adopted = json.loads(out)
    assert (adopted["still"], adopted["state"]) == ("meet-open", "submitted")
    assert lock(here).renders[adopted["key"]].still == "meet-open"
    code, _, err = run("render", "board.yaml", "--yes", "--scene", "meet")
    assert code == 0, err
    assert fake_fal.accepted_count(endpoint=EDIT) == 1 and fake_fal.accepted_count(endpoint=VIDEO) == 1
    code, _, err = run("lock", "adopt", "board.yaml", "--still", "meet-opn", "--request-id", request_id)
    assert code == 2 and "no still 'meet-opn'" in err and "meet-open" in err
