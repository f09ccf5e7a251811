"""A key paid for twice (two clones without a team store each submitted it) keeps both requests.

The two clones are two branches of a real git repository; each renders `meet` against the fake
fal server (the real fal_client), so each lock holds a request id fal really accepted.  The
branches are merged by git with the lock merge driver (`storyc lock merge`), or without it and
repaired (`storyc lock repair`).  Then `storyc render` must resume both requests and fetch both
videos, and fal must see no new submit.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, make_project
from test_lockmerge import git_repo, run_git, subprocess_env
from test_render_fal import BOARD

from storyc.cli import cli
from storyc.compile.assets import sha256_file
from storyc.lock.lockfile import Lock, Render, dumps, lock_path, read, video_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def as_submitted(entry: Render) -> Render:
    """What a run killed after fal accepted the request leaves: submitted, nothing fetched."""
    return replace(entry, state="submitted", video=None)


def clone_renders(root: Path, branch: str, state: str) -> str:
    """Branch `branch` off main, render `meet` there (fal accepts a request), leave it `state`; its id."""
    run_git(root, "checkout", "-q", "-b", branch, "main")
    shutil.rmtree(root / "renders", ignore_errors=True)  # each clone has only its own files
    code, out, err = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 0, err
    key = json.loads(out)["scenes"][0]["key"]
    lock = read(lock_path(root / "board.yaml"))
    entry = lock.renders[key]
    if state == "submitted":
        shutil.rmtree(root / "renders")
        lock = replace(lock, renders={key: as_submitted(entry)})
        lock_path(root / "board.yaml").write_text(dumps(lock), "utf-8")
    run_git(root, "add", "board.lock")
    run_git(root, "commit", "-q", "-m", f"render meet on {branch}")
    assert entry.request_id is not None
    return entry.request_id


def project(root: Path, *, driver: bool) -> Path:
    git_repo(root, driver=driver)
    board = make_project(root, BOARD, BASIC_IMAGES)
    (root / ".gitignore").write_text("renders/\n.storyc/\n", "utf-8")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "board")
    return board


def merge_clones(root: Path, *, driver: bool) -> None:
    """On `alice`, merge `bob`: with the merge driver, or by git's line merge and `storyc lock repair`."""
    run_git(root, "checkout", "-q", "alice")
    done = run_git(root, "merge", "--no-edit", "bob", check=False)
    if driver:
        assert done.returncode == 0, done.stdout + done.stderr
        return
    assert done.returncode != 0 and "<<<<<<<" in (root / "board.lock").read_text("utf-8")
    code, out, err = run("lock", "repair", "board.yaml")
    assert code == 0 and "1 paid on both sides (both request ids kept)" in out, err


def verified(board_dir: Path, entry: Render) -> bool:
    video = entry.video
    assert video is not None and video.path is not None
    return (board_dir / video.path).is_file() and sha256_file(board_dir / video.path) == video.sha256


def satisfies_the_lock_schema(path: Path) -> None:
    import jsonschema
    from ruamel.yaml import YAML

    from storyc.resources import schemas_dir

    schema = json.loads((schemas_dir() / "lock.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(YAML(typ="safe", pure=True).load(path.read_text("utf-8")))


CASES = [("submitted", "submitted"), ("done", "submitted"), ("submitted", "done"), ("done", "done")]


@pytest.mark.slow
@pytest.mark.parametrize("driver", [True, False], ids=["merge-driver", "repair"])
@pytest.mark.parametrize(("alice", "bob"), CASES, ids=["-".join(c) for c in CASES])
def test_both_paid_requests_survive_the_merge_and_are_resumed_without_a_new_submit(
    tmp_path: Path, fake_fal: FakeFal, monkeypatch: pytest.MonkeyPatch, driver: bool, alice: str, bob: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])  # git runs this checkout's driver
    board = project(tmp_path / "film", driver=driver)
    monkeypatch.chdir(board.parent)
    ids = {clone_renders(board.parent, "alice", alice), clone_renders(board.parent, "bob", bob)}
    assert len(ids) == 2 and fake_fal.accepted_count() == 2  # both clones paid

    merge_clones(board.parent, driver=driver)
    assert all(rid in lock_path(board).read_text("utf-8") for rid in ids)  # neither paid request id was dropped
    lock = read(lock_path(board))
    ((key, entry),) = lock.renders.items()
    assert set(entry.requests()) == ids
    satisfies_the_lock_schema(lock_path(board))
    assert entry.request_id in ids and set(entry.also_paid) == ids - {entry.request_id}
    if "done" in (alice, bob):
        assert entry.state == "done"  # a finished video is the scene's, whichever side had it
    assert [(s["state"], s["cost_usd"]) for s in json.loads(run("plan", "--json")[1])["scenes"][:1]] == [
        ("cached" if entry.state == "done" else "resume", 0.0)
    ]
    (other,) = entry.also_paid
    status = json.loads(run("status", "--scene", "meet", "--json")[1])["scenes"][0]
    assert [p["request_id"] for p in status["also_paid"]] == [other]  # visible before it is fetched

    code, out, err = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 0, err
    run("pull", "board.yaml")  # a done/done merge may give the scene the other clone's video: restored here
    assert fake_fal.accepted_count() == 2  # resumed and fetched, never submitted again

    entry = read(lock_path(board)).renders[key]
    assert set(entry.requests()) == ids
    assert entry.state == "done" and verified(board.parent, entry)
    (extra,) = entry.also_paid.values()
    assert extra.state == "done" and verified(board.parent, extra)  # the other paid video, on disk too
    satisfies_the_lock_schema(lock_path(board))
    assert extra.video is not None and entry.video is not None and extra.video.path != entry.video.path
    assert extra.video.path is not None
    (board.parent / extra.video.path).unlink()
    code, out, err = run("pull", "board.yaml")
    assert code == 0 and extra.video.path in out, err
    assert verified(board.parent, extra) and fake_fal.accepted_count() == 2  # `pull` fetches it too, for free
    code, out, _ = run("status", "--scene", "meet")
    assert code == 0 and f"also paid: request {extra.request_id}, done ({extra.video.path})" in out
    again = read(lock_path(board))
    assert run("render", "--yes", "--scene", "meet")[0] == 0 and read(lock_path(board)) == again  # settled


def two_paid_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, Render, Render]:
    """A board whose scene `meet` fal accepted twice (as two clones would have): the key, both submitted."""
    board = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(board.parent)
    paid = []
    for _ in range(2):
        lock_path(board).unlink(missing_ok=True)
        code, out, err = run("render", "--yes", "--scene", "meet", "--json")
        assert code == 0, err
        key = json.loads(out)["scenes"][0]["key"]
        paid.append(as_submitted(read(lock_path(board)).renders[key]))
    shutil.rmtree(board.parent / "renders")
    return board, key, paid[0], paid[1]


def test_a_failed_own_request_gives_way_to_the_other_paid_one_which_is_resumed_not_resent(
    tmp_path: Path, fake_fal: FakeFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    board, key, first, second = two_paid_requests(tmp_path, monkeypatch)
    failed = replace(first, state="failed", error="content policy")
    lock_path(board).write_text(dumps(Lock(renders={key: replace(failed, also_paid={str(second.request_id): second})})))
    plan = json.loads(run("plan", "--scene", "meet", "--json")[1])
    assert [(s["state"], s["cost_usd"]) for s in plan["scenes"]] == [("resume", 0.0)]
    code, out, err = run("render", "--yes", "--scene", "meet", "--json")
    assert code == 0, err
    scene = json.loads(out)["scenes"][0]
    assert (scene["state"], scene["request_id"], scene["cost_usd"]) == ("done", second.request_id, 0.0)
    entry = read(lock_path(board)).renders[key]
    assert (entry.request_id, entry.state) == (second.request_id, "done")
    assert entry.also_paid[str(first.request_id)].state == "failed"  # still listed: nothing is forgotten
    assert fake_fal.accepted_count() == 2


def test_a_run_keeps_the_first_finished_request_as_the_scenes_video(
    tmp_path: Path, fake_fal: FakeFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both submitted: the entry's own request finishes at the key's file and stays the scene's video;
    the other gets a file of its own; merging that lock with itself then changes nothing."""
    board, key, first, second = two_paid_requests(tmp_path, monkeypatch)
    lock_path(board).write_text(dumps(Lock(renders={key: replace(first, also_paid={str(second.request_id): second})})))
    code, _, err = run("render", "--yes", "--scene", "meet")
    assert code == 0, err
    entry = read(lock_path(board)).renders[key]
    assert entry.request_id == first.request_id and entry.video is not None
    assert entry.video.path == video_path("meet", key)
    assert set(entry.also_paid) == {second.request_id} and fake_fal.accepted_count() == 2
    text = lock_path(board).read_text("utf-8")
    for name in ("base", "ours", "theirs"):
        (tmp_path / name).write_text(text, "utf-8")
    assert run("lock", "merge", *(str(tmp_path / n) for n in ("base", "ours", "theirs")))[0] == 0
    assert (tmp_path / "ours").read_text("utf-8") == text


def test_gc_forgets_a_key_with_its_other_paid_requests_and_deletes_every_video_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from decimal import Decimal

    from storyc.lock.lockfile import Video, also_paid_video_path

    board = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(board.parent)
    key = "sha256:" + "ab" * 32  # no scene of the board has this request any more
    paths = [video_path("old", key), also_paid_video_path("old", key, "req-2")]
    for path in paths:
        (board.parent / path).parent.mkdir(exist_ok=True)
        (board.parent / path).write_bytes(b"video")
    own = Render("old", "e/p", "done", 3, Decimal("1.26"), "req-1", Video("https://v/1.mp4", 5, None, paths[0]))
    other = replace(own, request_id="req-2", video=Video("https://v/2.mp4", 5, None, paths[1]))
    lock_path(board).write_text(dumps(Lock(renders={key: replace(own, also_paid={"req-2": other})})), "utf-8")
    code, out, err = run("gc", "--delete-videos", "--json")
    assert code == 0, err
    assert [d["key"] for d in json.loads(out)["dropped"]] == [key]
    assert not any((board.parent / path).exists() for path in paths)
