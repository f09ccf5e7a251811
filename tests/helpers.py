"""Small helpers shared by tests: write boards and real images into a temporary project."""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fakefal import FakeFal

    from storyc.render.backends.fal import FalSettings


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Until `condition()` is true, polling every 50 ms; an AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


def make_image(path: Path, size: tuple[int, int] = (400, 320), color: str = "red", fmt: str = "PNG") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


def make_project(root: Path, board: str, images: dict[str, str] | None = None) -> Path:
    """A project folder (a git root) with board.yaml and solid-colour reference images."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    for name, color in (images or {}).items():
        make_image(root / name, color=color)
    path = root / "board.yaml"
    path.write_text(textwrap.dedent(board).lstrip(), "utf-8")
    return path


BASIC_BOARD = """
version: 1
title: Basic
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    description: a young grey elephant
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
styles:
  dawn: refs/dawn.png
  noir:
    image: https://example.org/noir.jpg
scenes:
  - id: meet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 8
  - id: play
    shots:
      - prompt: "@rex runs, styled like @noir."
        duration: 3
      - prompt: "@ellie follows @rex."
        duration: 4
"""

# A storyc process whose fal_client talks to a fake fal server at $FAKE_FAL_URL: fal_client's storage
# hosts are module constants, not environment, so a subprocess patches them before storyc runs.
FAL_LAUNCH = """
import os, sys
import fal_client.client as fc
url = os.environ["FAKE_FAL_URL"]
fc.QUEUE_URL_FORMAT, fc.REST_URL, fc.CDN_URL = url + "/", url, url
from storyc.cli import main
main(sys.argv[1:])
"""


def kill_once_accepted(fake: FakeFal, board: Path, args: Sequence[str], endpoint: str | None = None) -> None:
    """Run `storyc ARGS` beside `board` against the fake fal; SIGKILL it as soon as fal accepted a job
    (of `endpoint`): with a submit's answer delayed, the kill lands between acceptance and the answer."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url}
    command = [sys.executable, "-c", FAL_LAUNCH, *args]
    proc = subprocess.Popen(command, cwd=board.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while fake.accepted_count(endpoint=endpoint) < 1:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


# A clone of the board that claims one scene's key, as `storyc render` does right before its submit,
# and is then killed: the moment a clone dies with the key claimed and nothing sent.
CLAIM_THEN_HANG = """
import sys, time
from pathlib import Path
from storyc.compile.pipeline import compile_file
from storyc.render.run import RunContext, SilentProgress
from storyc.team.layer import Claimed, open_team
board = compile_file(Path("board.yaml"), use_cache=False).board
job = next(j for j in board.jobs if j.scene == sys.argv[1])
decision = open_team(board.path).decide(job, RunContext(SilentProgress()))
print("claimed" if isinstance(decision, Claimed) else decision, flush=True)
time.sleep(600)
"""

# One character, two scenes: the board of the fault, ledger and team tests.
ELLIE_BOARD = """
version: 1
title: Ellie
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
"""
ELLIE_IMAGES = {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "silver"}


def fast_fal() -> FalSettings:
    """fal settings for tests: poll every few centiseconds, retry with tiny waits."""
    from storyc.render.backends.fal import FalSettings, Polling, Retrying

    return FalSettings(
        polling=Polling(first=0.02, factor=1.5, ceiling=0.1), retrying=Retrying(first_wait=0.01, max_wait=0.05)
    )


BASIC_IMAGES = {
    "refs/ellie-front.png": "grey",
    "refs/ellie-side.png": "silver",
    "refs/rex-front.png": "brown",
    "refs/rex-side.png": "tan",
    "refs/dawn.png": "orange",
}


# --- temporary git repositories with real commits -----------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# A deterministic author, date and configuration: commit ids are the same on every machine.
GIT_ENV = {
    "GIT_AUTHOR_DATE": "2026-01-01T12:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T12:00:00+00:00",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    import os
    import subprocess

    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", *args],
        cwd=root,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def git_init(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    return root


def commit_all(root: Path, message: str) -> str:
    """Stage everything (removals too) and commit; the new commit's id."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def copy_example_file(root: Path, source: str, dest: str) -> Path:
    """A file of the examples (real bytes that never change, so content keys are stable) into a project."""
    import shutil

    target = root / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EXAMPLES / source, target)
    return target


# --- clones as processes: wait for them, kill them ----------------------------------------

# Killing `unshare` kills the clone in it (--kill-child): a SIGKILL reaches it as on a real host.
OTHER_HOST = ["unshare", "--pid", "--fork", "--kill-child"]


def key_of(board: Path, scene: str) -> str:
    from storyc.compile.pipeline import compile_file

    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    return next(j.key for j in compiled.jobs if j.scene == scene)


def claimed_again(store: str, key: str) -> bool:
    """Someone holds a newer claim on `key` than the first (or has rendered it already)."""
    from storyc.team.store import ClaimInfo, open_team_store

    found = open_team_store(store).lookup(key)
    return found is not None and (not isinstance(found, ClaimInfo) or found.n > 1)


def seconds_until(condition: Callable[[], bool], limit: float, start: float | None = None) -> float | None:
    """Seconds from `start` (default: now) until `condition()` holds; None if not within `limit`."""
    start = time.monotonic() if start is None else start
    while time.monotonic() - start < limit:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def waits_on_a_claim(proc: subprocess.Popen[str]) -> None:
    """Read `storyc render`'s progress until it says it waits on another clone's claim."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if ": waiting (claimed by " in line:
            return
    raise AssertionError(f"it never waited on the claim: {proc.communicate()}")


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


_SNIPPET = re.compile(r"^ *\d* *[|=]( |$)")


def one_line(text: str) -> list[str]:
    """storyc's text output with each diagnostic in its one-line form: without the source line, caret
    and help lines printed under it (`  |`, `12 |`, `  = help:`) and the blank line after them."""
    return [line for line in text.splitlines() if line and not _SNIPPET.match(line)]
