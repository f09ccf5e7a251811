"""`storyc lock adopt`: a submit whose answer was lost is resumed by the request id fal shows, not re-sent.

fal is the fake fal server (it accepts the submit, then drops the answer); fal_client is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, make_project
from test_render_fal import BOARD

from storyc.cli import cli
from storyc.lock.lockfile import lock_path, read


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def unknown_meet(fake_fal: FakeFal) -> str:
    """Render `meet` with its submit's answer lost: fal has the job, the lock says `unknown`; fal's id."""
    fake_fal.drop_next("submit", count=1, after_processing=True)
    code, out, _ = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 1 and json.loads(out)["scenes"][0]["state"] == "unknown"
    fake_fal.clear_faults()
    assert len(fake_fal.jobs) == 1
    return fake_fal.jobs[0].request_id


def test_an_adopted_request_is_resumed_and_paid_once(fake_fal: FakeFal, board: Path) -> None:
    request_id = unknown_meet(fake_fal)
    code, _, err = run("render", "--yes", "--scene", "meet")
    assert code == 1 and "storyc lock adopt --scene meet --request-id ID" in err  # the way out is named
    code, out, err = run("lock", "adopt", "--scene", "meet", "--request-id", request_id, "--json")
    assert code == 0, err
    adopted = json.loads(out)
    assert (adopted["scene"], adopted["request_id"], adopted["state"]) == ("meet", request_id, "submitted")
    assert adopted["fal"] in ("queued", "running", "completed")  # what fal says of the job, asked just now
    entry = read(lock_path(board)).renders[adopted["key"]]
    assert (entry.state, entry.request_id, entry.sent_at is not None) == ("submitted", request_id, True)
    plan = json.loads(run("plan", "--scene", "meet", "--json")[1])
    assert [(s["state"], s["cost_usd"]) for s in plan["scenes"]] == [("resume", 0.0)]
    code, out, err = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 0, err
    assert json.loads(out)["scenes"][0]["state"] == "done" and json.loads(out)["scenes"][0]["request_id"] == request_id
    assert fake_fal.accepted_count() == 1  # the one job fal took, never a second


def test_a_request_fal_does_not_know_is_refused_and_nothing_is_recorded(fake_fal: FakeFal, board: Path) -> None:
    unknown_meet(fake_fal)
    before = lock_path(board).read_bytes()
    bogus = "00000000-0000-4000-8000-000000000000"
    code, _, err = run("lock", "adopt", "--scene", "meet", "--request-id", bogus)
    assert code == 1 and f"fal does not know request {bogus} on fal-ai/kling-video/o3/4k/reference-to-video" in err
    assert lock_path(board).read_bytes() == before


def test_adopting_where_there_is_nothing_to_adopt_is_refused(fake_fal: FakeFal, board: Path) -> None:
    assert run("render", "--yes", "--scene", "rest")[0] == 0
    request_id = fake_fal.jobs[0].request_id
    code, _, err = run("lock", "adopt", "--scene", "rest", "--request-id", request_id)
    assert code == 1 and "scene 'rest' is rendered: nothing to adopt" in err
    code, _, err = run("lock", "adopt", "--scene", "nope", "--request-id", request_id)
    assert code == 2 and "no scene 'nope'" in err
    code, _, err = run("lock", "adopt", "--scene", "meet", "--request-id", "../../etc/passwd")
    assert code == 2 and "is not a fal request id" in err
    assert fake_fal.accepted_count() == 1


def test_without_a_key_nothing_is_asked_or_recorded(
    fake_fal: FakeFal, board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = unknown_meet(fake_fal)
    before = lock_path(board).read_bytes()
    monkeypatch.delenv("FAL_KEY")
    code, _, err = run("lock", "adopt", "--scene", "meet", "--request-id", request_id)
    assert code == 1 and "FAL_KEY" in err
    assert lock_path(board).read_bytes() == before


def test_the_team_store_learns_the_adopted_request_so_no_clone_pays_again(
    tmp_path: Path, fake_fal: FakeFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_project(tmp_path / "alice", BOARD, BASIC_IMAGES)
    bob = make_project(tmp_path / "bob", BOARD, BASIC_IMAGES)
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("STORYC_STORE", (tmp_path / "store").as_uri())
    monkeypatch.chdir(alice.parent)
    request_id = unknown_meet(fake_fal)
    monkeypatch.chdir(bob.parent)
    code, out, _ = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 1 and json.loads(out)["scenes"][0]["state"] == "unknown"  # the store says fal may have it
    monkeypatch.chdir(alice.parent)
    assert run("lock", "adopt", "--scene", "meet", "--request-id", request_id)[0] == 0
    monkeypatch.chdir(bob.parent)
    code, out, err = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 0, err
    scene = json.loads(out)["scenes"][0]
    assert (scene["state"], scene["request_id"]) == ("done", request_id)  # resumed by alice's adopted id
    assert fake_fal.accepted_count() == 1
