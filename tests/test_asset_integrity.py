"""A local asset is read to its end before anything is paid, and an unchanged one is decoded once.

The invalid-board corpus holds the truncated PNG, JPEG and MP4 with their
exact diagnostics; here is what a corpus case can't show: that the verdict
"whole" is kept by content hash across runs (a video decode is ffmpeg's
work, counted by a real ffmpeg behind a wrapper that logs each call), that
a damaged file is never remembered as whole, and that a git revision's file
(`storyc diff`) is checked like one on disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLES, commit_all, copy_example_file, git_init, make_image, one_line

from storyc.compile.pipeline import compile_file
from storyc.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent

BOARD = """version: 1
characters:
  ball: {video: refs/ball.mp4}
scenes:
  - id: play
    prompt: "@ball rolls across the grass."
    duration: 5
    start_frame: refs/start.png
"""


@pytest.fixture
def counted_ffmpeg(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ffmpeg (imageio-ffmpeg's, via IMAGEIO_FFMPEG_EXE) logs each call, and the log."""
    log = tmp_path / "ffmpeg-calls.log"
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{ffmpeg_exe()}" "$@"\n', "utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGEIO_FFMPEG_EXE": str(wrapper)}
    return env, log


def decodes(log: Path) -> int:
    """How many full decodes (`-f null`) the wrapped ffmpeg has run."""
    return sum("-f null" in line for line in log.read_text("utf-8").splitlines()) if log.exists() else 0


def storyc_check(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`storyc check` in its own process: nothing is remembered between runs but what is on disk."""
    return subprocess.run(
        [sys.executable, "-m", "storyc", "check", *args, "board.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="the ffmpeg wrapper is a shell script")
def test_an_unchanged_video_is_decoded_once_across_runs_and_edits(
    tmp_path: Path, counted_ffmpeg: tuple[dict[str, str], Path]
) -> None:
    env, log = counted_ffmpeg
    project = tmp_path / "film"
    (project / ".git").mkdir(parents=True)
    video = copy_example_file(project, "elephant/refs/ball.mp4", "refs/ball.mp4")
    make_image(project / "refs" / "start.png")
    board = project / "board.yaml"
    board.write_text(BOARD, "utf-8")

    first = storyc_check(project, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert decodes(log) == 1

    board.write_text(BOARD.replace("the grass", "the wet grass"), "utf-8")  # a compile-cache miss
    edited = storyc_check(project, env)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert decodes(log) == 1, "an unchanged video was decoded again after a prompt edit"

    assert storyc_check(project, env, "--no-cache").returncode == 0
    assert decodes(log) == 2, "--no-cache compiles from scratch, decodes included"

    whole = video.read_bytes()
    video.write_bytes(whole[: len(whole) * 4 // 5])  # a download cut short
    for _ in range(2):  # a damaged file is never remembered as whole: decoded, and refused, each time
        cut = storyc_check(project, env)
        assert cut.returncode == 1, cut.stdout + cut.stderr
        assert cut.stdout.splitlines()[0] == (
            "board.yaml:3:17: error: video 'refs/ball.mp4' is truncated or damaged: "
            "stream 0, offset 0xb77: partial file"
        )
    assert decodes(log) == 4

    video.write_bytes(whole)  # the same bytes again (a new mtime): known whole by content
    assert storyc_check(project, env).returncode == 0
    assert decodes(log) == 4


def test_an_unchanged_image_is_decoded_once_in_a_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each PNG is verified once; the board compiled again after an edit (each profile, say) verifies none."""
    from PIL import PngImagePlugin

    verified: list[str] = []
    verify = PngImagePlugin.PngImageFile.verify

    def counting_verify(image: PngImagePlugin.PngImageFile) -> None:
        verified.append(image.format or "")
        verify(image)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "verify", counting_verify)
    project = tmp_path / "film"
    (project / ".git").mkdir(parents=True)
    # colours of this test's own: no other test's image has these bytes (the verdict is kept by content)
    make_image(project / "refs" / "front.png", color="#123457")
    make_image(project / "refs" / "side.png", color="#123458")
    board = project / "board.yaml"
    text = (
        "version: 1\ncharacters:\n  ellie: {frontal: refs/front.png, references: [refs/side.png]}\n"
        "scenes:\n  - {id: meet, prompt: '@ellie walks.', duration: 5}\n"
    )
    board.write_text(text, "utf-8")
    assert compile_file(board, "board.yaml", use_cache=False).ok
    assert len(verified) == 2
    board.write_text(text.replace("walks", "runs"), "utf-8")
    assert compile_file(board, "board.yaml", use_cache=False).ok
    assert len(verified) == 2


def test_a_truncated_video_in_a_git_revision_is_refused_too(tmp_path: Path) -> None:
    """`storyc diff` compiles a commit from git objects: ffmpeg decodes a copy of the blob."""
    from storyc.review.gitfs import GitRepo

    root = git_init(tmp_path / "film")
    whole = (EXAMPLES / "elephant" / "refs" / "ball.mp4").read_bytes()
    (root / "refs").mkdir()
    (root / "refs" / "ball.mp4").write_bytes(whole[: len(whole) * 4 // 5])
    make_image(root / "refs" / "start.png")
    (root / "board.yaml").write_text(BOARD, "utf-8")
    commit = commit_all(root, "a cut video")
    (root / "refs" / "ball.mp4").write_bytes(whole)  # whole in the working tree: the commit's bytes count
    with GitRepo.around(root) as repo:
        result = compile_file(root / "board.yaml", "board.yaml", files=repo.tree(commit))
    assert [d.format() for d in result.diagnostics] == [
        "board.yaml:3:17: error: video 'refs/ball.mp4' is truncated or damaged: stream 0, offset 0xb77: partial file"
    ]
    assert compile_file(root / "board.yaml", "board.yaml", use_cache=False).ok


# `storyc check` where imageio-ffmpeg finds no ffmpeg at all (it raises RuntimeError: no binary for this platform).
NO_FFMPEG = """
import imageio_ffmpeg

def none_found():
    raise RuntimeError("No ffmpeg exe could be found.")

imageio_ffmpeg.get_ffmpeg_exe = none_found
from storyc.cli import main
main(["check", "--no-cache", "board.yaml"])
"""


@pytest.mark.parametrize(
    ("how", "reason"),
    [("missing", "No such file or directory"), ("none-found", "No ffmpeg exe could be found.")],
)
def test_without_ffmpeg_a_video_is_a_located_error_not_a_crash(tmp_path: Path, how: str, reason: str) -> None:
    """A video that can't be checked is not passed as whole: the check says why, at the video's line."""
    project = tmp_path / "film"
    (project / ".git").mkdir(parents=True)
    copy_example_file(project, "elephant/refs/ball.mp4", "refs/ball.mp4")
    make_image(project / "refs" / "start.png")
    (project / "board.yaml").write_text(BOARD, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STORYC_TRACEBACK": "1"}
    if how == "missing":  # imageio-ffmpeg takes the variable's word for it; the binary isn't there
        env["IMAGEIO_FFMPEG_EXE"] = str(tmp_path / "no-such-ffmpeg")
        done = storyc_check(project, env, "--no-cache")
    else:
        command = [sys.executable, "-c", NO_FFMPEG]
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert one_line(done.stdout) == [
        f"board.yaml:3:17: error: cannot check video 'refs/ball.mp4': cannot run ffmpeg ({reason})",
        "1 error, 0 warnings in 1 file",
    ]


def test_no_verdict_is_kept_through_a_symlinked_storyc_folder(tmp_path: Path) -> None:
    """A `.storyc` leading out of the board's folder is no cache: no verdict "whole" is written (or read) there."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    project = tmp_path / "film"
    (project / ".git").mkdir(parents=True)
    (project / ".storyc").symlink_to(outside, target_is_directory=True)
    make_image(project / "refs" / "front.png", color="#2468ac")  # bytes of this test's own: decoded here
    make_image(project / "refs" / "side.png", color="#2468ad")
    board = project / "board.yaml"
    board.write_text(
        "version: 1\ncharacters:\n  ellie: {frontal: refs/front.png, references: [refs/side.png]}\n"
        "scenes:\n  - {id: meet, prompt: '@ellie walks.', duration: 5}\n",
        "utf-8",
    )
    assert compile_file(board, "board.yaml").ok
    assert list(outside.rglob("*")) == []
