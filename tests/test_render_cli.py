"""`storyc plan|render|status|pull|gc` as users run them: click's runner and real subprocesses.

fal is the fake fal server; fal_client is the real one, pointed at the fake through
its own module URLs (in-process) or its own environment (subprocesses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, FAL_LAUNCH, make_project
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


def test_plan_reads_nothing_from_the_network_and_prices_each_scene(fake_fal: FakeFal, board: Path) -> None:
    code, out, _ = run("plan", "board.yaml")
    assert code == 0
    assert out.splitlines()[-1] == "fal: 3 scenes to render (11 s), $4.62; 0 cached, 0 to resume at no new cost"
    assert "  meet  render    3 s  $   1.26  new scene" in out.splitlines()
    code, out, _ = run("plan", "board.yaml", "--json", "--scene", "rest")
    assert json.loads(out)["scenes"][0] == {
        "scene": "rest",
        "state": "render",
        "key": json.loads(out)["scenes"][0]["key"],
        "seconds": 3,
        "cost_usd": 1.26,
        "price_certain": True,
        "note": "new scene",
    }
    assert json.loads(out)["uncertain_usd"] == 0.0
    assert fake_fal.requests == []


def test_no_terminal_and_no_yes_means_no_spend(fake_fal: FakeFal, board: Path) -> None:
    code, _, err = run("render", "board.yaml")
    assert code == 1
    assert "rendering would spend $4.62; no terminal to ask, so nothing was sent (pass --yes to confirm)" in err
    assert fake_fal.requests == []
    assert not lock_path(board).exists()


def test_max_cost_refuses_a_dearer_plan(fake_fal: FakeFal, board: Path) -> None:
    code, _, err = run("render", "board.yaml", "--yes", "--max-cost", "4")
    assert code == 1
    assert "the plan costs $4.62, above --max-cost $4.00; nothing was sent" in err
    assert fake_fal.requests == []


def test_render_yes_json_then_status_then_a_cached_rerun(fake_fal: FakeFal, board: Path) -> None:
    code, out, err = run("render", "board.yaml", "--yes", "--json", "--concurrency", "3")
    assert code == 0, err
    summary = json.loads(out)
    assert [(s["scene"], s["state"], s["cost_usd"]) for s in summary["scenes"]] == [
        ("meet", "done", 1.26),
        ("play", "done", 2.1),
        ("rest", "done", 1.26),
    ]
    assert set(summary["scenes"][0]) == {"scene", "state", "key", "request_id", "path", "cost_usd"}
    assert summary["spent_usd"] == 4.62
    assert "3 done; spent $4.62" in err
    assert fake_fal.key.split(":")[1] not in out + err

    code, out, _ = run("status", "board.yaml")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [["meet", "done"], ["play", "done"], ["rest", "done"]]

    fake_fal.reset_counters()
    code, _, err = run("render", "board.yaml")  # nothing to pay: no question, nothing sent
    assert code == 0
    assert "3 cached; spent $0.00" in err
    assert fake_fal.requests == []


def test_a_failed_scene_is_reported_at_its_line_and_exits_1(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_jobs_matching("sleeps", error="bad prompt", error_type="content_policy_violation", status=422)
    code, _, err = run("render", "board.yaml", "--yes")
    assert code == 1
    assert "board.yaml:25:13: error: scene 'rest': fal refused the request (HTTP 422): prompt: " in err
    assert "2 done, 1 failed; spent $3.36" in err
    code, out, _ = run("status", "board.yaml")
    assert code == 1
    assert "rest  failed" in out


def test_status_pull_and_gc(fake_fal: FakeFal, board: Path) -> None:
    assert run("render", "board.yaml", "--yes")[0] == 0
    lock = read(lock_path(board))
    meet = next(r for r in lock.renders.values() if r.scene == "meet")
    rest = next(r for r in lock.renders.values() if r.scene == "rest")
    assert meet.video is not None and meet.video.path and rest.video is not None and rest.video.path
    (board.parent / meet.video.path).unlink()
    (board.parent / rest.video.path).write_bytes(b"not the video")
    code, out, _ = run("status", "board.yaml")
    assert code == 1
    assert f"meet  missing   {meet.video.path} is gone; `storyc pull` fetches it again" in out
    assert "rest  altered" in out

    fake_fal.reset_counters()
    code, out, _ = run("pull", "board.yaml")
    assert code == 0, out
    assert out.splitlines()[-1] == "2 videos downloaded"
    assert fake_fal.count("submit") == 0 and fake_fal.count("download") == 2
    assert run("status", "board.yaml")[0] == 0

    board.write_text(board.read_text("utf-8").replace("@ellie sleeps.", "@ellie dreams."), "utf-8")
    code, out, _ = run("status", "board.yaml")
    assert "rest  stale" in out
    code, out, _ = run("gc", "board.yaml", "--dry-run")
    assert out.splitlines()[-1] == "would drop 1 render no scene uses"
    assert len(read(lock_path(board)).renders) == 3
    code, out, _ = run("gc", "board.yaml", "--delete-videos")
    assert code == 0 and out.splitlines()[-1] == "dropped 1 render no scene uses"
    assert rest.cost_usd and len(read(lock_path(board)).renders) == 2
    assert not (board.parent / rest.video.path).exists()


def test_a_second_render_of_the_same_board_is_refused_while_one_runs(fake_fal: FakeFal, board: Path) -> None:
    from storyc.lock.lockfile import open_store

    with open_store(board):
        code, _, err = run("render", "board.yaml", "--yes")
    assert code == 1
    assert "is in use by another storyc command" in err
    assert fake_fal.requests == []


def test_a_corrupt_lock_is_a_clear_error(fake_fal: FakeFal, board: Path) -> None:
    lock_path(board).write_text("version: 1\nrenders:\n  k:\n    state: maybe\n", "utf-8")
    for command in (["plan"], ["render", "--yes"], ["status"]):
        code, _, err = run(*command, "board.yaml")
        assert code == 1
        expected = "renders.k.state: expected one of intent, unknown, submitted, done, failed, lost"
        assert f"board.lock:4:5: error: {expected}" in err
    assert fake_fal.requests == []


# --- real processes ---------------------------------------------------------------------

_LAUNCH = FAL_LAUNCH


def _storyc_process(fake: FakeFal, *args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_after_submission_resumes_with_no_new_submission(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.job_seconds = 3.0
    proc = _storyc_process(fake_fal, "render", "board.yaml", "--yes", "--scene", "meet", cwd=board.parent)
    try:
        deadline = time.monotonic() + 30
        while not _has_submitted(board):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the render never recorded its submission"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    (entry,) = read(lock_path(board)).renders.values()
    assert entry.state == "submitted" and entry.request_id
    assert len(fake_fal.submits) == 1

    fake_fal.reset_counters()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, "render", "board.yaml", "--yes", "--scene", "meet", "--json"],
        cwd=board.parent,
        env={**os.environ, "FAL_KEY": fake_fal.key, "FAKE_FAL_URL": fake_fal.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (scene,) = json.loads(done.stdout)["scenes"]
    assert (scene["state"], scene["request_id"], scene["cost_usd"]) == ("done", entry.request_id, 0.0)
    assert fake_fal.count("submit") == 0
    assert fake_fal.key.split(":")[1] not in done.stdout + done.stderr


def _has_submitted(board: Path) -> bool:
    try:
        return any(r.state == "submitted" for r in read(lock_path(board)).renders.values())
    except Exception:  # the file may not exist yet, or be mid-rename
        return False


def test_ctrl_c_keeps_the_submitted_entry_and_exits_130(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.job_seconds = 30.0
    proc = _storyc_process(fake_fal, "render", "board.yaml", "--yes", "--scene", "rest", cwd=board.parent)
    deadline = time.monotonic() + 30
    while not _has_submitted(board) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted: submitted renders stay in the lock" in err
    (entry,) = read(lock_path(board)).renders.values()
    assert entry.state == "submitted"
    assert fake_fal.count("cancel") == 0  # paid jobs are not cancelled unless asked


def test_fal_client_environment_reaches_a_tls_gateway(fake_fal_tls: FakeFal, tmp_path: Path) -> None:
    """No patching at all: FAL_KEY, FAL_QUEUE_RUN_HOST and SSL_CERT_FILE, as a team's gateway would set."""
    board = make_project(
        tmp_path / "remote",
        """
        version: 1
        title: Remote assets only
        target:
          endpoint: fal-ai/kling-video/o3/4k/reference-to-video
        styles:
          noir: https://example.org/noir.jpg
        scenes:
          - id: one
            prompt: "A street at night, styled like @noir."
            duration: 3
        """,
    )
    env = {**os.environ, **fake_fal_tls.subprocess_env()}
    done = subprocess.run(
        [sys.executable, "-m", "storyc", "render", "board.yaml", "--yes"],
        cwd=board.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 done; spent $1.26" in done.stderr
    assert len(fake_fal_tls.submits) == 1
    assert fake_fal_tls.submits[0]["image_urls"] == ["https://example.org/noir.jpg"]
    assert fake_fal_tls.key.split(":")[1] not in done.stdout + done.stderr + lock_path(board).read_text("utf-8")


def test_cancel_on_interrupt_asks_fal_to_cancel_and_keeps_the_entry(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.job_seconds = 30.0
    args = ("render", "board.yaml", "--yes", "--scene", "rest", "--cancel-on-interrupt")
    proc = _storyc_process(fake_fal, *args, cwd=board.parent)
    deadline = time.monotonic() + 30
    while not _has_submitted(board) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert fake_fal.count("cancel") == 1
    assert "asked fal to cancel request" in err
    (entry,) = read(lock_path(board)).renders.values()
    assert entry.state == "submitted"  # what fal does with a cancelled job is its call; nothing is forgotten


def test_pull_says_when_the_recorded_url_is_gone(fake_fal: FakeFal, board: Path) -> None:
    assert run("render", "board.yaml", "--yes", "--scene", "meet")[0] == 0
    (entry,) = read(lock_path(board)).renders.values()
    assert entry.video is not None and entry.video.path
    (board.parent / entry.video.path).unlink()
    fake_fal.expire_file(entry.video.url)
    code, out, _ = run("pull", "board.yaml")
    assert code == 1
    assert "is no longer at" in out and "0 videos downloaded, 1 failed" in out


@pytest.mark.parametrize("option", ["--max-cost", "--upload-ttl"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_numeric_options_refuse_nan_and_infinity(board: Path, option: str, value: str) -> None:
    code, _, err = run("render", "board.yaml", option, value, "--yes")
    assert code == 2 and ("is not a finite number" in err or "is not in the range" in err), err
    assert "Traceback" not in err
