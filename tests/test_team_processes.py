"""Several clones rendering one board at once, as real `storyc render` processes.

Each clone is its own folder (its own lock), all share one team store (a directory, or S3 served
by moto) and one fake fal server; the real fal_client in each process talks to the fake.  What
is counted is what money is about: the jobs the fake accepted.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakefal import FakeFal
from helpers import (
    CLAIM_THEN_HANG,
    FAL_LAUNCH,
    OTHER_HOST,
    claimed_again,
    key_of,
    kill,
    make_project,
    seconds_until,
    waits_on_a_claim,
)
from s3server import aws_env, new_bucket

from storyc.lock.lockfile import lock_path, read
from storyc.team.store import ClaimInfo, open_team_store

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


def storyc(
    fake: FakeFal, clone: Path, store: str, *args: str, script: str = FAL_LAUNCH, host: str = "same host", **env: str
) -> subprocess.Popen[str]:
    """A storyc process for `clone`; on "other host" this host can't see its process (its own pid namespace)."""
    environ = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": store, **env}
    return subprocess.Popen(
        [*(OTHER_HOST if host == "other host" else []), sys.executable, "-c", script, *args],
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
    alice, bob = two_clones(tmp_path)
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


# --- a claimer that dies: the others know within seconds, not at the end of the 15-minute lease ---------

# Short heartbeats for the tests; the defaults are one every 20 s, dead after 60 s.
DEAD_AFTER = 2.0
LIVENESS = {"STORYC_CLAIM_HEARTBEAT": "0.5", "STORYC_CLAIM_DEAD_AFTER": str(DEAD_AFTER)}


@functools.cache
def can_unshare() -> bool:
    """Whether a process can be started in its own pid namespace here (root on Linux, with util-linux)."""
    try:
        return subprocess.run([*OTHER_HOST, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


HOSTS = [
    "same host",
    pytest.param("other host", marks=pytest.mark.skipif(not can_unshare(), reason="needs unshare --pid (root)")),
]


def two_clones(tmp_path: Path) -> tuple[Path, Path]:
    return make_project(tmp_path / "alice", BOARD, IMAGES), make_project(tmp_path / "bob", BOARD, IMAGES)


def accepted_or_ended(fake: FakeFal, proc: subprocess.Popen[str]) -> None:
    """Wait until fal accepted the one job `proc` sends (or `proc` ended)."""
    assert seconds_until(lambda: fake.accepted_count() == 1 or proc.poll() is not None, 60) is not None


@pytest.mark.parametrize("host", HOSTS)
def test_a_claimer_killed_before_sending_frees_the_key_within_seconds(
    fake_fal: FakeFal, tmp_path: Path, store: str, host: str
) -> None:
    alice, bob = two_clones(tmp_path)
    holder = storyc(fake_fal, alice, store, "meet", script=CLAIM_THEN_HANG, host=host, **LIVENESS)
    waiting = storyc(fake_fal, bob, store, "render", "board.yaml", "--yes", "--scene", "meet", "--json", **LIVENESS)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed", holder.communicate()
        waits_on_a_claim(waiting)
        time.sleep(2 * DEAD_AFTER)  # a live claimer: its heartbeats keep the key
        assert waiting.poll() is None and fake_fal.accepted_count() == 0
        key = key_of(bob, "meet")
        first = open_team_store(store).lookup(key)
        assert isinstance(first, ClaimInfo) and first.n == 1
        killed = time.monotonic()
        kill(holder)
        freed = seconds_until(lambda: claimed_again(store, key), DEAD_AFTER + 8, killed)
        print(f"\n{store.split(':')[0]}, {host}: key free {freed} s after the claimer was killed")
        assert freed is not None  # before heartbeats: bob waited the 15-minute lease
        out, err = waiting.communicate(timeout=60)
    finally:
        kill(holder)
        kill(waiting)
    assert waiting.returncode == 0, err
    (scene,) = json.loads(out)["scenes"]
    assert scene["state"] == "done" and fake_fal.accepted_count() == 1
    assert first.beats >= 3 and first.holder is not None  # what kept bob waiting while alice lived
    if host == "same host":
        assert freed < 1.5  # its process is gone: known at the next look, no heartbeat to wait for
    else:
        assert DEAD_AFTER - 0.6 <= freed < DEAD_AFTER + 3  # its last beat was at most 0.5 s before the kill


@pytest.mark.parametrize("host", HOSTS)
def test_a_claimer_killed_after_sending_is_unknown_to_the_others_within_seconds(
    fake_fal: FakeFal, tmp_path: Path, store: str, host: str
) -> None:
    alice, bob = two_clones(tmp_path)
    fake_fal.delay_next("submit", 30, after_processing=True)  # fal accepts, the answer takes 30 s
    sender = storyc(fake_fal, alice, store, "render", "board.yaml", "--yes", "--scene", "meet", host=host, **LIVENESS)
    waiting: subprocess.Popen[str] | None = None
    try:
        accepted_or_ended(fake_fal, sender)
        assert sender.poll() is None, sender.communicate()
        waiting = storyc(fake_fal, bob, store, "render", "board.yaml", "--yes", "--scene", "meet", "--json", **LIVENESS)
        waits_on_a_claim(waiting)
        time.sleep(2 * DEAD_AFTER)  # alice is sending, alive: bob waits for her answer
        assert waiting.poll() is None
        key = key_of(bob, "meet")
        killed = time.monotonic()
        kill(sender)
        took = seconds_until(lambda: read(lock_path(bob)).renders.get(key) is not None, DEAD_AFTER + 8, killed)
        print(f"\n{store.split(':')[0]}, {host}: unknown {took} s after the sender was killed")
        assert took is not None  # before heartbeats: bob waited the 15-minute lease
        out, err = waiting.communicate(timeout=60)
    finally:
        kill(sender)
        if waiting is not None:
            kill(waiting)
    assert waiting.returncode == 1, err
    (scene,) = json.loads(out)["scenes"]
    assert scene["state"] == "unknown"
    assert fake_fal.accepted_count() == 1  # fal may have alice's job: nobody sends it again
    assert took < (1.5 if host == "same host" else DEAD_AFTER + 3)


def test_a_live_claimer_with_a_slow_submit_is_never_overtaken(fake_fal: FakeFal, tmp_path: Path, store: str) -> None:
    alice, bob = two_clones(tmp_path)
    fake_fal.delay_next("submit", 4 * DEAD_AFTER, after_processing=True)  # fal's answer comes late
    args = ("render", "board.yaml", "--yes", "--scene", "meet", "--json")
    sender = storyc(fake_fal, alice, store, *args, host="other host" if can_unshare() else "same host", **LIVENESS)
    waiting: subprocess.Popen[str] | None = None
    try:
        accepted_or_ended(fake_fal, sender)
        waiting = storyc(fake_fal, bob, store, *args, **LIVENESS)
        sent, _ = sender.communicate(timeout=60)
        got, err = waiting.communicate(timeout=60)
    finally:
        kill(sender)
        if waiting is not None:
            kill(waiting)
    assert sender.returncode == 0 and waiting.returncode == 0, err
    (first,) = json.loads(sent)["scenes"]
    (second,) = json.loads(got)["scenes"]
    assert second["state"] == "done" and second["request_id"] == first["request_id"]  # resumed, not sent again
    assert fake_fal.accepted_count() == 1
