"""A full disk (or a read-only one) is a message, not a bug: every command that writes, on a real small tmpfs.

Each test copies an example board onto its own tmpfs, fills the disk but for a few KB (or
remounts it read-only), and runs the real CLI in a subprocess: exit 1, the file that could not be
written and why in words, no traceback, no temporary file left, what was there before unchanged.
Mounting needs root; without it the tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakefal import FakeFal
from helpers import EXAMPLES, FAL_LAUNCH

from storyc.lock.lockfile import lock_path

pytestmark = pytest.mark.slow  # real processes, real encodes

FEW_KB = 4096


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of its own (room to set a board up; `fill` then leaves a few KB), unmounted after."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path, leave: int = FEW_KB) -> None:
    """Take all the disk's free space but `leave` bytes."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with (disk / "filler").open("wb") as f:
        f.write(b"\0" * max(0, free - leave))


def read_only(disk: Path) -> None:
    remounted = _mount("-o", "remount,ro", str(disk))
    assert remounted.returncode == 0, remounted.stderr


def elephant(disk: Path) -> Path:
    """The elephant example, copied to the disk as a project of its own (a git root)."""
    project = disk / "film"
    shutil.copytree(EXAMPLES / "elephant", project)
    (project / ".git").mkdir()
    return project / "board.yaml"


def storyc(
    board: Path, *args: str, launch: list[str] | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The real CLI in its own process, in the board's folder: exit status, stderr, stdout."""
    command = launch or [sys.executable, "-m", "storyc"]
    done = subprocess.run(
        [*command, *args],
        cwd=board.parent,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stderr, done.stdout


def temporaries(root: Path) -> list[Path]:
    """What an interrupted atomic write leaves: `.NAME.XXXX.tmp` (or `.tmp.mp4`, `.tmp.png`)."""
    return sorted(p for p in root.rglob(".*") if ".tmp" in p.name)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_a_message_not_a_bug(code: int, err: str, written: str, why: str = "no space left on device") -> None:
    assert code == 1, err
    assert "Traceback" not in err and "unexpected error" not in err and "a bug in storyc" not in err, err
    assert written in err and why in err, err


def render_on_fal(board: Path, fake_fal: FakeFal, *options: str) -> tuple[int, str, str]:
    fal = [sys.executable, "-c", FAL_LAUNCH]
    env = {"FAL_KEY": fake_fal.key, "FAKE_FAL_URL": fake_fal.url}
    return storyc(board, "render", "--yes", "--scene", "meet", *options, launch=fal, env=env)


def test_a_fal_render_on_a_full_disk_stops_at_the_lock_before_anything_is_sent(
    disk: Path, fake_fal: FakeFal
) -> None:
    board = elephant(disk)
    code, err, _ = render_on_fal(board, fake_fal)
    assert code == 0, err
    before = lock_path(board).read_bytes()
    fake_fal.reset_counters()
    text = board.read_text("utf-8")
    board.write_text(text.replace("slow push-in", "slow pull-out", 1), "utf-8")  # meet's key, in `scenes:`, changes
    fill(disk, leave=0)
    code, err, out = render_on_fal(board, fake_fal, "--json")
    assert_a_message_not_a_bug(code, err, "board.lock: error: could not be written")
    (diagnostic,) = json.loads(out)["diagnostics"]  # a script reads it too
    assert diagnostic["path"].endswith("board.lock") and "no space left on device" in diagnostic["message"]
    assert fake_fal.requests == []  # the lock's first write comes before any network call
    assert lock_path(board).read_bytes() == before
    assert temporaries(disk) == []


def test_a_download_on_a_full_disk_names_the_video_and_keeps_the_paid_job_submitted(
    disk: Path, fake_fal: FakeFal
) -> None:
    board = elephant(disk)
    fill(disk, leave=8192)  # room for the lock (one page, two while it is replaced), not for a video (two)
    code, err, _ = render_on_fal(board, fake_fal)
    assert_a_message_not_a_bug(code, err, "could not write the video (")
    assert "renders/meet-" in err and "stays submitted" in err
    assert "state: submitted" in lock_path(board).read_text("utf-8")
    assert temporaries(disk) == []


def test_an_animatic_render_on_a_full_disk_fails_each_scene_with_its_file(disk: Path) -> None:
    board = elephant(disk)
    fill(disk)
    code, err, _ = storyc(board, "render", "--backend", "animatic")
    assert_a_message_not_a_bug(code, err, "could not write the animatic (")
    assert "/.storyc/animatic/" in err
    assert "ffmpeg" not in err  # the disk's refusal, not ffmpeg's lines about trailers and packets
    assert temporaries(disk) == []


def test_a_sheet_on_a_full_disk_names_its_file_and_leaves_the_old_one(disk: Path) -> None:
    board = elephant(disk)
    code, err, _ = storyc(board, "sheet")
    assert code == 0, err
    before = board.with_suffix(".html").read_bytes()
    fill(disk)
    code, err, _ = storyc(board, "sheet")
    assert_a_message_not_a_bug(code, err, "board.html")
    assert board.with_suffix(".html").read_bytes() == before
    assert temporaries(disk) == []


def test_a_cut_on_a_full_disk_names_its_file_and_leaves_the_old_one(disk: Path) -> None:
    board = elephant(disk)
    code, err, _ = storyc(board, "render", "--backend", "animatic")
    assert code == 0, err
    code, err, _ = storyc(board, "cut", "--backend", "animatic")
    assert code == 0, err
    cut = board.parent / "renders" / "animatic" / "cut.mp4"
    before = cut.read_bytes()
    fill(disk)
    code, err, _ = storyc(board, "cut", "--backend", "animatic")
    assert_a_message_not_a_bug(code, err, "renders/animatic/cut.mp4: error: could not be written")
    assert "ffmpeg" not in err
    assert cut.read_bytes() == before
    assert temporaries(disk) == []


def test_compile_on_a_full_disk_still_compiles_without_its_cache(disk: Path) -> None:
    """The compile cache is only a cache: a disk that can't hold it costs speed, never the compile."""
    board = elephant(disk)
    fill(disk, leave=0)
    code, err, _ = storyc(board, "compile")
    assert code == 0, err
    assert list((board.parent / ".storyc" / "compile").glob("*.json")) == []
    assert temporaries(disk) == []


def test_a_read_only_disk_is_said_in_words_too(disk: Path) -> None:
    board = elephant(disk)
    code, err, _ = storyc(board, "render", "--backend", "animatic", "--scene", "meet")
    assert code == 0, err
    before = snapshot(disk)
    read_only(disk)
    code, err, _ = storyc(board, "render", "--backend", "animatic")
    assert_a_message_not_a_bug(code, err, "could not write the animatic", "read-only file system")
    code, err, _ = storyc(board, "sheet")
    assert_a_message_not_a_bug(code, err, "board.html", "read-only file system")
    code, err, _ = storyc(board, "gc")
    assert_a_message_not_a_bug(code, err, ".storyc", "read-only file system")
    assert snapshot(disk) == before
