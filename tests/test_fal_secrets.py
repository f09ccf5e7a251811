"""The fal key is never echoed: fal's own words may carry it, storyc's output and lock never do.

The fake fal server, told to (`echo_key`), ends every error text it writes with the credentials
the request carried, whole and by key id: a 422's details, a 5xx body, a failed job's error.  The
real fal_client talks to it and the real CLI prints what comes back; neither stdout, stderr, the
JSON output, `storyc status` nor board.lock may hold the key or either half of it, and the rest of
fal's message must survive around `[redacted]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from fakefal.plugin import fast_retries
from helpers import ELLIE_BOARD, ELLIE_IMAGES, make_project

from storyc.cli import cli
from storyc.lock.lockfile import lock_path

REDACTED = "[redacted]"  # what stands where the key was


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_fal: FakeFal) -> Path:
    path = make_project(tmp_path / "film", ELLIE_BOARD, ELLIE_IMAGES)
    monkeypatch.chdir(path.parent)
    fast_retries(monkeypatch)  # the fake's status faults are retried by storyc: keep the waits short
    fake_fal.echo_key = True
    return path


def run(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.stdout, result.stderr


def key_parts(key: str) -> list[str]:
    key_id, _, secret = key.partition(":")
    return [key, key_id, secret]


def assert_scrubbed(text: str, key: str) -> None:
    assert key_parts(key) and all(part not in text for part in key_parts(key)), text


def render_and_status(board: Path) -> tuple[str, str]:
    """`render --yes` in text and in JSON (the other scene), then `status` both ways: all they printed,
    and the lock.  The JSON outputs must parse."""
    shown = []
    for args in (("render", "--scene", "meet", "--yes"), ("render", "--scene", "rest", "--yes"), ("status",)):
        out, err = run(args[0], "board.yaml", *args[1:])
        json_out, json_err = run(args[0], "board.yaml", *args[1:], "--json")
        json.loads(json_out)
        shown += [out, err, json_out, json_err]
    return "".join(shown), lock_path(board).read_text("utf-8") if lock_path(board).exists() else ""


# Each fault makes fal's answer echo the key somewhere storyc shows or records it.
FAULTS: dict[str, tuple[Callable[[FakeFal], None], str]] = {
    "a failed job's error (COMPLETED with error, then a 500 result)": (
        lambda fal: fal.fail_jobs_matching("@", error="model crashed", error_type="runner_disconnected"),
        "model crashed",
    ),
    "a 422 result body": (
        lambda fal: fal.fail_jobs_matching("@", error="prompt too odd", error_type="value_error", status=422),
        "prompt too odd",
    ),
    "a 5xx body on every status poll": (
        lambda fal: fal.fail_next("status", 503, count=1000),
        "Service Temporarily Unavailable",
    ),
    "a 422 body on submit": (lambda fal: fal.fail_next("submit", 422, count=2), "Unprocessable Entity"),
    "a 409 body on submit, after fal took it": (
        lambda fal: fal.fail_next("submit", 409, count=2, after_processing=True),
        "Conflict",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fals_words_are_shown_and_stored_without_the_key(fake_fal: FakeFal, board: Path, fault: str) -> None:
    inject, words = FAULTS[fault]
    inject(fake_fal)
    shown, lock = render_and_status(board)
    assert_scrubbed(shown, fake_fal.key)
    assert_scrubbed(lock, fake_fal.key)
    assert f"{words} (for key {REDACTED}; key id {REDACTED})" in shown + lock  # fal's message survives around it


def test_a_failed_jobs_error_is_stored_in_the_lock_without_the_key(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_jobs_matching("@", error="model crashed", error_type="runner_disconnected")
    assert run("render", "board.yaml", "--yes")[1]
    lock = lock_path(board).read_text("utf-8")
    assert "state: failed" in lock and f"model crashed (for key {REDACTED}; key id {REDACTED})" in lock
    assert_scrubbed(lock, fake_fal.key)


def test_the_id_and_secret_form_of_the_key_is_scrubbed_by_its_halves(
    fake_fal: FakeFal, board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAL_KEY_ID + FAL_KEY_SECRET (no FAL_KEY): fal_client sends `id:secret`; each half is a secret."""
    key_id, _, secret = fake_fal.key.partition(":")
    monkeypatch.delenv("FAL_KEY")
    monkeypatch.setenv("FAL_KEY_ID", key_id)
    monkeypatch.setenv("FAL_KEY_SECRET", secret)
    fake_fal.fail_jobs_matching("@", error="prompt too odd", error_type="value_error", status=422)
    shown, lock = render_and_status(board)
    assert "prompt too odd" in shown and "prompt too odd" in lock
    assert_scrubbed(shown + lock, fake_fal.key)
    # the halves did reach fal, as one key: the jobs ran and failed with fal's words
    assert fake_fal.jobs and {j.headers["authorization"] for j in fake_fal.jobs} == {f"Key {fake_fal.key}"}


def test_a_status_word_carrying_the_key_is_shown_without_it(fake_fal: FakeFal, board: Path) -> None:
    """fal_client's own error for a status it does not know quotes fal's word: "Unknown status: ..."."""
    fake_fal.report_status_next(f"PAUSED-BY-{fake_fal.key}", count=1000)
    out, err = run("render", "board.yaml", "--yes", "--scene", "meet")
    assert f"unexpected status 'PAUSED-BY-{REDACTED}'" in err
    assert_scrubbed(out + err + lock_path(board).read_text("utf-8"), fake_fal.key)
