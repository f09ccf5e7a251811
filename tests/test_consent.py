"""The question before spending, as a person at a terminal sees it: a real process on a pseudo-terminal.

storyc asks only when stdin is a terminal; click's runner never is one, so these run
`storyc render` in a subprocess whose stdin, stdout and stderr are a pty, against the
fake fal server (the real fal_client, pointed at it), and answer the question.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakefal import FakeFal
from helpers import BASIC_IMAGES, FAL_LAUNCH, make_project
from test_profiles import BOARD

from storyc.lock.lockfile import lock_path, read


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", BOARD, BASIC_IMAGES)


def answer_the_question(fake: FakeFal, board: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run `storyc render` on a terminal, wait for its question, type `answer`; (exit status, what it showed)."""
    main, child = pty.openpty()
    env = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "TERM": "dumb", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", FAL_LAUNCH, "render", *args],
        cwd=board.parent,
        env=env,
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the process ended and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(main, answer.encode() + b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        code = process.wait(timeout=60)
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
    return code, shown.decode("utf-8", "replace").replace("\r\n", "\n")


def test_no_at_the_question_sends_nothing(fake_fal: FakeFal, board: Path) -> None:
    code, shown = answer_the_question(fake_fal, board, "n", "--scene", "meet")
    assert "Spend $0.42 on fal (profile draft)? [y/N]:" in shown  # the price and the tier being paid for
    assert code == 1 and "nothing was sent" in shown
    assert fake_fal.accepted_count() == 0 and not lock_path(board).exists()


def test_yes_at_the_question_renders_the_named_profile(fake_fal: FakeFal, board: Path) -> None:
    code, shown = answer_the_question(fake_fal, board, "y", "--scene", "meet", "--profile", "final")
    assert "Spend $2.10 on fal (profile final)? [y/N]:" in shown
    assert code == 0, shown
    assert [j.endpoint_id for j in fake_fal.jobs] == ["fal-ai/kling-video/o3/4k/reference-to-video"]
    assert [r.state for r in read(lock_path(board)).renders.values()] == ["done"]
