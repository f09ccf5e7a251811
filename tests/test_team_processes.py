"""Several clones rendering one board at once, as real `storyc render` processes.

Each clone is its own folder (its own lock), all share one team store (a directory, or S3 served
by moto) and one fake fal server; the real fal_client in each process talks to the fake.  What
is counted is what money is about: the jobs the fake accepted.
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
from fakefal import FakeFal
from helpers import FAL_LAUNCH, make_project
from s3server import aws_env, new_bucket

from storyc.lock.lockfile import lock_path, read

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BOARD = """
version: 1
title: Team
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    prompt: "@ellie walks in."
    duration: 3
  - id: rest
    prompt: "@ellie sleeps."
    duration: 4
  - id: wake
    prompt: "@ellie wakes up."
    duration: 3
"""
IMAGES = {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "silver"}



@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "file":
        folder = tmp_path / "team store"
        folder.mkdir()
        return folder.as_uri()
    endpoint = request.getfixturevalue("moto_endpoint")
    aws_env(monkeypatch, endpoint)  # in os.environ, so the storyc processes inherit it
    return f"s3://{new_bucket(endpoint)}/film"


def storyc(fake: FakeFal, clone: Path, store: str, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": store, **env}
    return subprocess.Popen(
        [sys.executable, "-c", FAL_LAUNCH, *args],
        cwd=clone.parent,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("n_clones", [2, 4])
def test_clones_rendering_at_once_pay_once_per_request(
    fake_fal: FakeFal, tmp_path: Path, store: str, n_clones: int
) -> None:
    fake_fal.job_seconds = 1.0
    clones = [make_project(tmp_path / f"clone{i}", BOARD, IMAGES) for i in range(n_clones)]
    procs = [storyc(fake_fal, c, store, "render", "board.yaml", "--yes", "--json") for c in clones]
    outputs = [p.communicate(timeout=150) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert fake_fal.key.split(":")[1] not in out + err
        assert "s3cr3t" not in out + err
    assert fake_fal.accepted_count() == 3  # one job per scene, for the whole team
    spent = [json.loads(out)["spent_usd"] for out, _ in outputs]
    assert sum(spent) == pytest.approx(4.20)  # 10 s at $0.42, paid by whichever clone claimed each scene
    locks = [read(lock_path(c)) for c in clones]
    for key, entry in locks[0].renders.items():
        assert entry.state == "done" and entry.video is not None and entry.video.path is not None
        for clone, lock in zip(clones, locks, strict=True):
            other = lock.renders[key]
            assert other.state == "done" and other.request_id == entry.request_id
            assert other.video is not None and other.video.sha256 == entry.video.sha256
            assert (clone.parent / entry.video.path).is_file()


def test_killed_between_submit_and_record_nobody_pays_again(fake_fal: FakeFal, tmp_path: Path, store: str) -> None:
    alice = make_project(tmp_path / "alice", BOARD, IMAGES)
    bob = make_project(tmp_path / "bob", BOARD, IMAGES)
    fake_fal.delay_next("submit", 30, after_processing=True)  # fal accepts, the answer takes 30 s
    proc = storyc(fake_fal, alice, store, "render", "board.yaml", "--yes", "--scene", "meet", STORYC_CLAIM_LEASE="1")
    try:
        deadline = time.monotonic() + 60
        while fake_fal.accepted_count() < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    (entry,) = read(lock_path(alice)).renders.values()
    assert entry.state == "intent"  # written before the submit went out
    fake_fal.clear_faults()
    time.sleep(1.1)  # alice's claim lease is over: a dead claimer must not block forever...
    done = storyc(fake_fal, bob, store, "render", "board.yaml", "--yes", "--scene", "meet", "--json")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 1, err
    (scene,) = json.loads(out)["scenes"]
    assert scene["state"] == "unknown"  # ...but she was sending: fal may have it, so bob does not pay again
    assert fake_fal.accepted_count() == 1
    again = storyc(fake_fal, alice, store, "plan", "board.yaml", "--json")
    out, err = again.communicate(timeout=60)
    states = {s["scene"]: s["state"] for s in json.loads(out)["scenes"]}
    assert states["meet"] == "unknown" and fake_fal.accepted_count() == 1
