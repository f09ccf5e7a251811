"""Liveness benchmark: how soon a teammate knows that the clone holding a claim died.

Alice's clone claims scene `meet` and is killed with SIGKILL; bob's `storyc render` of the same
scene is already waiting on her claim.  Measured from the kill:

- died before sending: until bob's claim 2 is in the store (he then renders it);
- died after sending (`.sending` written, fal accepted, no answer yet): until bob's lock says
  `unknown` (nothing is sent again).

Alice runs on this host, or in her own pid namespace (`unshare`), where this host can't see her
process and only her heartbeats tell.  With the real defaults (a heartbeat every 20 s, dead after
60 s) unless `--fast` (0.5 s / 2 s, as the tests).  One team store: a directory, or moto S3 (`--s3`).

    python benchmarks/bench_liveness.py [--s3] [--fast]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import helpers  # noqa: E402
from fakefal import FakeFal  # noqa: E402 (after the path above)
from s3server import ACCESS_KEY, SECRET, new_bucket, serve_moto  # noqa: E402

from storyc.lock.lockfile import lock_path, read  # noqa: E402

RENDER = ("render", "board.yaml", "--yes", "--scene", "meet", "--json")


def launch(script: str, clone: Path, env: dict[str, str], args: tuple[str, ...], host: str) -> subprocess.Popen[str]:
    prefix = helpers.OTHER_HOST if host == "other host" else []
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", script, *args],
        cwd=clone.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def clones(root: Path) -> tuple[Path, Path]:
    alice = helpers.make_project(root / "alice", helpers.ELLIE_BOARD, helpers.ELLIE_IMAGES)
    return alice, helpers.make_project(root / "bob", helpers.ELLIE_BOARD, helpers.ELLIE_IMAGES)


def died_before_sending(root: Path, env: dict[str, str], store: str, host: str, limit: float) -> float | None:
    alice, bob = clones(root)
    fake = FakeFal(job_seconds=1.0).start()
    env = {**env, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": store}
    holder = launch(helpers.CLAIM_THEN_HANG, alice, env, ("meet",), host)
    waiting: subprocess.Popen[str] | None = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        waiting = launch(helpers.FAL_LAUNCH, bob, env, RENDER, "same host")
        helpers.waits_on_a_claim(waiting)
        key = helpers.key_of(bob, "meet")
        killed = time.monotonic()
        helpers.kill(holder)
        return helpers.seconds_until(lambda: helpers.claimed_again(store, key), limit, killed)
    finally:
        helpers.kill(holder)
        if waiting is not None:
            helpers.kill(waiting)
        fake.stop()


def died_after_sending(root: Path, env: dict[str, str], store: str, host: str, limit: float) -> float | None:
    alice, bob = clones(root)
    fake = FakeFal(job_seconds=1.0).start()
    env = {**env, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": store}
    fake.delay_next("submit", limit + 30, after_processing=True)  # fal accepts; the answer never comes in time
    sender = launch(helpers.FAL_LAUNCH, alice, env, RENDER, host)
    waiting: subprocess.Popen[str] | None = None
    try:
        assert helpers.seconds_until(lambda: fake.accepted_count() == 1, 60) is not None
        waiting = launch(helpers.FAL_LAUNCH, bob, env, RENDER, "same host")
        helpers.waits_on_a_claim(waiting)
        key = helpers.key_of(bob, "meet")
        killed = time.monotonic()
        helpers.kill(sender)
        return helpers.seconds_until(lambda: read(lock_path(bob)).renders.get(key) is not None, limit, killed)
    finally:
        helpers.kill(sender)
        if waiting is not None:
            helpers.kill(waiting)
        fake.stop()


@contextlib.contextmanager
def team_store(use_s3: bool, tmp: Path) -> Iterator[tuple[Callable[[str], str], dict[str, str]]]:
    """A fresh store for each case (by name), and the environment that reaches it."""
    if not use_s3:

        def folder(case: str) -> str:
            (tmp / case).mkdir()
            return (tmp / case).as_uri()

        yield folder, {}
        return
    with serve_moto() as endpoint:
        env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        os.environ.update(env)  # for this process's own looks at the store
        bucket = new_bucket(endpoint)
        yield (lambda case: f"s3://{bucket}/{case}"), env


def main(argv: list[str]) -> None:
    use_s3, fast = "--s3" in argv, "--fast" in argv
    pace = {"STORYC_CLAIM_HEARTBEAT": "0.5", "STORYC_CLAIM_DEAD_AFTER": "2"} if fast else {}
    limit = 2.0 + 30 if fast else 60.0 + 30
    with tempfile.TemporaryDirectory() as name, team_store(use_s3, Path(name) / "stores") as (store, store_env):
        tmp = Path(name)
        (tmp / "stores").mkdir()
        env = {**os.environ, **store_env, **pace}
        beats = "0.5 s, dead after 2 s" if fast else "20 s, dead after 60 s"
        print(f"store {'S3 (moto)' if use_s3 else 'directory'}, a heartbeat every {beats}; seconds from the kill:")
        for host in ("same host", "other host"):
            case = host.replace(" ", "-")
            before = died_before_sending(tmp / f"before-{case}", env, store(f"before-{case}"), host, limit)
            print(f"  {host:10}  died before sending, key free: {_seconds(before)}", flush=True)
            after = died_after_sending(tmp / f"after-{case}", env, store(f"after-{case}"), host, limit)
            print(f"  {host:10}  died after sending, unknown:   {_seconds(after)}", flush=True)


def _seconds(value: float | None) -> str:
    return "not within the limit" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main(sys.argv[1:])
